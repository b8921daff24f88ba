"""Learning-rate schedules: one table, one entry per kind, optax underneath.

Every kind is an entry of SCHEDULES holding its builder, its config fields,
its checks, its key steps and its one-line description. Builders are pure
functions over numbers (steps and rates), in the style of optax's
`schedules/_schedule.py`, each stating its formula; `resolve` is the one
function that reads a config and turns its epochs into steps. Adding a kind
means adding one builder and one entry here (and its tests and README row).

Notation in the formulas: t is the optimizer step (0-based), W the warmup
steps, T the steps of the whole run, lr0 the rate at the first warmup step
(`warmup_init_lr`), peak the `learning_rate`, floor the `min_learning_rate`.
Unless a kind says otherwise, steps t < W follow the linear warmup
lr(t) = lr0 + (peak - lr0) * t / W.

With the default fields (warmup from 0, floor 0) `warmup_cosine` is exactly
the seed schedule of the Flax ImageNet example.
"""

import dataclasses
import inspect
from typing import Callable, Mapping

import jax.numpy as jnp
import optax

from configs import default
from machinery import checks

# --------------------------------------------------------------- builders


def _after_warmup(init_value, peak, warmup_steps, body) -> optax.Schedule:
  """The linear warmup, then `body` with its own count starting at W."""
  warmup = optax.linear_schedule(init_value=init_value, end_value=peak,
                                 transition_steps=warmup_steps)
  return optax.join_schedules(schedules=[warmup, body],
                              boundaries=[warmup_steps])


def warmup_cosine_schedule(init_value, peak, floor, warmup_steps,
                           rest_steps) -> optax.Schedule:
  """Warmup, then one cosine from the peak to the floor (the seed's).

  lr(t) = floor + (peak - floor) * 0.5 * (1 + cos(pi * min(t - W, R) / R))
  for t >= W, with R = `rest_steps` (the epochs after the warmup, at least
  one epoch).
  """
  body = optax.cosine_decay_schedule(init_value=peak, decay_steps=rest_steps,
                                     alpha=floor / peak)
  return _after_warmup(init_value, peak, warmup_steps, body)


def constant_schedule(init_value, peak, warmup_steps) -> optax.Schedule:
  """Warmup, then lr(t) = peak."""
  return _after_warmup(init_value, peak, warmup_steps,
                       optax.constant_schedule(peak))


def step_schedule(init_value, peak, floor, warmup_steps, drop_steps,
                  decay_factor) -> optax.Schedule:
  """Warmup, then lr(t) = max(peak * decay_factor**k(t), floor).

  k(t) is the number of drops at or before t; drop i happens at step
  round(drop_steps[i]), counted from the start of the run (not of the body).
  Drops that round to the same step multiply there (two drops: factor**2),
  as many drops as were asked for.
  """
  boundaries = {}
  for s in drop_steps:
    step = int(round(s))
    boundaries[step] = boundaries.get(step, 1.0) * decay_factor
  piecewise = optax.piecewise_constant_schedule(peak, boundaries)
  if floor > 0:
    floored = lambda t: jnp.maximum(piecewise(t), floor)
  else:
    floored = piecewise
  return _after_warmup(init_value, peak, warmup_steps,
                       lambda count: floored(count + warmup_steps))


@dataclasses.dataclass(frozen=True)
class Cycle:
  """One SGDR cycle: cosine from `peak` to the floor over `length` steps."""
  start: int
  length: int
  peak: float


def sgdr_layout(peak, floor, warmup_steps, total_steps, cycle_steps,
                cycle_mult, restart_decay) -> list[Cycle]:
  """Lays SGDR's cycles out after the warmup so that they fill the run.

  Cycle i nominally lasts round(cycle_steps * cycle_mult**i) steps and
  peaks at max(peak * restart_decay**i, floor). As many whole cycles as fit
  are kept, and the last of them is stretched by whatever is left, so the
  run always ends at the bottom of a cycle (at the floor), as the paper's
  runs do.
  """
  start, nominal, cycles = warmup_steps, cycle_steps, []
  while True:
    if cycles and nominal > total_steps:  # cannot fit; also keeps it finite
      break
    length = max(int(round(nominal)), 1)
    if cycles and start + length > total_steps:
      break
    cycles.append(Cycle(start, length,
                        max(peak * restart_decay ** len(cycles), floor)))
    start += length
    nominal *= cycle_mult
    if start >= total_steps:
      break
  last = cycles[-1]
  cycles[-1] = Cycle(last.start, total_steps - last.start, last.peak)
  return cycles


