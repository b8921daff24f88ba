"""The statistics a schedule study reports, and the verdicts they allow.

Pure functions over numbers; quantiles and p-values from scipy.stats.

- A mean gets a 95% Student-t interval, cut to what is possible (an
  accuracy lies in [0, 1]).
- Two settings are compared over the same seeds (same initial parameters
  and data order), which removes most of the seed-to-seed noise from the
  difference: a paired t-test and the 95% interval of the paired difference.
- A table makes many comparisons at once, and one of them excluding zero
  by chance is likely: each table is one family, and "better"/"worse" is
  said only where the Holm-adjusted p-value is below ALPHA (`in_family`).
- "No detectable difference" is not "the same": beside it goes the
  smallest difference the study would have detected with 80% power at the
  family's strictest level (`detectable_difference`). "As good as" is said
  only through an equivalence test (two one-sided tests) with a margin
  fixed before the numbers (`equivalence`).
- Runs that diverge or stay at chance are not bell-shaped numbers: they
  are counted ("k of n trained") and compared by an exact test on the
  paired seeds (`trained_counts`), never averaged into an interval.
"""

import dataclasses
import math

import numpy as np
from scipy import optimize
from scipy import stats as scipy_stats

ALPHA = 0.05
POWER = 0.8


def t975(df: int) -> float:
  """t_{0.975}(df), the two-sided 95% quantile of Student's t."""
  if df < 1:
    raise ValueError(f'need at least 2 values for an interval, df={df}')
  return float(scipy_stats.t.ppf(0.975, df))


@dataclasses.dataclass(frozen=True)
class Interval:
  """Mean, sample standard deviation and 95% Student-t interval of n values."""
  n: int
  mean: float
  std: float
  ci95_low: float
  ci95_high: float

  def as_dict(self) -> dict:
    return dataclasses.asdict(self)


def mean_interval(values, bounds=None) -> Interval:
  """mean ± t_{0.975}(n-1) · s / sqrt(n), cut to `bounds` (low, high) where
  given; no interval (nan) for n = 1, and no mean either (nan) for n = 0."""
  values = np.asarray(values, np.float64)
  n = len(values)
  if n == 0:
    return Interval(0, math.nan, math.nan, math.nan, math.nan)
  mean = float(values.mean())
  if n < 2:
    return Interval(n, mean, math.nan, math.nan, math.nan)
  std = float(values.std(ddof=1))
  half = t975(n - 1) * std / math.sqrt(n)
  low, high = mean - half, mean + half
  if bounds is not None:
    low, high = max(low, bounds[0]), min(high, bounds[1])
  return Interval(n, mean, std, low, high)


@dataclasses.dataclass(frozen=True)
class Difference(Interval):
  """A paired difference: its interval, the two-sided paired t-test's
  p-value, the p-value after Holm's correction within its family (alone:
  the same), the family's size, and the smallest difference the family
  would have detected with 80% power."""
  p_value: float = math.nan
  p_holm: float = math.nan
  family_size: int = 1
  detectable: float = math.nan
  test: str = 't'


def paired_difference(values, baseline, bounds=None,
                      test: str = 't') -> Difference:
  """values[i] - baseline[i] (the same seeds, in order): its interval
  (cut to `bounds`) and a paired test, as a family of one: the t-test, or
  for whole numbers (epochs to a target) test='sign', the exact sign test
  on the seeds that differ (a t interval of a few small integers would
  promise more than they hold; the interval stays as a description)."""
  values = np.asarray(values, np.float64)
  baseline = np.asarray(baseline, np.float64)
  if values.shape != baseline.shape:
    raise ValueError('paired values need the same seeds on both sides')
  differences = values - baseline
  interval = mean_interval(differences, bounds)
  if test == 'sign':
    p, detectable = _sign_test_p(differences), math.nan
  else:
    p = _t_test_p(differences)
    detectable = detectable_difference(interval.std, interval.n, ALPHA)
  return Difference(**interval.as_dict(), p_value=p, p_holm=p,
                    detectable=detectable, test=test)


