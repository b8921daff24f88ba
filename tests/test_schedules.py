"""The seed schedule, checked value by value against its closed form."""

import math

import ml_collections
import numpy as np
import pytest

import train


def seed_schedule_closed_form(step, base, num_epochs, warmup_epochs, spe):
  """lr(step) as the Flax guide defines it, written out by hand."""
  warmup = round(warmup_epochs * spe)
  decay = round(max(num_epochs - warmup_epochs, 1) * spe)
  if step < warmup:
    return base * step / warmup
  t = min(step - warmup, decay)
  return base * 0.5 * (1 + math.cos(math.pi * t / decay))


def make_config(num_epochs, warmup_epochs):
  return ml_collections.ConfigDict(
      {'num_epochs': num_epochs, 'warmup_epochs': warmup_epochs})


# (num_epochs, warmup_epochs, steps_per_epoch, base learning rate)
CASES = [
    (10, 1.0, 468, 0.1),   # the default config on MNIST, batch 128
    (5, 2.0, 8, 0.05),
    (3, 0.0, 10, 0.2),     # no warmup: cosine from the first step
    (4, 4.0, 6, 0.1),      # warmup over the whole run: no decay reached
    (10, 0.5, 100, 0.1),   # fractional warmup
]


def named_steps(num_epochs, warmup_epochs, spe):
  warmup = round(warmup_epochs * spe)
  decay = round(max(num_epochs - warmup_epochs, 1) * spe)
  return {
      'first': 0,
      'mid_warmup': warmup // 2,
      'boundary': warmup,
      'cosine_midpoint': warmup + decay // 2,
      'end_of_decay': warmup + decay,
      'last_training_step': num_epochs * spe - 1,
  }


@pytest.mark.parametrize('num_epochs,warmup_epochs,spe,base', CASES)
def test_schedule_matches_closed_form_at_named_steps(num_epochs, warmup_epochs,
                                                     spe, base):
  fn = train.create_learning_rate_fn(
      make_config(num_epochs, warmup_epochs), base, spe)
  for name, step in named_steps(num_epochs, warmup_epochs, spe).items():
    expected = seed_schedule_closed_form(step, base, num_epochs,
                                         warmup_epochs, spe)
    np.testing.assert_allclose(float(fn(step)), expected, rtol=1e-5,
                               atol=1e-8, err_msg=name)


def test_default_schedule_exact_values():
  fn = train.create_learning_rate_fn(make_config(10, 1.0), 0.1, 468)
  expected = {0: 0.0, 234: 0.05, 467: 0.1 * 467 / 468, 468: 0.1,
              468 + 2106: 0.05, 4680: 0.0}
  for step, value in expected.items():
    np.testing.assert_allclose(float(fn(step)), value, rtol=1e-6, atol=1e-9,
                               err_msg=f'step {step}')


def test_no_warmup_starts_at_peak_and_ends_at_zero():
  fn = train.create_learning_rate_fn(make_config(3, 0.0), 0.2, 10)
  assert float(fn(0)) == pytest.approx(0.2)
  assert float(fn(15)) == pytest.approx(0.1, rel=1e-6)
  assert float(fn(30)) == pytest.approx(0.0, abs=1e-9)


def test_warmup_over_whole_run_rises_monotonically_to_peak():
  fn = train.create_learning_rate_fn(make_config(4, 4.0), 0.1, 6)
  rates = np.array([float(fn(s)) for s in range(24)])
  assert rates[0] == 0.0
  assert np.all(np.diff(rates) > 0)
  assert rates[-1] == pytest.approx(0.1 * 23 / 24, rel=1e-6)
  assert float(fn(24)) == pytest.approx(0.1)  # boundary: peak, first cosine


def test_schedule_is_continuous_at_the_warmup_boundary():
  fn = train.create_learning_rate_fn(make_config(5, 2.0), 0.05, 8)
  before, at, after = (float(fn(s)) for s in (15, 16, 17))
  assert before < at and after < at
  assert at - before == pytest.approx(0.05 / 16, rel=1e-5)
