"""Predict a schedule's loss from a few runs: tools/predict.py's library.

A law of laws.py is fitted on the per-step records of a few finished runs
of one task and peak (say a constant rate, warmup + cosine and a two-stage
drop), then asked for the training-loss curve of any schedule the project
can train: its rate at every step comes from schedules.py itself, as
training builds it.

Steps and losses: train_steps.csv records at step s the loss of the batch
before that step's update, so after s updates, with the rates of steps
0..s-1 applied. A law's value at t (laws.py, 1-based) is the loss after t
updates. A fit therefore pairs losses[1:] with rates[:-1], and a
prediction's final loss is the law at t = T, after all T updates.

Intervals: with runs of n >= 2 seeds, the law is refitted on each seed's
runs alone; the spread s of those n predictions gives the 95% prediction
interval of the mean of n new seeds, centred on the pooled fit's value:
± t(0.975, n - 1) · s · sqrt(1/n + 1/n). One seed gives no interval.
"""

import dataclasses
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize
import scipy.stats

from machinery import checkpoints
from machinery import errors
from machinery import run_logs
from machinery import validation
import laws
import schedules

# A law is fitted on schedules up to the longest fitted run; it is asked for
# at most this many times that length (the benchmark's longest is 3x).
MAX_LENGTH_RATIO = 4.0
# Fields that must agree between the fitted runs and the schedule asked
# for: a law is fitted per task, data, model, optimizer, batch and peak.
SAME_FIELDS = ('task', 'dataset', 'text_path', 'batch_size', 'learning_rate',
               'optimizer', 'momentum', 'nesterov', 'b1', 'b2', 'eps',
               'weight_decay', 'grad_clip_norm', 'context_length',
               'num_layers', 'width', 'num_heads', 'steps_per_epoch')
# Optimizers whose rate is not a schedule a law can read.
NOT_SCHEDULES = ('schedule_free_sgd', 'schedule_free_adamw')
OPTIMIZE_SEGMENTS = 20  # straight pieces of an --optimize schedule


@dataclasses.dataclass(frozen=True)
class Run:
  """One finished run's records: its config.json and, per step, the rate
  applied and the training loss."""
  path: str
  config: dict
  rates: np.ndarray
  losses: np.ndarray

  @property
  def seed(self) -> int:
    return int(self.config.get('seed', 0))

  @property
  def steps(self) -> int:
    return len(self.rates)

  @property
  def steps_per_epoch(self) -> int:
    return self.steps // int(self.config['num_epochs'])

  def curve(self) -> laws.Curve:
    """The law's view: the loss after t updates against rates[:t]."""
    return laws.curve(self.rates[:-1], self.losses[1:])


def field(config, name):
  """A config's field, or the value an older run without it trained with."""
  if name in config:
    return config[name]
  return checkpoints.FIELDS_ADDED_LATER.get(name)


def load_run(path) -> Run:
  """A finished run's records (a workdir, or a published member holding
  train_steps.csv[.gz], epochs.csv and config.json).

  Raises:
    WorkdirError: the folder is no finished run of a schedule, or its
      records are damaged.
  """
  path = pathlib.Path(path)
  if not path.is_dir():
    raise errors.WorkdirError(f'--fit: {path} is not a folder (give run '
                              'workdirs, separated by commas)')
  config = run_logs.read_config(path)
  if not config:
    raise errors.WorkdirError(f'--fit: {path} holds no config.json: is it '
                              'the --workdir of a run?')
  if (path / run_logs.DIVERGED).exists():
    raise errors.WorkdirError(f'--fit: {path} diverged: a law is fitted on '
                              'runs that trained')
  if field(config, 'optimizer') in NOT_SCHEDULES:
    raise errors.WorkdirError(
        f'--fit: {path} trained with optimizer={config["optimizer"]!r}, '
        'whose averaging is not a rate schedule a law can read')
  epochs = run_logs.read_epochs(path, allow_empty=True)
  done = len(epochs.get('epoch', ()))
  if done != int(config['num_epochs']):
    raise errors.WorkdirError(
        f'--fit: {path} is not finished ({done} of {config["num_epochs"]} '
        'epochs): fit on finished runs')
  steps = run_logs.read_steps(path)
  run = Run(str(path), config, np.asarray(steps['learning_rate'], np.float64),
            np.asarray(steps['loss'], np.float64))
  if run.steps - 1 < laws.MIN_STEPS:
    raise errors.WorkdirError(
        f'--fit: {path} has {run.steps} steps; a law needs at least '
        f'{laws.MIN_STEPS + 1}')
  if not np.all(np.isfinite(run.losses)) or run.losses.min() <= 0:
    raise errors.WorkdirError(f'--fit: {path} records a loss that is not '
                              'finite and positive')
  return run