def sgdr_schedule(init_value, peak, floor, warmup_steps, total_steps,
                  cycle_steps, cycle_mult, restart_decay) -> optax.Schedule:
  """Warm restarts (Loshchilov & Hutter, 2017, eq. 5), after the warmup.

  In cycle i (start s_i, length L_i, peak p_i; see sgdr_layout):
  lr(t) = floor + (p_i - floor) * 0.5 * (1 + cos(pi * (t - s_i) / L_i)).
  """
  cycles = sgdr_layout(peak, floor, warmup_steps, total_steps, cycle_steps,
                       cycle_mult, restart_decay)
  fns = [optax.cosine_decay_schedule(
      init_value=c.peak, decay_steps=c.length,
      alpha=floor / c.peak if c.peak else 0.0) for c in cycles]
  starts = [c.start for c in cycles]
  if warmup_steps == 0:
    return optax.join_schedules(fns, starts[1:])
  warmup = optax.linear_schedule(init_value=init_value, end_value=peak,
                                 transition_steps=warmup_steps)
  return optax.join_schedules([warmup] + fns, starts)


DECAY_SHAPES = {
    'linear': lambda p: 1 - p,
    'cosine': lambda p: 0.5 * (1 + jnp.cos(jnp.pi * p)),
    '1-sqrt': lambda p: 1 - jnp.sqrt(p),
}


def wsd_decay_start(total_steps, decay_steps,
                    decay_fraction=0.0) -> tuple[int, int]:
  """(S, D): the decay's first step and length, D = max(round(decay), 1).

  The decay is `decay_fraction` x T steps when that is set (> 0), so that
  runs of every length cool down over the same share of themselves (what
  tools/budgets.py branches from one trunk); otherwise `decay_steps`.
  """
  decay = decay_fraction * total_steps if decay_fraction else decay_steps
  length = max(int(round(decay)), 1)
  return total_steps - length, length


def wsd_schedule(init_value, peak, floor, warmup_steps, total_steps,
                 decay_steps, decay_shape, decay_fraction) -> optax.Schedule:
  """Warmup-stable-decay (MiniCPM, arXiv 2404.06395; arXiv 2405.18392).

  With D = round(decay_steps) (or round(decay_fraction x T)), S = T - D and
  p = clip((t - S) / D, 0, 1): lr(t) = floor + (peak - floor) * f(p) for
  t >= W, where f is `DECAY_SHAPES[decay_shape]`: 1 - p,
  0.5 * (1 + cos(pi * p)) or 1 - sqrt(p). So lr(S) = peak and lr(T) =
  floor, as with the seed's cosine. Before S the rate does not depend on T:
  a longer run is the same run up to its own S.
  """
  start, length = wsd_decay_start(total_steps, decay_steps, decay_fraction)
  shape = DECAY_SHAPES[decay_shape]

  def body(count):
    p = jnp.clip((count + warmup_steps - start) / length, 0.0, 1.0)
    return floor + (peak - floor) * shape(p)
  return _after_warmup(init_value, peak, warmup_steps, body)


def linear_decay_schedule(init_value, peak, floor, warmup_steps,
                          total_steps) -> optax.Schedule:
  """Warmup, then straight to the floor (arXiv 2502.15938).

  lr(t) = peak + (floor - peak) * (t - W) / (T - W) for W <= t <= T.
  """
  body = optax.linear_schedule(init_value=peak, end_value=floor,
                               transition_steps=total_steps - warmup_steps)
  return _after_warmup(init_value, peak, warmup_steps, body)


def onecycle_schedule(peak, floor, warmup_steps, total_steps, div_factor,
                      final_div_factor) -> optax.Schedule:
  """optax's cosine_onecycle_schedule over the run, its rise over W steps.

  lr rises from peak / div_factor to the peak along a half cosine over the
  first W steps (not the linear warmup of the other kinds), then falls along
  a half cosine to peak / (div_factor * final_div_factor) at step T; never
  below the floor. This is `optax.cosine_onecycle_schedule(T, peak,
  pct_start=W/T, ...)` with its boundary given as the whole step W, which
  int(pct_start * T) can put one step early through float rounding.
  """
  # Vectorized: optax's piecewise interpolation takes one step at a time,
  # while plots evaluate every step at once. A rise that fills the whole run
  # (W >= T after rounding) has no fall: one boundary, not two merged keys.
  boundaries = {warmup_steps: div_factor}
  if warmup_steps < total_steps:
    boundaries[total_steps] = 1.0 / (div_factor * final_div_factor)
  onecycle = jnp.vectorize(optax.piecewise_interpolate_schedule(
      'cosine', peak / div_factor, boundaries))
  if floor <= 0:
    return onecycle
  return lambda t: jnp.maximum(onecycle(t), floor)