def _sign_test_p(differences) -> float:
  """Exact two-sided sign test (ties dropped); nan below 2 values."""
  if len(differences) < 2:
    return math.nan
  above, below = int(np.sum(differences > 0)), int(np.sum(differences < 0))
  if not above + below:
    return 1.0
  return float(scipy_stats.binomtest(above, above + below, 0.5).pvalue)


def _t_test_p(differences) -> float:
  """Two-sided one-sample t-test of mean 0 (nan below 2 values). Equal
  differences have no spread: p is 0 if they are not 0, else 1."""
  if len(differences) < 2:
    return math.nan
  if np.all(differences == differences[0]):
    return 0.0 if differences[0] != 0 else 1.0
  return float(scipy_stats.ttest_1samp(differences, 0.0).pvalue)


def holm(p_values, family_size: int | None = None) -> list[float]:
  """Holm's step-down adjustment of a family's p-values (nan entries are
  not tested and stay nan). scipy.stats has Benjamini-Hochberg but not
  Holm, which controls the family-wise error rate: the rule here.

  family_size: the family planned, where some of its tests have no result
  yet; they count as the family's largest p-values (each present one is
  adjusted as strictly as any later result could make it).
  """
  tested = [(p, i) for i, p in enumerate(p_values) if not math.isnan(p)]
  m = len(tested) if family_size is None else family_size
  if m < len(tested):
    raise ValueError(f'family_size={family_size} is smaller than the '
                     f'{len(tested)} p-values tested')
  adjusted = [math.nan] * len(p_values)
  running = 0.0
  for rank, (p, i) in enumerate(sorted(tested)):
    running = max(running, min(1.0, (m - rank) * p))
    adjusted[i] = running
  return adjusted


def in_family(differences: list, family_size: int | None = None) -> list:
  """The family's differences with their Holm-adjusted p-values, the
  family's size, and (Differences) the smallest difference each could
  detect at the family's strictest level, ALPHA / m: a difference that
  size is found with 80% power whatever its rank in the family.
  family_size: as `holm`'s, the planned family of tests not all run yet."""
  p_values = [d.p_value for d in differences]
  m = (sum(not math.isnan(p) for p in p_values) if family_size is None
       else family_size)
  out = []
  for d, adjusted in zip(differences, holm(p_values, family_size)):
    fields = {'p_holm': adjusted, 'family_size': m}
    if isinstance(d, Difference) and d.test == 't':
      fields['detectable'] = detectable_difference(d.std, d.n,
                                                   ALPHA / max(m, 1))
    out.append(dataclasses.replace(d, **fields))
  return out


def detectable_difference(std: float, n: int, alpha: float = ALPHA,
                          power: float = POWER) -> float:
  """The smallest true mean difference a two-sided paired t-test of `n`
  seeds at level `alpha` detects with probability `power`, given the
  paired differences' standard deviation `std` (noncentral t)."""
  if n < 2 or not np.isfinite(std):
    return math.nan
  if std == 0:
    return 0.0
  df, scale = n - 1, std / math.sqrt(n)
  critical = scipy_stats.t.ppf(1 - alpha / 2, df)

  def shortfall(effect):
    shift = effect / scale
    detected = (scipy_stats.nct.sf(critical, df, shift)
                + scipy_stats.nct.cdf(-critical, df, shift))
    # Far past the critical value scipy's noncentral t can return nan:
    # there the test detects the effect surely.
    return (detected if np.isfinite(detected) else 1.0) - power
  high = scale
  while shortfall(high) < 0:
    high *= 2
  return float(optimize.brentq(shortfall, 0.0, high, xtol=1e-12 * high))


@dataclasses.dataclass(frozen=True)
class Equivalence:
  """Two one-sided tests: is the true difference inside ±margin (or, for
  non-inferiority, above -margin)? p_value is the larger one-sided p."""
  margin: float
  kind: str          # 'equivalence' or 'noninferiority'
  n: int
  p_value: float
  p_holm: float = math.nan
  family_size: int = 1

  def as_dict(self) -> dict:
    return dataclasses.asdict(self)


