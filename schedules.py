"""Learning-rate schedules, built from optax's own schedule functions.

Every schedule is an optional linear warmup (from `warmup_init_lr` to the peak
`learning_rate` over `warmup_epochs`) followed by a body picked by
`config.schedule`:

  warmup_cosine  the seed's: one cosine decay from the peak to
                 `min_learning_rate` over the remaining epochs.
  sgdr           warm restarts (Loshchilov & Hutter, 2017): cosine cycles of
                 `cycle_epochs`, each next one `cycle_mult` times longer, the
                 peak multiplied by `restart_decay` at every restart.
  constant       the peak rate throughout: the baseline the seed argues against.
  step           the peak, multiplied by `step_decay` at each of `step_epochs`.

With the default fields (warmup from 0, floor 0) `warmup_cosine` is exactly the
seed schedule of the Flax ImageNet example.
"""

import dataclasses

import jax.numpy as jnp
import optax

SCHEDULES = ('warmup_cosine', 'sgdr', 'constant', 'step')

# Defaults for fields that configs written before a field existed may lack.
DEFAULTS = {
    'schedule': 'warmup_cosine',
    'min_learning_rate': 0.0,
    'warmup_init_lr': 0.0,
    'cycle_epochs': 3.0,
    'cycle_mult': 2.0,
    'restart_decay': 1.0,
    'step_epochs': (),
    'step_decay': 0.1,
}


def field(config, name):
  """`config.name`, or its default when an older config lacks the field."""
  return config.get(name, DEFAULTS[name]) if name in DEFAULTS else config[name]


def warmup_steps(config, steps_per_epoch: int) -> int:
  """Number of warmup steps; `warmup_epochs` may be fractional."""
  return int(round(config.warmup_epochs * steps_per_epoch))


def cosine_steps(config, steps_per_epoch: int) -> int:
  """Length of the cosine phase; at least one epoch, as in the seed."""
  epochs = max(config.num_epochs - config.warmup_epochs, 1)
  return int(round(epochs * steps_per_epoch))


@dataclasses.dataclass(frozen=True)
class Cycle:
  """One SGDR cycle: cosine from `peak` to the floor over `length` steps."""
  start: int
  length: int
  peak: float


def sgdr_cycles(config, base_learning_rate: float,
                steps_per_epoch: int) -> list[Cycle]:
  """Lays SGDR's cycles out after the warmup so that they fill the run.

  Cycle i nominally lasts cycle_epochs * cycle_mult**i epochs. As many whole
  cycles as fit are kept, and the last of them is stretched by whatever is
  left, so the run always ends at the bottom of a cycle (at the floor), as
  the paper's runs do. Peaks never fall below the floor.
  """
  start = warmup_steps(config, steps_per_epoch)
  total = config.num_epochs * steps_per_epoch
  floor = field(config, 'min_learning_rate')
  cycles = []
  nominal_epochs = field(config, 'cycle_epochs')
  while True:
    length = max(int(round(nominal_epochs * steps_per_epoch)), 1)
    if cycles and start + length > total:
      break
    peak = base_learning_rate * field(config, 'restart_decay') ** len(cycles)
    cycles.append(Cycle(start, length, max(peak, floor)))
    start += length
    nominal_epochs *= field(config, 'cycle_mult')
    if start >= total:
      break
  last = cycles[-1]
  cycles[-1] = Cycle(last.start, total - last.start, last.peak)
  return cycles


def _sgdr_fn(config, base_learning_rate, steps_per_epoch):
  floor = field(config, 'min_learning_rate')
  cycles = sgdr_cycles(config, base_learning_rate, steps_per_epoch)
  fns = [optax.cosine_decay_schedule(
      init_value=c.peak, decay_steps=c.length,
      alpha=floor / c.peak if c.peak else 0.0) for c in cycles]
  return fns, [c.start for c in cycles]


def _step_fn(config, base_learning_rate, steps_per_epoch):
  decay = field(config, 'step_decay')
  boundaries = {int(round(e * steps_per_epoch)): decay
                for e in field(config, 'step_epochs')}
  piecewise = optax.piecewise_constant_schedule(base_learning_rate, boundaries)
  floor = field(config, 'min_learning_rate')
  if floor <= 0:
    return piecewise
  return lambda step: jnp.maximum(piecewise(step), floor)


