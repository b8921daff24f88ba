"""The plan of a budget sweep: its budgets and cooldowns, the config of each
branch and of the trunk, where each cooldown starts, and every refusal
before any training."""

import dataclasses

from machinery import errors
from machinery import parallel
from machinery import validation
import schedules


@dataclasses.dataclass(frozen=True)
class Cooldown:
  """A cooldown: the last `fraction` of each budget, of this `shape`."""
  fraction: float
  shape: str

  @property
  def name(self) -> str:
    return f'{self.shape}_{self.fraction:g}'


def cooldowns_of(config, decay_fraction) -> tuple:
  """`decay_fraction`: one fraction (the config's decay_shape), or the
  sweep's Cooldowns already."""
  if isinstance(decay_fraction, (tuple, list)):
    return tuple(decay_fraction)
  return (Cooldown(decay_fraction, config.decay_shape),)


def parse_cooldowns(config, fractions: list, shapes: list) -> tuple:
  """--decay_fraction=0.1,0.2 x --decay_shapes=linear,1-sqrt -> every
  (fraction, shape) as a Cooldown; no shapes: the config's decay_shape."""
  try:
    values = [float(f) for f in fractions]
  except ValueError:
    raise errors.ConfigError(
        f'--decay_fraction={",".join(fractions)} is invalid: must be '
        'fractions in (0, 1), e.g. --decay_fraction=0.1,0.2,0.4.') from None
  if not values or len(set(values)) != len(values):
    raise errors.ConfigError(
        f'--decay_fraction={",".join(fractions)} is invalid: must name each '
        'fraction once.')
  if len(set(shapes)) != len(shapes):
    raise errors.ConfigError(f'--decay_shapes={",".join(shapes)} is invalid: '
                             'must name each shape once.')
  for shape in shapes:
    if shape not in schedules.DECAY_SHAPES:
      raise errors.ConfigError(
          f'--decay_shapes={",".join(shapes)} is invalid: each must be one '
          f'of {", ".join(schedules.DECAY_SHAPES)}.')
  return tuple(Cooldown(f, shape) for f in values
               for shape in (shapes or [config.decay_shape]))


@dataclasses.dataclass(frozen=True)
class Branch:
  """One run of the sweep: a budget with a cooldown; `name` its folder."""
  budget: int
  cooldown: Cooldown
  name: str


def branches_of(budgets, cooldowns) -> list:
  """Every (budget, cooldown): `budget<B>` alone when there is one
  cooldown (a plain budget sweep), else `budget<B>_<shape>_<fraction>`."""
  return [Branch(b, c, f'budget{b}' if len(cooldowns) == 1
                 else f'budget{b}_{c.name}')
          for c in cooldowns for b in budgets]


def parse_budgets(text: str) -> tuple[int, ...]:
  """'2,3,5,10' -> (2, 3, 5, 10): whole epochs, increasing."""
  allowed = ('must be whole epochs >= 1 in increasing order, e.g. '
             '--budgets=2,3,5,10')
  try:
    budgets = tuple(int(v) for v in str(text).split(','))
  except ValueError:
    raise errors.ConfigError(f'--budgets={text} is invalid: {allowed}.'
                             ) from None
  if not budgets or any(b < 1 for b in budgets) or any(
      b <= a for a, b in zip(budgets, budgets[1:])):
    raise errors.ConfigError(f'--budgets={text} is invalid: {allowed}.')
  return budgets


def budget_config(config, budget: int, decay_fraction: float, seed: int,
                  decay_shape: str | None = None):
  """The config of the B-epoch run that branch B must equal."""
  config = config.copy_and_resolve_references()
  config.num_epochs = budget
  config.decay_fraction = decay_fraction
  if decay_shape is not None:
    config.decay_shape = decay_shape
  config.seed = seed
  return config


def branch_config(config, branch: Branch, seed: int):
  return budget_config(config, branch.budget, branch.cooldown.fraction, seed,
                       branch.cooldown.shape)


def trunk_config(config, budgets, cooldowns, seed: int):
  """The trunk: the longest budget's run with the latest cooldown start
  (the smallest fraction), paused at every branch's start."""
  latest = min(cooldowns, key=lambda c: c.fraction)
  return budget_config(config, budgets[-1], latest.fraction, seed,
                       latest.shape)


def check_plan(config, budgets, decay_fraction, seeds) -> None:
  """Every refusal before any training: one line each."""
  if config.schedule != 'wsd':
    raise errors.ConfigError(
        f"config.schedule={config.schedule!r} is invalid for "
        "tools/budgets.py: it branches warmup-stable-decay runs, whose rate "
        "before the cooldown does not depend on the run's length; use "
        "--config=configs/wsd.py (or --config.schedule=wsd).")
  cooldowns = cooldowns_of(config, decay_fraction)
  for fraction in sorted({c.fraction for c in cooldowns}):
    if not (isinstance(fraction, (int, float)) and 0 < fraction < 1):
      raise errors.ConfigError(
          f'--decay_fraction={fraction} is invalid: must lie in (0, 1) '
          '(the share of each budget its cooldown takes; a cooldown of the '
          'whole run leaves no trunk to branch from: train such runs with '
          'tools/study.py --vary=num_epochs=...).')
  if seeds < 1:
    raise errors.ConfigError(f'--seeds={seeds} is invalid: must be >= 1.')
  for branch in branches_of(budgets, cooldowns):
    budget, fraction = branch.budget, branch.cooldown.fraction
    cooldown = fraction * budget
    if config.warmup_epochs + cooldown > budget:
      raise errors.ConfigError(
          f'--budgets: a budget of {budget} epoch(s) is shorter than '
          f'warmup_epochs ({config.warmup_epochs:g}) plus its cooldown '
          f'({cooldown:g} = {fraction:g} x {budget}); drop it or '
          'shorten the warmup.')
    validation.validate_config(branch_config(config, branch, 0))


def cooldown_start(config, steps_per_epoch: int) -> int:
  """S_B: the first step of the budget's cooldown (its last step at the
  peak), as its own schedule computes it."""
  total = config.num_epochs * steps_per_epoch
  start, _ = schedules.wsd_decay_start(
      total, config.decay_epochs * steps_per_epoch, config.decay_fraction)
  return start


def check_call_grouping(config, starts, steps_per_epoch) -> None:
  """With several steps per jitted call a branch point must lie on a call
  boundary, or the branch would group its steps unlike the B-epoch run."""
  k = parallel.steps_per_call(config)
  for start in starts:
    if k > 1 and start % steps_per_epoch % k:
      raise errors.ConfigError(
          f'config.steps_per_call={k} is invalid here: a cooldown starts at '
          f'step {start}, inside a call of {k} steps, so its branch would '
          'not be the run it stands for; use --config.steps_per_call=1.')
