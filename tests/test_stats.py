"""Means, Student-t intervals and paired differences (machinery/stats.py)."""

import math

import numpy as np
import pytest

from machinery import stats


def test_t_quantiles_known_values():
  assert stats.t975(1) == 12.706
  assert stats.t975(4) == 2.776
  assert stats.t975(30) == 2.042
  assert stats.t975(60) == pytest.approx(2.000, abs=1e-3)
  assert stats.t975(120) == pytest.approx(1.980, abs=1e-3)
  assert stats.t975(10**6) == pytest.approx(1.95996, abs=1e-4)


def test_mean_interval_by_hand():
  values = [0.990, 0.992, 0.991, 0.993, 0.989]
  got = stats.mean_interval(values)
  std = float(np.std(values, ddof=1))
  half = 2.776 * std / math.sqrt(5)
  assert got.n == 5 and got.mean == pytest.approx(0.991)
  assert got.std == pytest.approx(std)
  assert (got.ci95_low, got.ci95_high) == pytest.approx((0.991 - half,
                                                          0.991 + half))


def test_one_value_has_no_interval():
  got = stats.mean_interval([0.99])
  assert got.n == 1 and math.isnan(got.ci95_low)
  assert stats.verdict(got) == 'no detectable difference'


def test_pairing_finds_a_small_consistent_gain_that_means_cannot():
  seeds_noise = np.array([0.000, 0.004, -0.003, 0.002, -0.002])
  baseline = 0.990 + seeds_noise
  better = baseline + 0.001 + np.array([0.0001, -0.0001, 0.0, 0.0002, -0.0002])
  unpaired = (stats.mean_interval(better), stats.mean_interval(baseline))
  assert unpaired[0].ci95_low < unpaired[1].ci95_high  # the intervals overlap
  difference = stats.paired_difference(better, baseline)
  assert difference.mean == pytest.approx(0.001)
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


def test_percent_formats_an_accuracy_interval():
  assert stats.percent(stats.mean_interval([0.99, 0.992])) == (
      '99.10% [97.83, 100.37]')
  assert stats.percent(stats.mean_interval([0.9912])) == '99.12%'
  assert stats.percent(stats.mean_interval([])) == '—'