def _body(config, base_learning_rate, steps_per_epoch):
  """The schedule after warmup, with its step counter starting at 0."""
  kind = field(config, 'schedule')
  if kind == 'warmup_cosine':
    floor = field(config, 'min_learning_rate')
    return optax.cosine_decay_schedule(
        init_value=base_learning_rate,
        decay_steps=cosine_steps(config, steps_per_epoch),
        alpha=floor / base_learning_rate)
  if kind == 'constant':
    return optax.constant_schedule(base_learning_rate)
  if kind == 'step':
    # Step epochs count from the start of the run, so shift by the warmup.
    shifted = _step_fn(config, base_learning_rate, steps_per_epoch)
    offset = warmup_steps(config, steps_per_epoch)
    return lambda step: shifted(step + offset)
  raise ValueError(f'config.schedule={kind!r} is invalid: must be one of '
                   f'{SCHEDULES}.')


def create_learning_rate_fn(config, base_learning_rate: float,
                            steps_per_epoch: int) -> optax.Schedule:
  """The schedule `config.schedule` names, as a function step -> rate.

  Args:
    config: needs `num_epochs`, `warmup_epochs` and the fields of the chosen
      schedule (see the module docstring; missing ones take DEFAULTS).
    base_learning_rate: peak rate, reached at the end of warmup.
    steps_per_epoch: optimizer steps in one epoch.

  Returns:
    A function step -> learning rate, usable by any optax optimizer.
  """
  num_warmup = warmup_steps(config, steps_per_epoch)
  warmup_fn = optax.linear_schedule(
      init_value=field(config, 'warmup_init_lr'), end_value=base_learning_rate,
      transition_steps=num_warmup)
  if field(config, 'schedule') == 'sgdr':
    fns, starts = _sgdr_fn(config, base_learning_rate, steps_per_epoch)
    if num_warmup == 0:
      return optax.join_schedules(fns, starts[1:])
    return optax.join_schedules([warmup_fn] + fns, starts)
  body = _body(config, base_learning_rate, steps_per_epoch)
  return optax.join_schedules(schedules=[warmup_fn, body],
                              boundaries=[num_warmup])


def key_steps(config, steps_per_epoch: int) -> dict[str, int]:
  """Named steps worth printing: start, end of warmup, restarts, drops, end."""
  total = config.num_epochs * steps_per_epoch
  num_warmup = warmup_steps(config, steps_per_epoch)
  steps = {'first step': 0}
  if num_warmup:
    steps['last warmup step'] = num_warmup - 1
    steps['peak (end of warmup)'] = min(num_warmup, total - 1)
  kind = field(config, 'schedule')
  if kind == 'sgdr':
    for i, c in enumerate(sgdr_cycles(config, config.learning_rate,
                                      steps_per_epoch)):
      if i:
        steps[f'last step of cycle {i}'] = c.start - 1
        steps[f'restart {i} (cycle {i + 1} begins)'] = c.start
      steps[f'middle of cycle {i + 1}'] = c.start + c.length // 2
  elif kind == 'step':
    for epoch in field(config, 'step_epochs'):
      step = int(round(epoch * steps_per_epoch))
      steps[f'before drop at epoch {epoch:g}'] = step - 1
      steps[f'drop at epoch {epoch:g}'] = step
  elif kind == 'warmup_cosine':
    steps['middle of the decay'] = num_warmup + cosine_steps(
        config, steps_per_epoch) // 2
  steps['last step'] = total - 1
  return dict(sorted(steps.items(), key=lambda kv: kv[1]))


def describe(config, steps_per_epoch: int) -> str:
  """One line saying what the schedule does, for logs."""
  total = config.num_epochs * steps_per_epoch
  num_warmup = warmup_steps(config, steps_per_epoch)
  peak = config.learning_rate
  warmup = (f'linear warmup from {field(config, "warmup_init_lr"):g} to '
            f'{peak:g} over {num_warmup} steps, then ' if num_warmup
            else 'no warmup; ')
  kind = field(config, 'schedule')
  floor = field(config, 'min_learning_rate')
  if kind == 'warmup_cosine':
    body = f'cosine decay from {peak:g} to {floor:g}'
  elif kind == 'sgdr':
    cycles = sgdr_cycles(config, peak, steps_per_epoch)
    lengths = ', '.join(f'{c.length}' for c in cycles)
    peaks = ', '.join(f'{c.peak:g}' for c in cycles)
    body = (f'SGDR: {len(cycles)} cosine cycles of {lengths} steps from '
            f'peaks {peaks} down to {floor:g}')
  elif kind == 'constant':
    body = f'constant {peak:g}'
  else:
    body = (f'{peak:g} multiplied by {field(config, "step_decay"):g} at '
            f'epochs {list(field(config, "step_epochs"))}'
            + (f', floor {floor:g}' if floor else ''))
  return (f'{config.num_epochs} epochs x {steps_per_epoch} steps = {total} '
          f'steps; {kind}: {warmup}{body}')

