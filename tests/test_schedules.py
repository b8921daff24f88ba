"""The seed schedule, checked value by value against its closed form."""

import math

import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from configs import default
from machinery import validation
import schedules
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


def schedule_config(**fields):
  config = default.get_config()
  config.update(fields)
  validation.validate_config(config)
  return config


def sgdr_closed_form(step, starts, lengths, peaks, floor):
  """Loshchilov & Hutter (2017), eq. (5), with the cycles written out."""
  i = max(k for k, start in enumerate(starts) if start <= step)
  t_cur, t_i = step - starts[i], lengths[i]
  return floor + 0.5 * (peaks[i] - floor) * (1 + math.cos(math.pi * t_cur / t_i))


# 15 epochs of 10 steps, no warmup: cycles of 1, 2, 4 and 8 epochs fill the
# run exactly; each peak is half the previous one; the floor is 0.001.
SGDR_STARTS = [0, 10, 30, 70]
SGDR_LENGTHS = [10, 20, 40, 80]
SGDR_PEAKS = [0.1, 0.05, 0.025, 0.0125]


def sgdr_named_steps():
  steps = {}
  for i, (start, length) in enumerate(zip(SGDR_STARTS, SGDR_LENGTHS)):
    steps[f'cycle {i + 1} first step'] = start
    steps[f'cycle {i + 1} middle'] = start + length // 2
    steps[f'cycle {i + 1} last step'] = start + length - 1
  return steps


def test_sgdr_matches_the_paper_at_named_steps():
  config = schedule_config(
      schedule='sgdr', num_epochs=15, warmup_epochs=0.0, cycle_epochs=1.0,
      cycle_mult=2.0, restart_decay=0.5, min_learning_rate=0.001)
  fn = train.create_learning_rate_fn(config, 0.1, 10)
  for name, step in sgdr_named_steps().items():
    expected = sgdr_closed_form(step, SGDR_STARTS, SGDR_LENGTHS, SGDR_PEAKS,
                                0.001)
    np.testing.assert_allclose(float(fn(step)), expected, rtol=1e-5,
                               err_msg=name)
  # Spelled out: a restart jumps from near the floor back to the new peak.
  assert float(fn(9)) == pytest.approx(
      0.001 + 0.0495 * (1 + math.cos(0.9 * math.pi)), rel=1e-5)
  assert float(fn(10)) == pytest.approx(0.05, rel=1e-6)
  assert float(fn(30)) == pytest.approx(0.025, rel=1e-6)
  assert float(fn(70)) == pytest.approx(0.0125, rel=1e-6)
  assert float(fn(149)) == pytest.approx(sgdr_closed_form(
      149, SGDR_STARTS, SGDR_LENGTHS, SGDR_PEAKS, 0.001), rel=1e-5)


def test_sgdr_cycle_layout_after_warmup_stretches_the_last_cycle():
  # 1 warmup epoch, then cycles of 2 epochs (mult 1) in the 7 epochs left:
  # three whole cycles fit, the third takes the leftover epoch (3 epochs).
  config = schedule_config(schedule='sgdr', num_epochs=8, warmup_epochs=1.0,
                           cycle_epochs=2.0, cycle_mult=1.0)
  cycles = schedules.sgdr_cycles(config, 0.1, 10)
  assert [(c.start, c.length) for c in cycles] == [(10, 20), (30, 20),
                                                   (50, 30)]
  fn = train.create_learning_rate_fn(config, 0.1, 10)
  assert float(fn(5)) == pytest.approx(0.05)              # warmup
  assert float(fn(10)) == pytest.approx(0.1)              # first peak
  assert float(fn(20)) == pytest.approx(0.05, rel=1e-5)   # mid cycle 1
  assert float(fn(30)) == pytest.approx(0.1)              # restart
  assert float(fn(65)) == pytest.approx(0.05, rel=1e-5)   # mid stretched cycle
  assert float(fn(79)) < 0.001                            # ends near 0


def test_default_sgdr_config_has_cycles_of_3_and_6_epochs():
  config = schedule_config(schedule='sgdr')
  cycles = schedules.sgdr_cycles(config, 0.1, 468)
  assert [(c.start, c.length) for c in cycles] == [(468, 3 * 468),
                                                   (4 * 468, 6 * 468)]


# The kinds of the cosine era; the newer ones end linearly or take their start
# from div_factor, so test_new_kinds_hold_the_floor checks their floors.
COSINE_ERA_KINDS = ('warmup_cosine', 'sgdr', 'constant', 'step')


