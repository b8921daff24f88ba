"""Intervals, paired tests, Holm's correction, equivalence, exact tests for
counts and the smallest detectable difference (machinery/stats.py)."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from machinery import stats


def test_t_quantiles_are_scipys():
  assert stats.t975(4) == pytest.approx(2.7764451, abs=1e-6)
  assert stats.t975(1) == pytest.approx(12.7062047, abs=1e-6)
  assert stats.t975(10**6) == pytest.approx(1.959966, abs=1e-5)
  with pytest.raises(ValueError, match='at least 2 values'):
    stats.t975(0)


def test_mean_interval_by_hand():
  values = [0.990, 0.992, 0.991, 0.993, 0.989]
  got = stats.mean_interval(values)
  std = float(np.std(values, ddof=1))
  half = scipy_stats.t.ppf(0.975, 4) * std / math.sqrt(5)
  assert got.n == 5 and got.mean == pytest.approx(0.991)
  assert got.std == pytest.approx(std)
  assert (got.ci95_low, got.ci95_high) == pytest.approx((0.991 - half,
                                                          0.991 + half))


def test_an_interval_never_leaves_what_is_possible():
  """Two accuracies near 100%: the t interval would pass 100%."""
  assert stats.percent(stats.mean_interval([0.99, 0.992])) == (
      '99.10% [97.83, 100.37]')  # unbounded, as a plain t interval
  assert stats.percent(stats.mean_interval([0.99, 0.992], (0.0, 1.0))) == (
      '99.10% [97.83, 100.00]')
  assert stats.percent(stats.mean_interval([0.9912])) == '99.12%'
  assert stats.percent(stats.mean_interval([])) == '—'


def test_one_value_has_no_interval_and_no_verdict():
  got = stats.paired_difference([0.99], [0.98])
  assert got.n == 1 and math.isnan(got.ci95_low) and math.isnan(got.p_value)
  assert stats.verdict(got) == 'no detectable difference'


def test_pairing_finds_a_small_consistent_gain_that_means_cannot():
  seeds_noise = np.array([0.000, 0.004, -0.003, 0.002, -0.002])
  baseline = 0.990 + seeds_noise
  better = baseline + 0.001 + np.array([0.0001, -0.0001, 0.0, 0.0002, -0.0002])
  unpaired = (stats.mean_interval(better), stats.mean_interval(baseline))
  assert unpaired[0].ci95_low < unpaired[1].ci95_high  # the intervals overlap
  difference = stats.paired_difference(better, baseline)
  assert difference.mean == pytest.approx(0.001)
  assert difference.p_value == pytest.approx(
      scipy_stats.ttest_rel(better, baseline).pvalue)
  assert stats.verdict(difference) == 'better'
  assert stats.verdict(stats.paired_difference(baseline, better)) == 'worse'


def test_noise_alone_is_no_detectable_difference():
  rng = np.random.default_rng(0)
  a, b = rng.normal(0.99, 0.001, 5), rng.normal(0.99, 0.001, 5)
  assert stats.verdict(stats.paired_difference(a, b)) == (
      'no detectable difference')


def test_pairs_must_match():
  with pytest.raises(ValueError, match='same seeds'):
    stats.paired_difference([1, 2, 3], [1, 2])


def test_holm_by_hand():
  """Sorted 0.01, 0.03, 0.04 times 3, 2, 1, kept non-decreasing."""
  assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
  assert stats.holm([0.5, math.nan, 0.01]) == pytest.approx(
      [0.5, math.nan, 0.02], nan_ok=True)
  assert stats.holm([0.9, 0.8]) == [1.0, 1.0]  # 1.6 capped at 1
  assert stats.holm([0.04, 0.2]) == pytest.approx([0.08, 0.2])


def test_holm_of_a_planned_family_counts_the_tests_not_run_yet():
  """Two of a family of four: adjusted as the two smallest of four, 0.01
  and 0.02 times 4 and 3; the same as if the missing two had p = 1."""
  assert stats.holm([0.02, 0.01], family_size=4) == pytest.approx(
      [0.06, 0.04])
  assert stats.holm([0.02, 0.01], family_size=4) == pytest.approx(
      stats.holm([0.02, 0.01, 1.0, 1.0])[:2])
  with pytest.raises(ValueError, match='family_size=1 is smaller'):
    stats.holm([0.02, 0.01], family_size=1)


def test_a_comparison_that_passes_alone_fails_in_its_family():
  """p = 0.03 alone is 'better'; beside two null comparisons it is not."""
  rng = np.random.default_rng(1)
  base = rng.normal(0.99, 0.002, 5)
  shifted = base + np.array([0.001, 0.003, 0.0005, 0.002, 0.0015])
  alone = stats.paired_difference(shifted, base)
  assert 0.01 < alone.p_value < 0.05 and stats.verdict(alone) == 'better'
  nulls = [stats.paired_difference(base + rng.normal(0, 0.001, 5), base)
           for _ in range(2)]
  family = stats.in_family([alone, *nulls])
  assert family[0].family_size == 3 and family[0].p_holm >= 0.05
  assert stats.verdict(family[0]) == 'no detectable difference'
  assert family[0].ci95_low == alone.ci95_low  # the raw interval is kept


def test_the_detectable_difference_is_found_80_percent_of_the_time():
  """Simulated paired studies of 5 seeds with the true difference set to
  the one returned: the t-test at that level rejects in about 80%."""
  std, n, alpha = 0.001, 5, 0.05 / 7
  effect = stats.detectable_difference(std, n, alpha)
  rng = np.random.default_rng(0)
  samples = rng.normal(effect, std, size=(40_000, n))
  p = scipy_stats.ttest_1samp(samples, 0.0, axis=1).pvalue
  assert np.mean(p < alpha) == pytest.approx(0.8, abs=0.01)
  assert stats.detectable_difference(std, n, 0.05) < effect  # less strict
  assert math.isnan(stats.detectable_difference(std, 1))


def test_equivalence_needs_the_margin_stated_and_met():
  base = np.array([0.990, 0.992, 0.991, 0.993, 0.989])
  close = base + np.array([0.0002, -0.0001, 0.0003, 0.0, 0.0001])
  tost = stats.equivalence(close, base, 0.002)
  differences = close - base
  want = max(scipy_stats.ttest_1samp(differences, -0.002,
                                     alternative='greater').pvalue,
             scipy_stats.ttest_1samp(differences, 0.002,
                                     alternative='less').pvalue)
  assert tost.p_value == pytest.approx(want) and stats.shown(tost)
  far = base + np.array([0.002, 0.004, 0.001, 0.003, 0.0025])
  assert not stats.shown(stats.equivalence(far, base, 0.002))
  # Better by more than the margin: not equivalent, yet non-inferior.
  assert stats.shown(stats.equivalence(far, base, 0.002, 'noninferiority'))


def test_runs_that_train_or_not_are_counted_by_an_exact_test():
  """Warmup trains all 5 seeds, none trains 1 (seed 2): 4 discordant pairs
  all one way, exact McNemar p = 2 / 2^4 = 0.125: not detectable with 5."""
  counts = stats.trained_counts([True] * 5, [False, False, True, False,
                                             False])
  assert (counts.n, counts.trained, counts.baseline_trained) == (5, 5, 1)
  assert counts.p_value == pytest.approx(0.125)
  assert counts.smallest_p == pytest.approx(0.0625)
  assert stats.verdict(counts) == 'no detectable difference'
  many = stats.trained_counts([True] * 8, [False] * 8)
  assert many.p_value == pytest.approx(2 / 2**8)
  assert stats.verdict(many) == 'better'


def test_whole_numbers_get_the_exact_sign_test():
  """SGDR's epochs to 99% against cosine's: -2, -1, 0, -1, -1. A t
  interval excludes 0; the sign test on the 4 seeds that differ gives
  p = 0.125."""
  difference = stats.paired_difference([2, 3, 4, 3, 2], [4, 4, 4, 4, 3],
                                       test='sign')
  assert difference.ci95_high < 0
  assert difference.p_value == pytest.approx(0.125)
  assert stats.verdict(difference) == 'no detectable difference'
  assert math.isnan(stats.in_family([difference])[0].detectable)
