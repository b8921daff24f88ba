"""tools/lr_range.py: the learning-rate range test."""

import numpy as np
import pytest

from conftest import small_config
import input_pipeline
from machinery import validation
from machinery.errors import ConfigError
from runs import png_size
from runs import run_tool
from tools import lr_range


def test_range_test_suggests_a_rate_inside_the_ramp(idx_dir, tmp_path):
  config = small_config(idx_dir)
  data = input_pipeline.load_datasets(config)
  result = lr_range.run_range_test(config, data.train, min_lr=1e-4,
                                        max_lr=100.0, steps=120)
  ran = len(result.rates)
  assert result.diverged_at == ran - 1 < 119  # 100 is far too high: stops
  # The rates are the exponential ramp, as the optimizer applied them.
  ramp = 1e-4 * (100.0 / 1e-4) ** (np.arange(ran) / 119)
  np.testing.assert_allclose(result.rates, ramp, rtol=1e-4)
  assert result.rates[0] <= result.suggestion <= result.rates[-1]
  assert result.suggestion == result.suggestions['valley']  # the default
  best = np.nanargmin(result.smoothed)
  assert result.suggestions['min_loss/10'] == pytest.approx(
      result.rates[best] / 10)
  assert result.smoothed[best] < 0.8 * result.smoothed[0]  # loss did fall

  lr_range.write_outputs(result, tmp_path)
  rows = (tmp_path / lr_range.CSV_NAME).read_text().splitlines()
  assert rows[0] == 'step,learning_rate,loss,smoothed_loss'
  assert len(rows) == ran + 1
  assert png_size(tmp_path / lr_range.PNG_NAME) == (800, 500)


def test_range_test_rejects_an_empty_ramp(idx_dir):
  config = small_config(idx_dir)
  with pytest.raises(validation.ConfigError, match='0 < min_lr < max_lr'):
    lr_range.run_range_test(config, {}, min_lr=1.0, max_lr=0.1, steps=10)


def test_a_loss_that_never_falls_gives_no_suggestion():
  rates = np.geomspace(1e30, 1e31, 5)
  with pytest.raises(ConfigError, match='The loss never fell between '
                     '--min_lr=1e[+]30'):
    lr_range.suggest(rates, np.array([2.3, 2.4, 9.0, np.nan, np.nan]))


@pytest.mark.parametrize('args,message', [
    (['--max_lr=inf'], '--max_lr=inf are invalid: need 0 < min_lr < max_lr '
     '<= 3.4e38 (float32).'),
    (['--divergence_factor=nan'], '--divergence_factor=nan is invalid: need '
     'a finite number >= 1.'),
    (['--min_lr=1e-30', '--max_lr=1e30'], 'float32 cannot hold every rate '
     'of that ramp (the ratio max_lr / min_lr must stay below 3.4e38 and '
     'min_lr above 1.2e-38).'),
    (['--min_lr=1e-45', '--max_lr=1'], 'min_lr above 1.2e-38).'),
])
def test_bad_ramps_stop_before_loading_data(tmp_path, args, message):
  result = run_tool('tools/lr_range.py', f'--workdir={tmp_path}', *args,
                    '--config.data_source=idx', '--config.idx_dir=/nowhere')
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1].endswith(message)


def test_a_workdir_that_is_a_file_stops_before_the_test(tmp_path):
  afile = tmp_path / 'afile'
  afile.write_text('x')
  result = run_tool('tools/lr_range.py', f'--workdir={afile}',
                    '--config.data_source=idx', '--config.idx_dir=/nowhere')
  assert result.stderr.strip().splitlines()[-1] == (
      f'Error: --workdir={afile} is a file, not a folder.')


def synthetic_curve():
  """Flat for 30 steps, falling steadily over 31..70, then rising."""
  rates = np.geomspace(1e-4, 1.0, 100)
  losses = np.array([2.3] * 30 + [2.3 - 0.05 * (i - 29) for i in range(30, 71)]
                    + [0.25 + 0.1 * (i - 70) for i in range(71, 100)])
  return rates, losses


def test_valley_is_part_way_down_the_longest_fall():
  rates, losses = synthetic_curve()
  # The longest decreasing run: one flat point and steps 30..70 (42 long),
  # ending at 70; fastai's index 70 - 42 + int(42/3) + int(42/6) = 49.
  assert lr_range.suggest_valley(rates, losses) == rates[49]
  # min_loss/10: the minimum is at step 70.
  assert lr_range.suggest(rates, losses) == pytest.approx(rates[70] / 10)


def test_valley_needs_a_fall():
  rates = np.geomspace(1e-2, 1.0, 10)
  with pytest.raises(ConfigError, match='never fell'):
    lr_range.suggest_valley(rates, np.linspace(1, 2, 10))


def test_a_ramp_too_short_for_a_valley_is_one_line(idx_dir):
  """The loss still falls at max_lr: no rule may suggest max_lr itself."""
  config = small_config(idx_dir)
  data = input_pipeline.load_datasets(config)
  with pytest.raises(ConfigError, match='The loss was still falling at '
                     '--max_lr=0.01 after the whole ramp'):
    lr_range.run_range_test(config, data.train, min_lr=1e-3, max_lr=1e-2,
                            steps=8)