def check_fit_set(runs: list) -> None:
  """One task, data, model, optimizer, batch and peak for every run.

  Raises:
    ConfigError: naming the first field two runs differ in.
  """
  first = runs[0]
  for run in runs[1:]:
    for name in SAME_FIELDS:
      if field(run.config, name) != field(first.config, name):
        raise errors.ConfigError(
            f'--fit runs differ in {name}: {first.path} has '
            f'{field(first.config, name)!r}, {run.path} has '
            f'{field(run.config, name)!r}; a law is fitted on runs of one '
            'task, data, model, optimizer, batch size and peak')
    mine = run.config.get('run_environment', {}).get('data_fingerprint')
    theirs = first.config.get('run_environment', {}).get('data_fingerprint')
    if mine != theirs:
      raise errors.ConfigError(
          f'--fit runs trained on different data: {first.path} has data '
          f'fingerprint {theirs}, {run.path} has {mine}')
    if run.steps_per_epoch != first.steps_per_epoch:
      raise errors.ConfigError(
          f'--fit runs differ in steps per epoch: {first.path} has '
          f'{first.steps_per_epoch}, {run.path} has {run.steps_per_epoch}')


def schedule_rates(config, runs: list) -> np.ndarray:
  """The rate at every step of `config`, built by schedules.py as training
  builds it, over the fitted runs' steps per epoch.

  Raises:
    ConfigError: the config is invalid, is not of the fitted runs' task,
      data, model, optimizer, batch or peak, or is longer or shorter than
      the law supports.
  """
  validation.validate_config(config)
  if config.optimizer in NOT_SCHEDULES:
    raise errors.ConfigError(
        f'config.optimizer={config.optimizer!r} is invalid here: its '
        'averaging is not a rate schedule a law can predict')
  first = runs[0]
  for name in SAME_FIELDS:
    if name in config and config[name] != field(first.config, name):
      raise errors.ConfigError(
          f'config.{name}={config[name]!r} is invalid here: the --fit runs '
          f'have {field(first.config, name)!r} (a law predicts the task, '
          'data, model, optimizer, batch size and peak it was fitted on)')
  steps_per_epoch = first.steps_per_epoch
  total = config.num_epochs * steps_per_epoch
  longest = max(run.steps for run in runs)
  if not laws.MIN_STEPS < total <= MAX_LENGTH_RATIO * longest:
    raise errors.ConfigError(
        f'config.num_epochs={config.num_epochs} is invalid here: {total} '
        f'steps; the law supports {laws.MIN_STEPS + 1} to '
        f'{int(MAX_LENGTH_RATIO * longest)} steps ({MAX_LENGTH_RATIO:g}x the '
        f'longest fitted run, {longest})')
  fn = schedules.create_learning_rate_fn(config, config.learning_rate,
                                         steps_per_epoch)
  # Evaluated on every step at once, as tools/plot_schedule.py does.
  return np.asarray(fn(np.arange(total)), np.float64)


@dataclasses.dataclass(frozen=True)
class LawFit:
  """A law fitted on every run at once, and on each seed's runs alone."""
  pooled: laws.Fit
  per_seed: dict          # seed -> laws.Fit (empty with one seed)
  peak: float

  def predict(self, rates, steps=None) -> np.ndarray:
    return self.pooled.predict(np.asarray(rates) / self.peak, steps)

  def final(self, rates) -> dict:
    """The predicted loss after the last update and its interval."""
    return self.level(rates, [len(rates)])

  def level(self, rates, steps) -> dict:
    """The predicted mean loss over `steps` (1-based) and its interval."""
    rates = np.asarray(rates) / self.peak
    mean = lambda fit: float(np.mean(fit.predict(rates, steps)))
    value = mean(self.pooled)
    out = {'final_loss': value, 'interval': None}
    if len(self.per_seed) < 2:
      out['interval_note'] = ('one seed: fit runs of at least 2 seeds for an '
                              'interval')
      return out
    each = [mean(f) for f in self.per_seed.values()]
    n = len(each)
    failed = sum(not math.isfinite(v) for v in each)
    if failed:  # no interval, rather than a NaN one
      out['per_seed_final_loss'] = each
      out['interval_note'] = (f'no interval: the refit on {failed} of {n} '
                              'seeds\' runs alone predicts no finite loss')
      return out
    half = (scipy.stats.t.ppf(0.975, n - 1) * np.std(each, ddof=1)
            * math.sqrt(2 / n))
    out['interval'] = [value - half, value + half]
    out['per_seed_final_loss'] = each
    out['interval_note'] = (f'95% prediction interval of the mean of {n} new '
                            f'seeds, from the law refitted on each of the '
                            f'{n} seeds\' runs alone')
    return out


def fit_runs(law_name: str, runs: list) -> LawFit:
  """`law_name` fitted on `runs` (check_fit_set first)."""
  peak = float(field(runs[0].config, 'learning_rate'))
  pooled = laws.fit(law_name, [run.curve() for run in runs])
  by_seed = {}
  for run in runs:
    by_seed.setdefault(run.seed, []).append(run.curve())
  # Each seed's refit starts from the pooled fit: the same law, less data.
  per_seed = ({seed: laws.fit(law_name, curves, start=pooled.params)
               for seed, curves in sorted(by_seed.items())}
              if len(by_seed) >= 2 else {})
  return LawFit(pooled, per_seed, peak)