def piecewise_linear_schedule(init_value, peak, floor, warmup_steps,
                              total_steps, knots) -> optax.Schedule:
  """Warmup, then straight lines through `knots` (fractions of the peak).

  With K = len(knots) - 1 segments of equal length after the warmup,
  lr(W + i (T - W) / K) = max(peak * knots[i], floor), linear in between:
  any shape, e.g. the one tools/predict.py --optimize finds, as a config
  anyone can train.
  """
  positions = jnp.linspace(0.0, total_steps - warmup_steps, len(knots))
  rates = peak * jnp.asarray(knots, jnp.float32)
  body = lambda count: jnp.maximum(jnp.interp(count, positions, rates), floor)
  return _after_warmup(init_value, peak, warmup_steps, body)


# ------------------------------------------------- per-kind checks and text


def _check_sgdr(config):
  room = config.num_epochs - config.warmup_epochs
  checks.check_real(config, 'cycle_epochs', 1, room,
                    f'must lie in [1, num_epochs - warmup_epochs = {room:g}] '
                    '(the first cycle must fit after the warmup)')
  checks.check_real(config, 'cycle_mult', 1, checks.FLOAT32_MAX,
                    'must be a number >= 1 (cycles never shrink)')
  checks.check_real(config, 'restart_decay', 0, 1, 'must lie in (0, 1]',
                    low_open=True)


def _check_step(config):
  checks.check_real(config, 'step_decay', 0, 1, 'must lie in (0, 1]',
                    low_open=True)
  epochs = config.step_epochs
  allowed = (f'must be increasing epochs inside (warmup_epochs='
             f'{config.warmup_epochs:g}, num_epochs={config.num_epochs})')
  if (not isinstance(epochs, (tuple, list))
      or not all(checks.is_real(e) for e in epochs)):
    checks.fail('step_epochs', epochs, allowed)
  if any(b <= a for a, b in zip(epochs, epochs[1:])) or any(
      not config.warmup_epochs < e < config.num_epochs for e in epochs):
    checks.fail('step_epochs', epochs, allowed)


def _check_wsd(config):
  room = config.num_epochs - config.warmup_epochs
  checks.check_real(config, 'decay_fraction', 0, 1,
                    'must lie in [0, 1] (0: the decay is decay_epochs long; '
                    'otherwise that share of num_epochs)')
  if not config.decay_fraction:
    checks.check_real(config, 'decay_epochs', 0, room,
                      f'must lie in (0, num_epochs - warmup_epochs = '
                      f'{room:g}] (the decay follows the warmup)',
                      low_open=True)
  elif config.decay_fraction * config.num_epochs > room:
    checks.fail('decay_fraction', config.decay_fraction,
                f'must be at most (num_epochs - warmup_epochs) / num_epochs = '
                f'{room / config.num_epochs:g} here (the decay follows the '
                'warmup)')
  checks.check_choice(config, 'decay_shape', DECAY_SHAPES)


def _check_onecycle(config):
  checks.check_real(config, 'div_factor', 1, checks.FLOAT32_MAX,
                    'must be a number > 1 (the start is learning_rate / '
                    'div_factor)', low_open=True)
  checks.check_real(config, 'final_div_factor', 1, checks.FLOAT32_MAX,
                    'must be a number > 1 (the end is learning_rate / '
                    '(div_factor * final_div_factor))', low_open=True)
  if config.warmup_init_lr != 0:
    checks.fail('warmup_init_lr', config.warmup_init_lr,
                "must be 0 for schedule='onecycle' (it starts at "
                'learning_rate / div_factor)')
  if config.warmup_epochs >= config.num_epochs:
    checks.fail('warmup_epochs', config.warmup_epochs,
                f"must be < num_epochs={config.num_epochs} for "
                "schedule='onecycle' (its fall follows the rise)")