@pytest.mark.parametrize('kind', COSINE_ERA_KINDS)
def test_floor_holds_over_the_whole_run(kind):
  config = schedule_config(schedule=kind, min_learning_rate=0.004,
                           warmup_init_lr=0.004, restart_decay=0.1,
                           step_epochs=(3, 5, 7), step_decay=0.1)
  fn = train.create_learning_rate_fn(config, 0.1, 20)
  rates = np.asarray(fn(np.arange(10 * 20)))
  assert rates.min() >= 0.004 * (1 - 1e-6)
  assert rates.max() == pytest.approx(0.1, rel=1e-6)
  if kind != 'constant':
    assert rates[-1] == pytest.approx(0.004, abs=1e-5)  # one step short


def test_warmup_starts_at_warmup_init_lr():
  config = schedule_config(warmup_init_lr=0.01)
  fn = train.create_learning_rate_fn(config, 0.1, 100)
  assert float(fn(0)) == pytest.approx(0.01)
  assert float(fn(50)) == pytest.approx(0.055)
  assert float(fn(100)) == pytest.approx(0.1)


def test_constant_schedule_is_the_peak_at_every_step():
  config = schedule_config(schedule='constant', warmup_epochs=0.0)
  fn = train.create_learning_rate_fn(config, 0.1, 50)
  np.testing.assert_array_equal(np.asarray(fn(np.arange(500))),
                                np.float32(0.1))


def test_step_schedule_drops_at_the_given_epochs():
  config = schedule_config(schedule='step', step_epochs=(5, 8),
                           step_decay=0.1)
  fn = train.create_learning_rate_fn(config, 0.1, 10)
  expected = {0: 0.0, 10: 0.1, 49: 0.1, 50: 0.01, 79: 0.01, 80: 0.001,
              99: 0.001}
  for step, value in expected.items():
    assert float(fn(step)) == pytest.approx(value, rel=1e-6, abs=1e-12), step


def flax_guide_learning_rate_fn(config, base_learning_rate, steps_per_epoch):
  """The Flax ImageNet example's create_learning_rate_fn, as it is written
  there (independent of this project's schedules.py)."""
  warmup_fn = optax.linear_schedule(
      init_value=0., end_value=base_learning_rate,
      transition_steps=config.warmup_epochs * steps_per_epoch)
  cosine_epochs = max(config.num_epochs - config.warmup_epochs, 1)
  cosine_fn = optax.cosine_decay_schedule(
      init_value=base_learning_rate,
      decay_steps=cosine_epochs * steps_per_epoch)
  return optax.join_schedules(
      schedules=[warmup_fn, cosine_fn],
      boundaries=[config.warmup_epochs * steps_per_epoch])


def test_default_warmup_cosine_is_the_seed_schedule_unchanged():
  full = train.create_learning_rate_fn(default.get_config(), 0.1, 468)
  seed = flax_guide_learning_rate_fn(make_config(10, 1.0), 0.1, 468)
  steps = np.arange(4680)
  np.testing.assert_array_equal(np.asarray(full(steps)),
                                np.asarray(seed(steps)))
  assert float(seed(468 + 2106)) == pytest.approx(0.05, rel=1e-6)


def test_key_steps_name_restarts_and_the_last_step():
  config = schedule_config(schedule='sgdr')
  named = schedules.key_steps(config, 468)
  assert named['restart 1 (cycle 2 begins)'] == 4 * 468
  assert named['last step of cycle 1'] == 4 * 468 - 1
  assert named['last step'] == 4679
  assert list(named.values()) == sorted(named.values())


# ------------------------------------------------ wsd, linear, onecycle


def wsd_closed_form(step, peak, floor, warmup, total, decay, shape, init=0.0):
  """The issue's formula for wsd, written out by hand."""
  if step < warmup:
    return init + (peak - init) * step / warmup
  start = total - decay
  p = min(max((step - start) / decay, 0.0), 1.0)
  f = {'linear': 1 - p, 'cosine': 0.5 * (1 + math.cos(math.pi * p)),
       '1-sqrt': 1 - math.sqrt(p)}[shape]
  return floor + (peak - floor) * f


