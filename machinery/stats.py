"""The statistics a schedule study reports: means with Student-t intervals.

Pure functions over numbers. A claim that one setting beats another needs
a paired 95% interval that excludes zero: seeds are paired (same init and
data order for both settings), which removes most of the seed-to-seed noise
from the difference.
"""

import dataclasses
import math

import numpy as np

# Two-sided 95% quantiles of Student's t, t_{0.975}(df), for df = 1..30.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262,
         2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101,
         2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052,
         2.048, 2.045, 2.042)


def t975(df: int) -> float:
  """t_{0.975}(df); beyond the table, Cornish-Fisher from z = 1.95996.

  t ~ z + (z^3 + z) / (4 df) + (5 z^5 + 16 z^3 + 3 z) / (96 df^2), which is
  within 0.001 of the exact quantile for df > 30.
  """
  if df < 1:
    raise ValueError(f'need at least 2 values for an interval, df={df}')
  if df <= len(_T975):
    return _T975[df - 1]
  z = 1.959964
  return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (
      96 * df**2)


@dataclasses.dataclass(frozen=True)
class Interval:
  """Mean, sample standard deviation and 95% Student-t interval of n values."""
  n: int
  mean: float
  std: float
  ci95_low: float
  ci95_high: float

  @property
  def excludes_zero(self) -> bool:
    return self.ci95_low > 0 or self.ci95_high < 0

  def as_dict(self) -> dict:
    return dataclasses.asdict(self)


def mean_interval(values) -> Interval:
  """mean ± t_{0.975}(n-1) · s / sqrt(n); no interval (nan) for n = 1,
  and no mean either (nan) for n = 0."""
  values = np.asarray(values, np.float64)
  n = len(values)
  if n == 0:
    return Interval(0, math.nan, math.nan, math.nan, math.nan)
  mean = float(values.mean())
  if n < 2:
    return Interval(n, mean, math.nan, math.nan, math.nan)
  std = float(values.std(ddof=1))
  half = t975(n - 1) * std / math.sqrt(n)
  return Interval(n, mean, std, mean - half, mean + half)


def paired_difference(values, baseline) -> Interval:
  """The interval of values[i] - baseline[i] (the same seeds, in order)."""
  values, baseline = np.asarray(values), np.asarray(baseline)
  if values.shape != baseline.shape:
    raise ValueError('paired values need the same seeds on both sides')
  return mean_interval(values - baseline)


def percent(interval: Interval) -> str:
  """An accuracy's interval as '99.28% [99.23, 99.34]': the mean alone
  for one value, '—' for none."""
  if interval.n < 2:
    return f'{100 * interval.mean:.2f}%' if interval.n else '—'
  return (f'{100 * interval.mean:.2f}% [{100 * interval.ci95_low:.2f}, '
          f'{100 * interval.ci95_high:.2f}]')


def points(mean, low, high) -> str:
  """An accuracy difference and its interval in percentage points:
  '+0.20 [+0.10, +0.30]'."""
  return f'{100 * mean:+.2f} [{100 * low:+.2f}, {100 * high:+.2f}]'


def verdict(difference: Interval) -> str:
  """'better', 'worse' or 'no detectable difference' from a paired interval."""
  if difference.n < 2 or not difference.excludes_zero:
    return 'no detectable difference'
  return 'better' if difference.mean > 0 else 'worse'