def _check_piecewise_linear(config):
  knots = config.knots
  if (not isinstance(knots, (tuple, list)) or len(knots) < 2
      or not all(checks.is_real(k) and 0 <= k <= 1 for k in knots)):
    checks.fail('knots', knots, 'must be at least 2 fractions of '
                'learning_rate, each in [0, 1], e.g. "(1, 0.5, 0)"')
  if config.warmup_epochs >= config.num_epochs:
    checks.fail('warmup_epochs', config.warmup_epochs,
                f'must be < num_epochs={config.num_epochs} for '
                "schedule='piecewise_linear' (its knots follow the warmup)")


def _describe_piecewise_linear(peak, floor, knots):
  ends = (f'{max(peak * knots[0], floor):g} to '
          f'{max(peak * knots[-1], floor):g}')
  return f'straight lines through {len(knots)} knots from {ends}'


def _sgdr_steps(peak, floor, warmup_steps, total_steps, cycle_steps,
                cycle_mult, restart_decay):
  steps = {}
  for i, c in enumerate(sgdr_layout(peak, floor, warmup_steps, total_steps,
                                    cycle_steps, cycle_mult, restart_decay)):
    if i:
      steps[f'last step of cycle {i}'] = c.start - 1
      steps[f'restart {i} (cycle {i + 1} begins)'] = c.start
    steps[f'middle of cycle {i + 1}'] = c.start + c.length // 2
  return steps


def _describe_sgdr(peak, floor, warmup_steps, total_steps, cycle_steps,
                   cycle_mult, restart_decay):
  cycles = sgdr_layout(peak, floor, warmup_steps, total_steps, cycle_steps,
                       cycle_mult, restart_decay)
  lengths = ', '.join(f'{c.length}' for c in cycles)
  peaks = ', '.join(f'{c.peak:g}' for c in cycles)
  return (f'SGDR: {len(cycles)} cosine cycles of {lengths} steps from peaks '
          f'{peaks} down to {floor:g}')


def _step_steps(drop_steps, steps_per_epoch):
  steps = {}
  for s in drop_steps:
    epoch = s / steps_per_epoch
    steps[f'before drop at epoch {epoch:g}'] = int(round(s)) - 1
    steps[f'drop at epoch {epoch:g}'] = int(round(s))
  return steps


def _describe_step(peak, floor, drop_steps, decay_factor, steps_per_epoch):
  epochs = ', '.join(f'{s / steps_per_epoch:g}' for s in drop_steps)
  return (f'{peak:g} multiplied by {decay_factor:g} at epochs [{epochs}]'
          + (f', floor {floor:g}' if floor else ''))