# (num_epochs, warmup_epochs, decay_epochs, steps_per_epoch, floor)
WSD_CASES = [
    (10, 1.0, 2.0, 468, 0.0),     # configs/wsd.py's layout on MNIST
    (5, 0.0, 1.5, 20, 0.001),     # no warmup, fractional decay
    (4, 0.5, 3.5, 10, 0.0),       # the decay starts right after the warmup
    (3, 0.25, 0.3, 16, 0.002),    # fractional everything: D = round(4.8) = 5
]


@pytest.mark.parametrize('shape', ['linear', 'cosine', '1-sqrt'])
@pytest.mark.parametrize('epochs,warmup,decay,spe,floor', WSD_CASES)
def test_wsd_matches_its_closed_form_at_the_boundaries(epochs, warmup, decay,
                                                       spe, floor, shape):
  config = schedule_config(schedule='wsd', num_epochs=epochs,
                           warmup_epochs=warmup, decay_epochs=decay,
                           decay_shape=shape, min_learning_rate=floor)
  fn = train.create_learning_rate_fn(config, 0.1, spe)
  total, num_warmup = epochs * spe, round(warmup * spe)
  length = round(decay * spe)
  start = total - length
  named = {'first step': 0, 'end of warmup': num_warmup,
           'last stable step': start - 1, 'decay start': start,
           'first decay step': start + 1,
           'midpoint of the decay': start + length // 2,
           'last step': total - 1, 'end (step T)': total}
  if num_warmup:
    named['last warmup step'] = num_warmup - 1
  for name, step in named.items():
    want = wsd_closed_form(step, 0.1, floor, num_warmup, total, length, shape)
    np.testing.assert_allclose(float(fn(step)), want, rtol=1e-5, atol=1e-7,
                               err_msg=name)
  assert float(fn(start)) == pytest.approx(0.1, rel=1e-6)  # still the peak
  assert float(fn(total)) == pytest.approx(floor, abs=1e-8)


def test_wsd_one_minus_sqrt_shape_at_every_decay_step():
  config = schedule_config(schedule='wsd', num_epochs=6, warmup_epochs=1.0,
                           decay_epochs=2.0, decay_shape='1-sqrt',
                           min_learning_rate=0.001)
  fn = train.create_learning_rate_fn(config, 0.2, 50)
  steps = np.arange(200, 301)  # the decay: S = 200 to T = 300
  want = [0.001 + 0.199 * (1 - math.sqrt((s - 200) / 100)) for s in steps]
  np.testing.assert_allclose(np.asarray(fn(steps)), want, rtol=1e-5,
                             atol=1e-7)


def test_wsd_before_the_decay_is_the_peak_after_the_warmup():
  config = schedule_config(schedule='wsd', decay_epochs=2.0)
  fn = train.create_learning_rate_fn(config, 0.1, 468)
  np.testing.assert_array_equal(np.asarray(fn(np.arange(468, 3745))),
                                np.float32(0.1))


def test_wsd_decay_fraction_is_that_share_of_the_run():
  # 10 epochs x 50 steps, 20%: the decay takes the last 100 steps, whatever
  # decay_epochs says (9.5 would be refused on its own).
  config = schedule_config(schedule='wsd', decay_fraction=0.2,
                           decay_epochs=9.5, decay_shape='linear')
  fn = train.create_learning_rate_fn(config, 0.1, 50)
  assert float(fn(400)) == np.float32(0.1)     # S = 500 - 100: still the peak
  assert float(fn(450)) == pytest.approx(0.05, rel=1e-6)   # half-way down
  assert float(fn(499)) == pytest.approx(0.001, rel=1e-4)  # last step
  assert schedules.key_steps(config, 50)['start of decay (last step at the '
                                         'peak)'] == 400


def test_wsd_runs_of_every_length_agree_before_their_own_decay():
  # What tools/budgets.py's branches rest on: up to S_B the rate of a B-epoch
  # run is bitwise the rate of the longest run (warmup, then the peak).
  longest = train.create_learning_rate_fn(
      schedule_config(schedule='wsd', num_epochs=10, decay_fraction=0.2,
                      warmup_init_lr=0.01), 0.1, 7)
  for budget in (2, 3, 5):
    config = schedule_config(schedule='wsd', num_epochs=budget,
                             decay_fraction=0.2, warmup_init_lr=0.01)
    fn = train.create_learning_rate_fn(config, 0.1, 7)
    start, _ = schedules.wsd_decay_start(budget * 7, 0, 0.2)
    steps = np.arange(start + 1)
    np.testing.assert_array_equal(np.asarray(fn(steps)),
                                  np.asarray(longest(steps)))
    assert float(fn(budget * 7 - 1)) < 0.1 * 0.5


