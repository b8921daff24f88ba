"""Config checks that fail early, in one line, naming the field.

A wrong value should never surface as a stack trace from inside JAX, nor as a
run that silently trains with a schedule the user did not mean. Every check
here runs before any data is loaded or any function is compiled.
"""

import math
import numbers

import schedules

SUPPORTED_DATASETS = ('mnist', 'fashion_mnist')
DATA_SOURCES = ('auto', 'tfds', 'idx')


class ConfigError(ValueError):
  """A config field holds a value outside its allowed range."""


def _fail(field, value, allowed):
  raise ConfigError(f'config.{field}={value!r} is invalid: {allowed}.')


def _is_int(value):
  return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value):
  return (isinstance(value, numbers.Real) and not isinstance(value, bool)
          and math.isfinite(value))


def validate_config(config) -> None:
  """Raises ConfigError on the first invalid field; returns None if all ok."""
  if not _is_int(config.num_epochs) or config.num_epochs < 1:
    _fail('num_epochs', config.num_epochs, 'must be an integer >= 1')
  if (not _is_real(config.warmup_epochs)
      or not 0 <= config.warmup_epochs <= config.num_epochs):
    _fail('warmup_epochs', config.warmup_epochs,
          f'must lie in [0, num_epochs={config.num_epochs}]')
  if not _is_real(config.learning_rate) or config.learning_rate <= 0:
    _fail('learning_rate', config.learning_rate, 'must be a number > 0')
  if not _is_real(config.momentum) or not 0 <= config.momentum < 1:
    _fail('momentum', config.momentum, 'must lie in [0, 1)')
  if not _is_int(config.batch_size) or config.batch_size < 1:
    _fail('batch_size', config.batch_size, 'must be an integer >= 1')
  micro = config.get('micro_batch_size', 0)
  if not _is_int(micro) or micro < 0 or (micro and config.batch_size % micro):
    _fail('micro_batch_size', micro,
          f'must be 0 (automatic) or divide batch_size={config.batch_size}')
  cpu_devices = config.get('cpu_devices', 0)
  if not _is_int(cpu_devices) or cpu_devices < 0:
    _fail('cpu_devices', cpu_devices, 'must be an integer >= 0 (0: automatic)')
  if not _is_int(config.eval_batch_size) or config.eval_batch_size < 1:
    _fail('eval_batch_size', config.eval_batch_size,
          'must be an integer >= 1')
  _validate_schedule(config)
  if config.dataset not in SUPPORTED_DATASETS:
    _fail('dataset', config.dataset, f'must be one of {SUPPORTED_DATASETS}')
  if config.data_source not in DATA_SOURCES:
    _fail('data_source', config.data_source,
          f'must be one of {DATA_SOURCES}')
  if config.data_source == 'idx' and not config.idx_dir:
    _fail('idx_dir', config.idx_dir,
          'must name a folder of IDX files when data_source="idx"')
  if not _is_int(config.seed):
    _fail('seed', config.seed, 'must be an integer')
  _validate_run_fields(config)


PROGRESS_BAR = ('auto', 'always', 'never')


def _validate_run_fields(config) -> None:
  """Checkpointing and logging fields (older configs may lack them)."""
  every = config.get('checkpoint_every_epochs', 1)
  if not _is_int(every) or every < 0:
    _fail('checkpoint_every_epochs', every,
          'must be an integer >= 0 (0: only at the end and on Ctrl-C)')
  keep = config.get('keep_checkpoints', 3)
  if not _is_int(keep) or keep < 1:
    _fail('keep_checkpoints', keep, 'must be an integer >= 1')
  log_every = config.get('log_every_steps', 100)
  if not _is_int(log_every) or log_every < 1:
    _fail('log_every_steps', log_every, 'must be an integer >= 1')
  bar = config.get('progress_bar', 'auto')
  if bar not in PROGRESS_BAR:
    _fail('progress_bar', bar, f'must be one of {PROGRESS_BAR}')
  if not isinstance(config.get('tensorboard', True), bool):
    _fail('tensorboard', config.tensorboard, 'must be true or false')


def validate_batch_size(config, train_size: int) -> None:
  """The batch must fit in the training split (known once data is loaded)."""
  if config.batch_size > train_size:
    _fail('batch_size', config.batch_size,
          f'must lie in [1, {train_size}] (the size of the training split)')


def _check_real(config, name, low, high, allowed, low_open=False,
                high_open=False):
  value = schedules.field(config, name)
  ok = _is_real(value) and (value > low if low_open else value >= low) and (
      value < high if high_open else value <= high)
  if not ok:
    _fail(name, value, allowed)


def _validate_schedule(config) -> None:
  """The schedule's fields, including the combinations that cannot work."""
  kind = schedules.field(config, 'schedule')
  if kind not in schedules.SCHEDULES:
    _fail('schedule', kind, f'must be one of {schedules.SCHEDULES}')
  peak = config.learning_rate
  _check_real(config, 'min_learning_rate', 0, peak,
              f'must lie in [0, learning_rate={peak:g}] (a floor above the '
              'peak is not a decay)')
  _check_real(config, 'warmup_init_lr', 0, peak,
              f'must lie in [0, learning_rate={peak:g}]')
  if kind == 'sgdr':
    room = config.num_epochs - config.warmup_epochs
    _check_real(config, 'cycle_epochs', 1, room,
                f'must lie in [1, num_epochs - warmup_epochs = {room:g}] '
                '(the first cycle must fit after the warmup)')
    _check_real(config, 'cycle_mult', 1, math.inf,
                'must be a number >= 1 (cycles never shrink)')
    _check_real(config, 'restart_decay', 0, 1,
                'must lie in (0, 1]', low_open=True)
  if kind == 'step':
    _check_real(config, 'step_decay', 0, 1, 'must lie in (0, 1]',
                low_open=True)
    epochs = schedules.field(config, 'step_epochs')
    allowed = (f'must be increasing epochs inside (warmup_epochs='
               f'{config.warmup_epochs:g}, num_epochs={config.num_epochs})')
    if (not isinstance(epochs, (tuple, list))
        or not all(_is_real(e) for e in epochs)):
      _fail('step_epochs', epochs, allowed)
    if any(b <= a for a, b in zip(epochs, epochs[1:])) or any(
        not config.warmup_epochs < e < config.num_epochs for e in epochs):
      _fail('step_epochs', epochs, allowed)