def equivalence(values, baseline, margin: float,
                kind: str = 'equivalence') -> Equivalence:
  """TOST on the paired differences (scipy's one-sided t-tests): H0 the
  difference is at most -margin (and, for 'equivalence', at least
  +margin)."""
  differences = (np.asarray(values, np.float64)
                 - np.asarray(baseline, np.float64))
  n = len(differences)
  if n < 2:
    return Equivalence(margin, kind, n, math.nan)
  above = _one_sided_p(differences, -margin, 'greater')
  below = (_one_sided_p(differences, margin, 'less')
           if kind == 'equivalence' else 0.0)
  p = max(above, below)
  return Equivalence(margin, kind, n, p, p)


def _one_sided_p(differences, bound, alternative) -> float:
  if np.all(differences == differences[0]):
    holds = (differences[0] > bound if alternative == 'greater'
             else differences[0] < bound)
    return 0.0 if holds else 1.0
  return float(scipy_stats.ttest_1samp(differences, bound,
                                       alternative=alternative).pvalue)


@dataclasses.dataclass(frozen=True)
class Counts:
  """How many of the paired seeds trained on each side, and the exact
  McNemar test (a binomial test on the seeds where only one side
  trained) of whether one side trains more often."""
  n: int
  trained: int
  baseline_trained: int
  p_value: float
  p_holm: float = math.nan
  family_size: int = 1

  @property
  def smallest_p(self) -> float:
    """The smallest two-sided p-value the test can give with n seeds (every
    seed trained on one side only): with 5 seeds 0.0625, so no count of 5
    seeds is detectable at 0.05."""
    return smallest_exact_p(self.n)

  def as_dict(self) -> dict:
    return {**dataclasses.asdict(self), 'smallest_p': self.smallest_p}


def smallest_exact_p(n: int) -> float:
  """The smallest two-sided p-value of an exact binomial test on n paired
  seeds (McNemar's, or the sign test): every seed on one side."""
  return min(1.0, 2 * 0.5 ** n)


def trained_counts(trained, baseline_trained) -> Counts:
  """Paired booleans (the same seeds, in order): did each run train?"""
  trained = [bool(t) for t in trained]
  baseline_trained = [bool(t) for t in baseline_trained]
  if len(trained) != len(baseline_trained):
    raise ValueError('paired values need the same seeds on both sides')
  only_mine = sum(a and not b for a, b in zip(trained, baseline_trained))
  only_theirs = sum(b and not a for a, b in zip(trained, baseline_trained))
  discordant = only_mine + only_theirs
  p = (float(scipy_stats.binomtest(only_mine, discordant, 0.5).pvalue)
       if discordant else 1.0)
  return Counts(len(trained), sum(trained), sum(baseline_trained), p, p)


def verdict(result, higher_is_better=True) -> str:
  """'better', 'worse' or 'no detectable difference': better or worse only
  where the Holm-adjusted p-value is below ALPHA. For Counts, 'better'
  means it trains on more seeds; for a difference, a higher value where
  `higher_is_better` (accuracy), a lower one otherwise (a loss)."""
  p = result.p_holm
  if math.isnan(p) or p >= ALPHA:
    return 'no detectable difference'
  if isinstance(result, Counts):
    return 'better' if result.trained > result.baseline_trained else 'worse'
  return 'better' if (result.mean > 0) == higher_is_better else 'worse'


def shown(result: Equivalence) -> bool:
  """Whether an equivalence (or non-inferiority) test holds after Holm."""
  return not math.isnan(result.p_holm) and result.p_holm < ALPHA


def p_text(p: float) -> str:
  """'p=0.012', 'p<0.001', or 'p n/a'."""
  if math.isnan(p):
    return 'p n/a'
  return 'p<0.001' if p < 0.001 else f'p={p:.3f}'


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