@pytest.mark.parametrize('epochs,warmup,spe,floor', [
    (10, 1.0, 468, 0.0), (3, 0.0, 10, 0.01), (5, 0.5, 7, 0.0)])
def test_linear_goes_straight_to_the_floor(epochs, warmup, spe, floor):
  config = schedule_config(schedule='linear', num_epochs=epochs,
                           warmup_epochs=warmup, min_learning_rate=floor)
  fn = train.create_learning_rate_fn(config, 0.1, spe)
  total, num_warmup = epochs * spe, round(warmup * spe)
  for step in (0, num_warmup, (num_warmup + total) // 2, total - 1, total):
    if step < num_warmup:
      want = 0.1 * step / num_warmup
    else:
      want = 0.1 + (floor - 0.1) * (step - num_warmup) / (total - num_warmup)
    np.testing.assert_allclose(float(fn(step)), want, rtol=1e-5, atol=1e-8,
                               err_msg=f'step {step}')


def onecycle_closed_form(step, peak, warmup, total, div, final_div):
  """Two half cosines: up from peak/div over W steps, down to the end."""
  start, end = peak / div, peak / (div * final_div)
  if step < warmup:
    return start + (peak - start) * 0.5 * (1 - math.cos(math.pi * step /
                                                        warmup))
  t = min((step - warmup) / (total - warmup), 1.0)
  return end + (peak - end) * 0.5 * (1 + math.cos(math.pi * t))


@pytest.mark.parametrize('epochs,warmup,spe', [(10, 3.0, 468), (4, 1.0, 10),
                                               (5, 0.25, 8)])
def test_onecycle_is_optax_onecycle_with_the_warmup_as_pct_start(epochs,
                                                                 warmup, spe):
  config = schedule_config(schedule='onecycle', num_epochs=epochs,
                           warmup_epochs=warmup, div_factor=25.0,
                           final_div_factor=1e4)
  fn = train.create_learning_rate_fn(config, 0.1, spe)
  total, num_warmup = epochs * spe, round(warmup * spe)
  for step in (0, num_warmup // 2, num_warmup, (num_warmup + total) // 2,
               total - 1, total):
    np.testing.assert_allclose(
        float(fn(step)),
        onecycle_closed_form(step, 0.1, num_warmup, total, 25.0, 1e4),
        rtol=1e-5, atol=1e-9, err_msg=f'step {step}')
  reference = jnp.vectorize(optax.cosine_onecycle_schedule(
      total, 0.1, warmup / epochs, 25.0, 1e4))
  steps = np.arange(total + 1)
  np.testing.assert_allclose(np.asarray(fn(steps)),
                             np.asarray(reference(steps)), rtol=1e-6)


@pytest.mark.parametrize('kind', ['wsd', 'linear', 'onecycle'])
def test_new_kinds_hold_the_floor(kind):
  config = schedule_config(schedule=kind, min_learning_rate=0.004,
                           decay_epochs=3.0)
  fn = train.create_learning_rate_fn(config, 0.1, 20)
  rates = np.asarray(fn(np.arange(10 * 20 + 1)))
  assert rates[20:].min() >= 0.004 * (1 - 1e-6)  # after the warmup
  assert rates.max() == pytest.approx(0.1, rel=1e-6)
  assert rates[-1] == pytest.approx(0.004, rel=1e-5)  # step T: the floor


def test_key_steps_of_wsd_name_the_decay():
  config = schedule_config(schedule='wsd', decay_epochs=2.0)
  named = schedules.key_steps(config, 468)
  assert named['start of decay (last step at the peak)'] == 8 * 468
  assert named['first decay step'] == 8 * 468 + 1
  assert named['middle of the decay'] == 9 * 468
  assert named['last step'] == 4679


def test_piecewise_linear_passes_through_its_knots():
  """Warmup 468 steps, then knots 1, 1, 0.5, 0 at W + i * 1404: the rate
  holds the peak to step 1872, halves at 3276 and reaches 0 at T."""
  config = schedule_config(schedule='piecewise_linear',
                           knots=(1.0, 1.0, 0.5, 0.0))
  fn = schedules.create_learning_rate_fn(config, 0.1, 468)
  rates = np.asarray(fn(np.arange(4681)))
  assert rates[468] == pytest.approx(0.1, rel=1e-6)
  assert rates[1872] == pytest.approx(0.1, rel=1e-6)
  assert rates[1872 + 702] == pytest.approx(0.075, rel=1e-5)
  assert rates[3276] == pytest.approx(0.05, rel=1e-5)
  assert rates[4680] == pytest.approx(0.0, abs=1e-9)
  assert np.all(np.diff(rates[468:]) <= 1e-9)  # never rises after W


def test_piecewise_linear_stays_above_its_floor():
  config = schedule_config(schedule='piecewise_linear', knots=(1.0, 0.0),
                           min_learning_rate=0.01)
  rates = np.asarray(schedules.create_learning_rate_fn(config, 0.1, 468)(
      np.arange(4680)))
  assert rates[468:].min() == pytest.approx(0.01, rel=1e-6)


@pytest.mark.parametrize('kind', schedules.SCHEDULES)
def test_every_kind_describes_itself_and_names_its_last_step(kind):
  config = schedule_config(schedule=kind)
  text = schedules.describe(config, 468)
  assert text.startswith(f'10 epochs x 468 steps = 4680 steps; {kind}: ')
  assert schedules.key_steps(config, 468)['last step'] == 4679


PREFIX = '10 epochs x 468 steps = 4680 steps; '
WARMUP = 'linear warmup from 0 to 0.1 over 468 steps, then '


@pytest.mark.parametrize('kind,rest', [
    ('warmup_cosine', WARMUP + 'cosine decay from 0.1 to 0'),
    ('sgdr', WARMUP + 'SGDR: 2 cosine cycles of 1404, 2808 steps from peaks '
     '0.1, 0.1 down to 0'),
    ('constant', WARMUP + 'constant 0.1'),
    ('step', WARMUP + '0.1 multiplied by 0.1 at epochs [5, 8]'),
    ('wsd', WARMUP + 'hold 0.1 until step 3744, then linear decay to 0 over '
     'the last 936 steps'),
    ('linear', WARMUP + 'linear decay from 0.1 to 0'),
    ('onecycle', 'one-cycle: cosine rise from 0.004 to 0.1 over 468 steps, '
     'then cosine fall to 4e-07'),
    ('piecewise_linear', WARMUP + 'straight lines through 2 knots from 0.1 '
     'to 0'),
])
def test_every_description_says_what_the_schedule_does(kind, rest):
  """Whole lines: 3 + 1404 + 2808 / 468 = the run; 0.1 / 25 = 0.004; ..."""
  assert schedules.describe(schedule_config(schedule=kind), 468) == (
      f'{PREFIX}{kind}: {rest}')


def test_onecycle_that_rises_over_the_whole_run_reaches_toward_the_peak():
  """W = T after rounding: one rising half-cosine, never a fall."""
  config = schedule_config(schedule='onecycle', num_epochs=2,
                           warmup_epochs=1.999)
  fn = train.create_learning_rate_fn(config, 0.1, 100)
  rates = np.asarray(fn(np.arange(200)))
  assert np.all(np.diff(rates) > 0)
  assert rates[0] == pytest.approx(0.004, rel=1e-6)
  assert rates[-1] == pytest.approx(
      0.004 + 0.096 * 0.5 * (1 - math.cos(math.pi * 199 / 200)), rel=1e-5)
  with pytest.raises(Exception, match='must be < num_epochs=2 for '
                     "schedule='onecycle'"):
    validation.validate_config(schedule_config(
        schedule='onecycle', num_epochs=2, warmup_epochs=2.0))


def test_step_drops_that_round_to_one_step_all_apply():
  config = schedule_config(schedule='step', step_epochs=(5, 5.001),
                           step_decay=0.1)
  fn = train.create_learning_rate_fn(config, 0.1, 10)
  assert float(fn(49)) == pytest.approx(0.1, rel=1e-6)
  assert float(fn(50)) == pytest.approx(0.001, rel=1e-5)  # two drops


@pytest.mark.parametrize('fields', [
    {'schedule': 'wsd', 'decay_epochs': 0.001},        # a one-step decay
    {'schedule': 'step', 'step_epochs': (5, 9.999)},   # a drop rounded to T
])
def test_key_steps_lie_inside_the_run(fields):
  named = schedules.key_steps(schedule_config(**fields), 100)
  assert max(named.values()) == 999 and min(named.values()) == 0
