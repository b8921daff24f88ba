"""The entry point, run as a user runs it: `python main.py --config=... `."""

import pathlib
import subprocess
import sys

from conftest import PROJECT_DIR
from conftest import TRAIN_SIZE
from machinery import run_logs


def run_main(*args, cwd=PROJECT_DIR):
  return subprocess.run(
      [sys.executable, str(PROJECT_DIR / 'main.py'),
       f'--config={PROJECT_DIR / "configs" / "default.py"}', *args],
      capture_output=True, text=True, timeout=300, cwd=cwd)


def test_main_reports_bad_config_in_one_line(tmp_path):
  result = run_main(f'--workdir={tmp_path}', '--config.warmup_epochs=12')
  assert result.returncode == 1
  assert 'Traceback' not in result.stderr
  assert result.stderr.strip().splitlines()[-1] == (
      'Error: config.warmup_epochs=12.0 is invalid: must lie in '
      '[0, num_epochs=10].')


def test_main_reports_truncated_data_in_one_line(tmp_path, idx_dir):
  broken = tmp_path / 'broken'
  broken.mkdir()
  for path in pathlib.Path(idx_dir).iterdir():
    (broken / path.name).write_bytes(path.read_bytes())
  images = broken / 't10k-images-idx3-ubyte.gz'
  images.write_bytes(images.read_bytes()[:200])
  result = run_main(f'--workdir={tmp_path / "run"}', '--config.data_source=idx',
                    f'--config.idx_dir={broken}')
  assert result.returncode == 1
  assert 'Traceback' not in result.stderr
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith(f'Error: Cannot read data file {images}')


def test_main_rejects_unknown_config_fields(tmp_path):
  result = run_main(f'--workdir={tmp_path}', '--config.num_epoch=3')
  assert result.returncode == 1
  assert 'Traceback' not in result.stderr
  assert result.stderr.strip().splitlines()[-1] == (
      "Error: config has no field 'num_epoch'; did you mean 'num_epochs'?")


def test_main_trains_with_command_line_overrides(tmp_path, idx_dir):
  """The README's entry point, end to end, with --config.field overrides."""
  workdir = tmp_path / 'run'
  result = run_main(f'--workdir={workdir}', '--config.data_source=idx',
                    f'--config.idx_dir={idx_dir}', '--config.num_epochs=2',
                    '--config.warmup_epochs=0.5', '--config.batch_size=64')
  assert result.returncode == 0, result.stderr[-2000:]
  assert 'epoch:  2, lr:' in result.stderr
  steps = (workdir / run_logs.STEP_LOG).read_text().splitlines()
  assert len(steps) == 1 + 2 * (TRAIN_SIZE // 64)  # header + every step
  config = (workdir / 'config.json').read_text()
  assert '"warmup_epochs": 0.5' in config and '"batch_size": 64' in config