def _wsd_steps(total_steps, decay_steps, decay_fraction):
  start, length = wsd_decay_start(total_steps, decay_steps, decay_fraction)
  return {'start of decay (last step at the peak)': start,
          'first decay step': start + 1,
          'middle of the decay': start + length // 2}


def _describe_wsd(peak, floor, total_steps, decay_steps, decay_shape,
                  decay_fraction):
  start, length = wsd_decay_start(total_steps, decay_steps, decay_fraction)
  return (f'hold {peak:g} until step {start}, then {decay_shape} decay to '
          f'{floor:g} over the last {length} steps')


def _describe_onecycle(peak, floor, warmup_steps, div_factor,
                       final_div_factor):
  end = max(peak / (div_factor * final_div_factor), floor)
  return (f'one-cycle: cosine rise from {peak / div_factor:g} to {peak:g} '
          f'over {warmup_steps} steps, then cosine fall to {end:g}')


# ------------------------------------------------------------------ table


@dataclasses.dataclass(frozen=True)
class ScheduleKind:
  """One entry of SCHEDULES: everything the project knows about a kind.

  `build`, `key_steps` and `describe` take the arguments they name from
  those `resolve` makes (see `COMMON_ARGUMENTS` and `fields`).
  """
  summary: str           # one line for --help and the README
  build: Callable        # numbers -> optax.Schedule over the whole run
  # config field -> builder argument; arguments ending in `_steps` receive
  # the field's epochs times steps_per_epoch (builders round them).
  fields: Mapping[str, str] = dataclasses.field(default_factory=dict)
  check: Callable = lambda config: None   # ConfigError on bad fields
  key_steps: Callable = lambda: {}        # {name: step} beyond the common
  describe: Callable = lambda: ''         # what follows the warmup
  own_warmup: bool = False  # True: describe covers the warmup too


SCHEDULES_TABLE = {
    'warmup_cosine': ScheduleKind(
        summary='cosine decay from learning_rate to min_learning_rate',
        build=warmup_cosine_schedule,
        key_steps=lambda warmup_steps, rest_steps: {
            'middle of the decay': warmup_steps + rest_steps // 2},
        describe=lambda peak, floor: f'cosine decay from {peak:g} to '
        f'{floor:g}'),
    'sgdr': ScheduleKind(
        summary='cosine cycles with warm restarts',
        build=sgdr_schedule,
        fields={'cycle_epochs': 'cycle_steps', 'cycle_mult': 'cycle_mult',
                'restart_decay': 'restart_decay'},
        check=_check_sgdr, key_steps=_sgdr_steps, describe=_describe_sgdr),
    'constant': ScheduleKind(
        summary='learning_rate throughout',
        build=constant_schedule,
        describe=lambda peak: f'constant {peak:g}'),
    'step': ScheduleKind(
        summary='learning_rate times step_decay at each of step_epochs',
        build=step_schedule,
        fields={'step_epochs': 'drop_steps', 'step_decay': 'decay_factor'},
        check=_check_step, key_steps=_step_steps, describe=_describe_step),
    'wsd': ScheduleKind(
        summary='hold learning_rate, then decay over the last decay_epochs '
        '(or decay_fraction of the run)',
        build=wsd_schedule,
        fields={'decay_epochs': 'decay_steps', 'decay_shape': 'decay_shape',
                'decay_fraction': 'decay_fraction'},
        check=_check_wsd, key_steps=_wsd_steps, describe=_describe_wsd),
    'linear': ScheduleKind(
        summary='linear decay from learning_rate to min_learning_rate',
        build=linear_decay_schedule,
        key_steps=lambda warmup_steps, total_steps: {
            'middle of the decay': (warmup_steps + total_steps) // 2},
        describe=lambda peak, floor: f'linear decay from {peak:g} to '
        f'{floor:g}'),
    'onecycle': ScheduleKind(
        summary='cosine rise over warmup_epochs, then cosine fall',
        build=onecycle_schedule,
        fields={'div_factor': 'div_factor',
                'final_div_factor': 'final_div_factor'},
        check=_check_onecycle,
        key_steps=lambda warmup_steps, total_steps: {
            'middle of the fall': (warmup_steps + total_steps) // 2},
        describe=_describe_onecycle, own_warmup=True),
    'piecewise_linear': ScheduleKind(
        summary='straight lines through knots (fractions of learning_rate) '
        'spread evenly after the warmup',
        build=piecewise_linear_schedule,
        fields={'knots': 'knots'},
        check=_check_piecewise_linear,
        key_steps=lambda warmup_steps, total_steps: {
            'middle of the knots': (warmup_steps + total_steps) // 2},
        describe=_describe_piecewise_linear),
}
SCHEDULES = tuple(SCHEDULES_TABLE)

COMMON_ARGUMENTS = ('init_value', 'peak', 'floor', 'warmup_steps',
                    'total_steps', 'rest_steps', 'steps_per_epoch')

# ------------------------------------------------------- reading a config


def _with_defaults(config):
  """`config`, with fields it lacks taken from configs/default.py.

  The seed's API passes a config holding only num_epochs and warmup_epochs;
  configs/default.py stays the one source of every other default.
  """
  full = default.get_config()
  full.update(dict(config.items()))
  return full


def _epochs_to_steps(value, steps_per_epoch):
  if isinstance(value, (tuple, list)):
    return tuple(v * steps_per_epoch for v in value)
  return value * steps_per_epoch


def resolve(config, base_learning_rate: float, steps_per_epoch: int) -> dict:
  """The only reader of the config: every number a schedule needs, in steps.

  Returns the COMMON_ARGUMENTS plus the chosen kind's own `fields`, renamed
  to the builder's argument names.
  """
  config = _with_defaults(config)
  kind = SCHEDULES_TABLE[config.schedule]
  arguments = {
      'init_value': config.warmup_init_lr,
      'peak': base_learning_rate,
      'floor': config.min_learning_rate,
      'warmup_steps': warmup_steps(config, steps_per_epoch),
      'total_steps': config.num_epochs * steps_per_epoch,
      # The seed's cosine length: the epochs after the warmup, at least one.
      'rest_steps': int(round(max(config.num_epochs - config.warmup_epochs,
                                  1) * steps_per_epoch)),
      'steps_per_epoch': steps_per_epoch,
  }
  for field, argument in kind.fields.items():
    value = config[field]
    if argument.endswith('_steps'):
      value = _epochs_to_steps(value, steps_per_epoch)
    arguments[argument] = value
  return arguments


def _call(fn, arguments):
  """fn(**the arguments it names)."""
  names = inspect.signature(fn).parameters
  return fn(**{name: arguments[name] for name in names})


def warmup_steps(config, steps_per_epoch: int) -> int:
  """Number of warmup steps; `warmup_epochs` may be fractional."""
  return int(round(config.warmup_epochs * steps_per_epoch))


def kind_of(config) -> ScheduleKind:
  return SCHEDULES_TABLE[_with_defaults(config).schedule]


def create_learning_rate_fn(config, base_learning_rate: float,
                            steps_per_epoch: int) -> optax.Schedule:
  """The schedule `config.schedule` names, as a function step -> rate.

  Args:
    config: needs `num_epochs`, `warmup_epochs` and the fields of the chosen
      schedule (fields it lacks come from configs/default.py).
    base_learning_rate: peak rate, reached at the end of warmup.
    steps_per_epoch: optimizer steps in one epoch.

  Returns:
    A function step -> learning rate, usable by any optax optimizer.
  """
  return _call(kind_of(config).build,
               resolve(config, base_learning_rate, steps_per_epoch))


def sgdr_cycles(config, base_learning_rate: float,
                steps_per_epoch: int) -> list[Cycle]:
  """SGDR's cycles for `config` (see sgdr_layout)."""
  return _call(sgdr_layout, resolve(config, base_learning_rate,
                                    steps_per_epoch))


def validate(config) -> None:
  """The schedule's fields, including the combinations that cannot work."""
  checks.check_choice(config, 'schedule', SCHEDULES)
  peak = config.learning_rate
  checks.check_real(config, 'min_learning_rate', 0, peak,
                    f'must lie in [0, learning_rate={peak:g}] (a floor above '
                    'the peak is not a decay)')
  checks.check_real(config, 'warmup_init_lr', 0, peak,
                    f'must lie in [0, learning_rate={peak:g}]')
  SCHEDULES_TABLE[config.schedule].check(config)


def key_steps(config, steps_per_epoch: int) -> dict[str, int]:
  """Named steps worth printing: start, end of warmup, restarts, drops, end."""
  arguments = resolve(config, config.learning_rate, steps_per_epoch)
  total, num_warmup = arguments['total_steps'], arguments['warmup_steps']
  steps = {'first step': 0}
  if num_warmup:
    steps['last warmup step'] = num_warmup - 1
    steps['peak (end of warmup)'] = min(num_warmup, total - 1)
  steps.update(_call(kind_of(config).key_steps, arguments))
  steps['last step'] = total - 1
  # A key step at T (a one-step decay's first step, a drop rounded to T)
  # lies past the run's last step: no rate of the run belongs to it.
  return dict(sorted(((name, step) for name, step in steps.items()
                      if 0 <= step < total), key=lambda kv: kv[1]))


def describe(config, steps_per_epoch: int) -> str:
  """One line saying what the schedule does, for logs."""
  arguments = resolve(config, config.learning_rate, steps_per_epoch)
  kind = kind_of(config)
  total, num_warmup = arguments['total_steps'], arguments['warmup_steps']
  if kind.own_warmup:
    warmup = ''
  elif num_warmup:
    warmup = (f'linear warmup from {arguments["init_value"]:g} to '
              f'{arguments["peak"]:g} over {num_warmup} steps, then ')
  else:
    warmup = 'no warmup; '
  return (f'{config.num_epochs} epochs x {steps_per_epoch} steps = {total} '
          f'steps; {config.schedule}: {warmup}'
          f'{_call(kind.describe, arguments)}')


@dataclasses.dataclass(frozen=True)
class SchedulePlan:
  """A run's schedule: its length in steps and the rate at every step."""
  steps_per_epoch: int
  total_steps: int
  learning_rate_fn: optax.Schedule
  description: str


def epoch_steps(config, train_size: int) -> int:
  """`config.steps_per_epoch` if set, else one pass over `train_size`
  examples: the remainder that does not fill a whole batch is dropped, as
  in the Flax examples, so train_size // batch_size."""
  return config.steps_per_epoch or train_size // config.batch_size


def plan(config, train_size: int) -> SchedulePlan:
  """The schedule of a validated config over `train_size` training
  examples (steps_per_epoch above)."""
  steps_per_epoch = epoch_steps(config, train_size)
  return SchedulePlan(
      steps_per_epoch, config.num_epochs * steps_per_epoch,
      create_learning_rate_fn(config, config.learning_rate, steps_per_epoch),
      describe(config, steps_per_epoch))
