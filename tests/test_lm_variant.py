"""configs/lm_variant.py: the LM studies' variants of a method, and the
study members they make (the beta2 trap of a method file included)."""

import pytest

from configs import lm
from configs import lm_variant
from conftest import PROJECT_DIR
from machinery import cli
from machinery import errors
import studies


def member_config(base_spec, spec):
  """The config of a study member `spec` with --config=lm_variant.py:BASE,
  as tools/study.py builds it (the method read against that file)."""
  base = lm_variant.get_config(base_spec)
  [member] = studies.members(base, [{'config': 'configs/lm_variant.py:'
                                                + spec}], 1, '/nowhere',
                             reference=base)
  return member.config


def test_the_default_variant_is_configs_lm():
  assert lm_variant.get_config('lm').to_dict() == lm.get_config().to_dict()
  same = lm_variant.get_config('lm:warmup=0.1:epochs=4:b2=0.95')
  assert same.to_dict() == lm.get_config().to_dict()  # --reuse finds lm.py


def test_peak_is_a_multiple_of_the_reference_not_of_the_default():
  """peak=F is F x 2e-3 (the studies' reference), exactly, whatever
  configs/lm.py's default: x2 is the default 4e-3 itself, and each study's
  peak=F names the runs it named when it trained."""
  assert lm.REFERENCE_PEAK == 2e-3 and lm.get_config().learning_rate == 4e-3
  assert (lm_variant.get_config('lm:peak=2').to_dict()
          == lm.get_config().to_dict())
  for factor in (0.5, 1, 4, 8):
    for method in ('lm', 'lm_cosine_10', 'lm_onecycle'):
      config = lm_variant.get_config(f'{method}:peak={factor}')
      assert config.learning_rate == factor * 2e-3, (method, factor)
  floor = lm_variant.get_config('lm_cosine_10:peak=1').min_learning_rate
  assert floor == 0.1 * 2e-3  # the float methods_lm recorded


def test_peak_scales_the_floor_with_it():
  config = lm_variant.get_config('lm_cosine_10:peak=2')
  assert config.learning_rate == pytest.approx(4e-3)
  assert config.min_learning_rate == pytest.approx(4e-4)  # still 10%


def test_warmup_is_a_share_of_the_new_length_in_any_order():
  a = lm_variant.get_config('lm:warmup=0.025:epochs=2')
  b = lm_variant.get_config('lm:epochs=2:warmup=0.025')
  assert a.warmup_epochs == b.warmup_epochs == 0.05  # 25 of 500 steps
  assert a.num_epochs == 2


@pytest.mark.parametrize('b2', [0.95, 0.999])
def test_a_beta2_study_trains_its_beta2(b2):
  """With the study's --config of the same beta2 (run_lm.sh's), every
  member trains with it, 0.999 (the defaults' value) included."""
  config = member_config(f'lm:b2={b2}', f'lm:warmup=0.01:epochs=2:b2={b2}')
  assert (config.b2, config.num_epochs, config.warmup_epochs) == (b2, 2,
                                                                  0.02)


def test_a_method_may_set_a_field_back_to_the_defaults_value():
  """beta2 0.999 and a 1.0-epoch warmup are configs/default.py's values:
  over a --config of 0.95 and configs/lm.py's 0.4 epochs they are still
  the member's (they were dropped when a method was read against
  configs/default.py: warmup_lm_b2_0.95_4ep's 25% trained 10%)."""
  config = member_config('lm:b2=0.95:peak=2',
                         'lm:warmup=0.25:epochs=4:b2=0.999:peak=2')
  assert (config.b2, config.warmup_epochs) == (0.999, 1.0)


@pytest.mark.parametrize('b2', ['0.95', '0.999'])
@pytest.mark.parametrize('epochs', [2, 4])
def test_every_warmup_of_the_grid_trains_its_share(b2, epochs):
  """run_lm.sh's warmup x length x beta2 grid: each member warms up for
  its share of its own run, exactly."""
  for share in (0, 0.01, 0.025, 0.05, 0.1, 0.25):
    config = member_config(f'lm:b2={b2}:peak=2',
                           f'lm:warmup={share}:epochs={epochs}:b2={b2}:peak=2')
    assert config.warmup_epochs == round(share * epochs, 6), share
    assert (config.num_epochs, config.b2) == (epochs, float(b2))


def test_bad_variants_are_one_line():
  for spec, message in (('lm:speed=2', "'speed=2': write KEY=VALUE"),
                        ('wsd:peak=2', 'name a language-model config')):
    with pytest.raises(errors.ConfigError, match=message):
      cli.load_config_file(f'{PROJECT_DIR}/configs/lm_variant.py:{spec}')
