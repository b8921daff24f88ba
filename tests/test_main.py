"""The entry point, run as a user runs it: `python main.py --config=... `."""

import json
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import PROJECT_DIR
from conftest import TRAIN_SIZE
from machinery import cli
from machinery import run_logs
from runs import with_sigint


def run_main(*args, cwd=PROJECT_DIR, config='default.py'):
  return subprocess.run(
      [sys.executable, str(PROJECT_DIR / 'main.py'),
       f'--config={PROJECT_DIR / "configs" / config}', *args],
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


def test_speedrun_config_trains_one_epoch(tmp_path, idx_dir):
  """configs/speedrun.py as shipped: one epoch at batch 32, Nesterov."""
  workdir = tmp_path / 'run'
  result = run_main(f'--workdir={workdir}', '--config.data_source=idx',
                    f'--config.idx_dir={idx_dir}', config='speedrun.py')
  assert result.returncode == 0, result.stderr[-2000:]
  steps = run_logs.read_steps(workdir)
  assert len(steps['step']) == TRAIN_SIZE // 32
  assert steps['learning_rate'][0] == 0  # warmup from 0
  assert len(run_logs.read_epochs(workdir)['epoch']) == 1
  config = json.loads((workdir / 'config.json').read_text())
  assert (config['num_epochs'], config['batch_size'], config['nesterov']) == (
      1, 32, True)


@pytest.mark.parametrize('text,message', [
    (None, 'no such file.'),
    ('def get_config(:\n', 'has a syntax error at line 1: invalid syntax.'),
    ('def get_config():\n  raise ValueError("boom")\n',
     ': get_config() raised ValueError: boom'),
    ('x = 1\n', 'defines no get_config() function.'),
])
def test_bad_config_files_are_one_line_errors(tmp_path, text, message):
  path = tmp_path / 'my_config.py'
  if text is not None:
    path.write_text(text)
  result = subprocess.run(
      [sys.executable, str(PROJECT_DIR / 'main.py'), f'--config={path}',
       f'--workdir={tmp_path / "run"}'], capture_output=True, text=True,
      timeout=300, cwd=PROJECT_DIR)
  assert result.returncode == 1
  assert 'Traceback' not in result.stderr
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith(f'Error: --config={path}') and last.endswith(message)


def test_bad_config_fails_before_the_config_is_logged(tmp_path):
  result = run_main(f'--workdir={tmp_path}', '--config.momentum=2.0')
  assert result.returncode == 1
  assert result.stderr.strip().splitlines() == [
      'Error: config.momentum=2.0 is invalid: must lie in [0, 1).']


def cli_program(tmp_path, body):
  """A program that runs `main`, defined in body, through cli.run, as
  main.py does; it imports the project from the path in its first
  argument."""
  program = tmp_path / 'program.py'
  program.write_text(
      'import sys, time\n'
      'sys.path.insert(0, sys.argv[1])\n'
      'from machinery import cli\n'
      + textwrap.dedent(body) + '\ncli.run(main)\n')
  return program


SWALLOWING_MAIN = """
    def main(argv):
      try:
        print('ready', flush=True)  # inside: the signal lands after it
        time.sleep(120)
      except KeyboardInterrupt:  # as a finalizer or a library may
        pass
      time.sleep(120)
    """


FINALIZER_MAIN = """
    class Collected:
      def __del__(self):  # where a Ctrl-C can land, as in JAX's GC callback
        raise KeyboardInterrupt

    def main(argv):
      Collected()
      time.sleep(120)
    """


def test_ctrl_c_landing_in_a_finalizer_stops_at_once_with_one_line(
    tmp_path):
  """Python cannot raise an exception from a finalizer or a GC callback:
  it prints a traceback and goes on. A Ctrl-C that lands there (CI saw
  one land in JAX's GC callback, and the run go on) stops the program,
  with one line and no traceback, without waiting for the deadline."""
  program = cli_program(tmp_path, FINALIZER_MAIN)
  start = time.perf_counter()
  result = subprocess.run([sys.executable, program, PROJECT_DIR],
                          capture_output=True, text=True,
                          timeout=cli.INTERRUPT_DEADLINE_S + 60)
  assert result.returncode == 130, result.stderr[-2000:]
  assert result.stderr.strip().splitlines() == [cli.STOPPED_AT_ONCE]
  assert time.perf_counter() - start < 60  # not the 120 s it sleeps


def test_ctrl_c_is_one_line_even_where_a_library_swallows_it(tmp_path):
  """Ctrl-C during start-up is Python's KeyboardInterrupt (so `with` blocks
  close what they opened), which a finalizer or a library can lose: the
  program still stops, with one line, soon after."""
  program = cli_program(tmp_path, SWALLOWING_MAIN)
  process = subprocess.Popen(
      with_sigint('SIG_DFL', [sys.executable, program, PROJECT_DIR]),
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  assert process.stdout.readline() == 'ready\n'
  process.send_signal(signal.SIGINT)
  _, err = process.communicate(timeout=cli.INTERRUPT_DEADLINE_S + 60)
  assert process.returncode == 130, err[-2000:]
  assert err.strip().splitlines() == [cli.STOPPED_AT_ONCE]


@pytest.mark.parametrize('delay_s', [0.3, 3.0])
def test_ctrl_c_during_start_up_is_one_line(tmp_path, idx_dir, delay_s):
  """Ctrl-C at any moment of a run (epochs enough that it still trains at
  the later delay on any machine: ten had ended by 3 s on CI's) is one
  line and exit status 130."""
  process = subprocess.Popen(
      with_sigint('SIG_DFL', [
          sys.executable, PROJECT_DIR / 'main.py',
          f'--config={PROJECT_DIR / "configs" / "default.py"}',
          f'--workdir={tmp_path / "run"}', '--config.data_source=idx',
          f'--config.idx_dir={idx_dir}', '--config.num_epochs=1000']),
      stderr=subprocess.PIPE, text=True, cwd=PROJECT_DIR)
  time.sleep(delay_s)  # importing JAX, or loading data, or training
  process.send_signal(signal.SIGINT)
  _, err = process.communicate(timeout=300)
  assert process.returncode == 130, err[-2000:]
  assert 'Traceback' not in err
  last = err.strip().splitlines()[-1]
  assert last.startswith('Stopped')
  if not (tmp_path / 'run' / 'checkpoints').is_dir():  # none was ever saved
    assert 'checkpoint is kept' not in last
