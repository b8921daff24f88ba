"""tools/plot_run.py: a run's curves, also for runs that stopped early."""

import pytest

from runs import png_size
from runs import run_tool


def write_records(workdir, steps, epochs):
  workdir.mkdir(parents=True, exist_ok=True)
  (workdir / 'train_steps.csv').write_text(
      'step,epoch,learning_rate,loss,accuracy\n' + steps)
  (workdir / 'epochs.csv').write_text(
      'epoch,step,learning_rate_first,learning_rate_last,train_loss,'
      'train_accuracy,test_loss,test_accuracy,epoch_time_s,images_per_s,'
      'elapsed_s\n' + epochs)


def test_a_nan_stopped_run_before_its_first_epoch_is_drawn(tmp_path):
  write_records(tmp_path, '0,1,0.0,2.3,0.1\n1,1,0.5,nan,0.1\n', '')
  result = run_tool('tools/plot_run.py', f'--workdir={tmp_path}', config=None)
  assert result.returncode == 0, result.stderr[-2000:]
  assert png_size(tmp_path / 'curves.png') == (800, 800)


@pytest.mark.parametrize('prepare,message', [
    (lambda p: None, 'is not a folder.'),
    (lambda p: p.mkdir(), 'holds no run records (train_steps.csv is missing): '
     'is it the --workdir of a run?'),
    (lambda p: write_records(p, '', ''), 'train_steps.csv holds no rows yet: '
     'the run has not recorded a step.'),
])
def test_a_workdir_without_records_is_one_line(tmp_path, prepare, message):
  workdir = tmp_path / 'run'
  prepare(workdir)
  result = run_tool('tools/plot_run.py', f'--workdir={workdir}', config=None)
  assert result.returncode == 1
  assert 'Traceback' not in result.stderr
  assert result.stderr.strip().splitlines()[-1].endswith(message)