# A fitted floor below this is at zero: the runs did not show where the
# loss levels off (the benchmark's laws all fitted L0 below 1e-10 on the
# LM, below 2e-9 on Fashion-MNIST).
FLOOR_AT_ZERO = 1e-6


def cautions(law_fit: LawFit, runs: list, rates) -> list[str]:
  """Why a prediction may mislead, from what docs/laws.md's benchmark
  measured: every law missed runs 2x and 3x its fitted length by far, and
  not in one direction a user could correct for (too low on the LM, too
  high on Fashion-MNIST; their fitted floors at zero on both)."""
  longest = max(run.steps for run in runs)
  if len(rates) <= longest:
    return []
  floor = law_fit.pooled.params.get('L0')
  why = (f'; its floor L0 fits at {floor:.1g}: these runs do not show where '
         'the loss levels off' if floor is not None and floor < FLOOR_AT_ZERO
         else '')
  return [f'the schedule is {len(rates) / longest:.1f}x the longest fitted '
          f'run, and on docs/laws.md\'s benchmark every law missed runs 2x '
          f'and 3x their fitted length by far (too low on the language '
          f'model, too high on Fashion-MNIST){why}']


def last_bin_steps(rates) -> np.ndarray:
  """The steps (1-based, after t updates) of a run's last bin of laws.BINS
  after its warmup: a final level that one batch's noise does not set."""
  rates = np.asarray(rates, np.float64)
  last = laws.curve(rates[:-1], np.ones(len(rates) - 1)).steps[-1]
  return np.arange(last[0], last[-1] + 1)


def measured_final(run: Run) -> float:
  """A run's final loss level: its mean loss over last_bin_steps."""
  return float(run.losses[last_bin_steps(run.rates)].mean())


def predicted_final_bin(law_fit: LawFit, rates) -> dict:
  """The law's mean over the same steps as measured_final, and its
  interval (LawFit.level)."""
  return law_fit.level(rates, last_bin_steps(rates))


# ------------------------------------------------------------- --optimize


def _knots(theta):
  """Unconstrained -> non-increasing knots from 1: each a fraction of the
  one before it."""
  return jnp.concatenate([jnp.ones(1), jnp.cumprod(jax.nn.sigmoid(theta))])


def _starts(segments: int) -> list:
  """Linear to 1% of the peak, cosine to 1%, and a WSD-like hold-then-drop
  as starting shapes, as ratios of each knot to the one before it."""
  x = np.linspace(0, 1, segments + 1)
  shapes = [1 - 0.99 * x, 0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * x)),
            np.where(x <= 0.8, 1.0, 1 - 0.99 * (x - 0.8) / 0.2)]
  out = []
  for knots in shapes:
    ratio = np.clip(knots[1:] / knots[:-1], 1e-4, 1 - 1e-4)
    out.append(np.log(ratio / (1 - ratio)))
  return out


def optimize(law_fit: LawFit, config, runs, segments=OPTIMIZE_SEGMENTS):
  """Knots (fractions of the peak) of the non-increasing schedule after the
  config's own warmup, of its length and peak, that minimise the law's
  final loss; the first knot is the peak.

  Returns:
    (knots as a tuple rounded to 4 digits, the config to train it).
  """
  found = config.copy_and_resolve_references()
  found.schedule = 'piecewise_linear'
  found.min_learning_rate = 0.0
  if config.schedule == 'onecycle':  # its rise is not the linear warmup
    found.warmup_init_lr = config.learning_rate / config.div_factor
  # The warmup the found config trains with (piecewise_linear's linear one).
  rates = schedule_rates(found, runs) / law_fit.peak
  total = len(rates)
  warmup = schedules.warmup_steps(config, runs[0].steps_per_epoch)
  law = laws.LAWS[law_fit.pooled.law]
  with jax.enable_x64(True):
    params = {k: jnp.float64(v) for k, v in law_fit.pooled.params.items()}
    head = jnp.asarray(rates[:warmup])
    positions = jnp.linspace(0.0, total - warmup, segments + 1)
    body_steps = jnp.arange(total - warmup, dtype=jnp.float64)

    def final_loss(theta):
      body = jnp.interp(body_steps, positions, _knots(theta))
      all_rates = jnp.concatenate([head, body])
      return law.predict(params, all_rates, jnp.asarray([total]),
                         warmup)[0]
    value_and_grad = jax.jit(jax.value_and_grad(final_loss))

    def objective(theta):
      value, grad = value_and_grad(jnp.asarray(theta))
      return float(value), np.asarray(grad, np.float64)

    best = min((scipy.optimize.minimize(objective, start, jac=True,
                                        method='L-BFGS-B')
                for start in _starts(segments)), key=lambda r: r.fun)
    knots = tuple(round(float(k), 4) for k in _knots(jnp.asarray(best.x)))
  found.knots = knots
  return knots, found
