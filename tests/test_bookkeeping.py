"""The NaN stop: one line naming the step, the rate and the last good
checkpoint, which is kept (machinery/bookkeeping.py)."""

import subprocess

import jax
import numpy as np
import pytest

from machinery import checkpoints
from machinery import errors
from machinery import run_logs
from runs import cli_args
from runs import run_config
from runs import step_log
from runs import STEPS_PER_EPOCH
import train


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(
    idx_dir, tmp_path, monkeypatch):
  bad_step = STEPS_PER_EPOCH + 3  # inside epoch 2
  real_step = train.train_step_on_device

  def poisoned(state, *args):
    step = int(state.step)  # read before the step donates `state`
    new_state, metrics = real_step(state, *args)
    if step >= bad_step:
      metrics = dict(metrics, loss=metrics['loss'] * np.nan)
    return new_state, metrics

  monkeypatch.setattr(train, 'train_step_on_device', poisoned)
  config = run_config(idx_dir)
  lr = float(train.create_learning_rate_fn(
      config, config.learning_rate, STEPS_PER_EPOCH)(bad_step))
  with pytest.raises(errors.NonFiniteLoss) as error:
    train.train_and_evaluate(config, str(tmp_path))
  message = str(error.value)
  assert message.startswith(f'Loss is nan at step {bad_step} (learning rate '
                            f'{lr:.6g})')
  assert f'last good checkpoint is step {STEPS_PER_EPOCH}' in message
  kept = sorted(int(p.name) for p in
                (tmp_path / checkpoints.CHECKPOINT_DIR).iterdir())
  assert kept == [STEPS_PER_EPOCH]
  last_row = step_log(tmp_path).splitlines()[-1].split(',')
  assert int(last_row[0]) == bad_step and last_row[3] == 'nan'


def test_diverging_run_reports_one_line(idx_dir, tmp_path):
  result = subprocess.run(
      cli_args(idx_dir, tmp_path, epochs=2) +
      ['--config.learning_rate=1e4', '--config.warmup_epochs=0'],
      capture_output=True, text=True, timeout=300)
  assert result.returncode == 1
  assert 'Traceback' not in result.stderr
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith('Error: Loss is nan at step ')
  assert 'no checkpoint had been saved yet' in last


def test_non_finite_parameters_are_never_saved(idx_dir, tmp_path,
                                              monkeypatch):
  """The epoch's last update leaves NaN behind a finite logged loss."""
  real_step = train.train_step_on_device

  def poison_the_last_update(state, *args):
    step = int(state.step)  # read before the step donates `state`
    new_state, metrics = real_step(state, *args)
    if step == 2 * STEPS_PER_EPOCH - 1:  # epoch 2's last step
      new_state = new_state.replace(params=jax.tree.map(
          lambda p: p * np.nan, new_state.params))
    return new_state, metrics

  monkeypatch.setattr(train, 'train_step_on_device', poison_the_last_update)
  with pytest.raises(errors.NonFiniteLoss) as error:
    train.train_and_evaluate(run_config(idx_dir), str(tmp_path))
  store = checkpoints.CheckpointStore(tmp_path, keep=3)
  assert store.steps() == [STEPS_PER_EPOCH]  # epoch 1's, not epoch 2's
  store.close()
  assert str(error.value) == (
      f'The parameters after step {2 * STEPS_PER_EPOCH} are not finite (test '
      'loss nan); stopped without saving them, and the last good checkpoint '
      f'is step {STEPS_PER_EPOCH} in {tmp_path / "checkpoints"}. Try a lower '
      'config.learning_rate (see tools/lr_range.py).')
  epochs = (tmp_path / run_logs.EPOCH_LOG).read_text().splitlines()
  assert len(epochs) == 2  # header + epoch 1: epoch 2 is not recorded
