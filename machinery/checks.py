"""Small helpers for one-line config errors, shared by every module's checks.

Kept apart from machinery.validation so that the schedule and optimizer
tables (schedules.py, optimizers.py) can state their own checks without
importing the validator that calls them.
"""

import math
import numbers

import numpy as np

from machinery.errors import ConfigError


def fail(field, value, allowed):
  raise ConfigError(f'config.{field}={value!r} is invalid: {allowed}.')


def is_int(value):
  return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value):
  return (isinstance(value, numbers.Real) and not isinstance(value, bool)
          and math.isfinite(value))


# Rates and factors are float32 on the device: larger values become inf.
FLOAT32_MAX = float(np.finfo(np.float32).max)
# Steps are int32 on the device.
INT32_MAX = int(np.iinfo(np.int32).max)


def check_real(config, name, low, high, allowed, low_open=False,
               high_open=False):
  """config[name] must be a finite number in [low, high] (or open ends)."""
  value = config[name]
  ok = is_real(value) and (value > low if low_open else value >= low) and (
      value < high if high_open else value <= high)
  if not ok:
    fail(name, value, allowed)


def check_choice(config, name, choices):
  if config[name] not in choices:
    fail(name, config[name], f'must be one of {tuple(choices)}')


def check_int(config, name, low, allowed):
  """config[name] must be an integer >= low."""
  if not is_int(config[name]) or config[name] < low:
    fail(name, config[name], allowed)
