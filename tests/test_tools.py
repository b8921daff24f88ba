"""The schedule plot, the LR range test and the schedule comparison."""

import subprocess
import sys

import numpy as np
import pytest

from conftest import PROJECT_DIR, small_config
from machinery import run_logs
import input_pipeline
from tools import lr_range as lr_range_test
import train
from machinery import validation

PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


def png_size(path):
  """(width, height) from a PNG's IHDR chunk; fails if it is not a PNG."""
  header = path.read_bytes()[:24]
  assert header[:8] == PNG_MAGIC, f'{path} is not a PNG'
  return int.from_bytes(header[16:20]), int.from_bytes(header[20:24])


def run_tool(script, *args):
  return subprocess.run(
      [sys.executable, str(PROJECT_DIR / script),
       f'--config={PROJECT_DIR / "configs" / "default.py"}', *args],
      capture_output=True, text=True, timeout=300, cwd=PROJECT_DIR)


def test_plot_schedule_writes_png_and_prints_key_rates(tmp_path):
  output = tmp_path / 'schedule.png'
  result = run_tool('tools/plot_schedule.py', f'--output={output}',
                    '--config.schedule=sgdr')
  assert result.returncode == 0, result.stderr
  assert png_size(output) == (800, 400)
  lines = result.stdout.splitlines()
  restart = next(line for line in lines if 'restart 1' in line).split()
  assert restart[:3] == ['1872', '4.00', '0.1']  # 4 epochs x 468 steps
  last = next(line for line in lines if line.endswith('last step')).split()
  assert last[0] == '4679' and float(last[2]) < 1e-6


def test_plot_schedule_reports_a_bad_field_in_one_line(tmp_path):
  result = run_tool('tools/plot_schedule.py', f'--output={tmp_path / "s.png"}',
                    '--config.schedule=sgdr', '--config.cycle_epochs=0')
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1] == (
      'Error: config.cycle_epochs=0.0 is invalid: must lie in '
      '[1, num_epochs - warmup_epochs = 9] (the first cycle must fit after '
      'the warmup).')
  assert not (tmp_path / 's.png').exists()


def test_every_run_writes_its_curves_png(idx_dir, tmp_path):
  train.train_and_evaluate(small_config(idx_dir, num_epochs=2), str(tmp_path))
  assert png_size(tmp_path / run_logs.CURVES_PNG) == (800, 800)


def test_range_test_suggests_a_rate_inside_the_ramp(idx_dir, tmp_path):
  config = small_config(idx_dir)
  data = input_pipeline.load_datasets(config)
  result = lr_range_test.run_range_test(config, data.train, min_lr=1e-4,
                                        max_lr=30.0, steps=120)
  ran = len(result.rates)
  assert result.diverged_at == ran - 1 < 119  # 30 is far too high: stops
  # The rates are the exponential ramp, as the optimizer applied them.
  ramp = 1e-4 * (30.0 / 1e-4) ** (np.arange(ran) / 119)
  np.testing.assert_allclose(result.rates, ramp, rtol=1e-4)
  assert result.rates[0] <= result.suggestion <= result.rates[-1]
  best = np.nanargmin(result.smoothed)
  assert result.suggestion == pytest.approx(result.rates[best] / 10)
  assert result.smoothed[best] < 0.8 * result.smoothed[0]  # loss did fall

  lr_range_test.write_outputs(result, tmp_path)
  rows = (tmp_path / lr_range_test.CSV_NAME).read_text().splitlines()
  assert rows[0] == 'step,learning_rate,loss,smoothed_loss'
  assert len(rows) == ran + 1
  assert png_size(tmp_path / lr_range_test.PNG_NAME) == (800, 500)


def test_range_test_rejects_an_empty_ramp(idx_dir):
  config = small_config(idx_dir)
  with pytest.raises(validation.ConfigError, match='0 < min_lr < max_lr'):
    lr_range_test.run_range_test(config, {}, min_lr=1.0, max_lr=0.1, steps=10)


def test_compare_schedules_writes_table_and_png(idx_dir, tmp_path):
  result = run_tool(
      'tools/compare_schedules.py', f'--workdir={tmp_path}', '--target_accuracy=0.5',
      '--config.data_source=idx', f'--config.idx_dir={idx_dir}',
      '--config.num_epochs=2', '--config.batch_size=32',
      '--config.cycle_epochs=1', '--config.allow_download=false')
  assert result.returncode == 0, result.stderr[-2000:]
  table = (tmp_path / 'comparison.md').read_text().splitlines()
  assert table[0].startswith('| schedule | final test acc. | best test acc.')
  rows = [line for line in table if line.startswith('| `')]
  assert [row.split('`')[1] for row in rows] == ['constant', 'warmup_cosine',
                                                 'sgdr']
  for row in rows:
    final = float(row.split('|')[2].strip().rstrip('%'))
    assert 50 < final <= 100
  assert png_size(tmp_path / 'comparison.png') == (800, 500)
  for name in ('constant', 'warmup_cosine', 'sgdr'):
    assert (tmp_path / name / run_logs.EPOCH_LOG).exists()
