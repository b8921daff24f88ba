"""Config checks that fail early, in one line, naming the field.

A wrong value should never surface as a stack trace from inside JAX, nor as a
run that silently trains with a schedule the user did not mean. Every check
here runs before any data is loaded or any function is compiled.
"""

import math
import numbers

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
  if not _is_int(config.eval_batch_size) or config.eval_batch_size < 1:
    _fail('eval_batch_size', config.eval_batch_size,
          'must be an integer >= 1')
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


def validate_batch_size(config, train_size: int) -> None:
  """The batch must fit in the training split (known once data is loaded)."""
  if config.batch_size > train_size:
    _fail('batch_size', config.batch_size,
          f'must lie in [1, {train_size}] (the size of the training split)')
