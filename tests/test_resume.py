"""Runs that survive: exact resume, kill -9, Ctrl-C, NaN, damaged checkpoints.

The reference for exactness is an uninterrupted run of the same config: a
resumed run must write the very same train_steps.csv (every step once, the
same learning rate, the same loss to the last bit) and end with bitwise equal
parameters.
"""

import logging
import os
import pathlib
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from conftest import PROJECT_DIR, small_config, TRAIN_SIZE
from machinery import errors
from machinery import run_logs
from machinery import checkpoints
import train

BATCH = 32
STEPS_PER_EPOCH = TRAIN_SIZE // BATCH
EPOCHS = 4


def run_config(idx_dir, **overrides):
  fields = dict(num_epochs=EPOCHS, batch_size=BATCH, log_every_steps=5)
  return small_config(idx_dir, **{**fields, **overrides})


def cli_args(idx_dir, workdir, epochs=EPOCHS):
  return [sys.executable, str(PROJECT_DIR / 'main.py'),
          f'--config={PROJECT_DIR / "configs" / "default.py"}',
          f'--workdir={workdir}', '--config.data_source=idx',
          f'--config.idx_dir={idx_dir}', '--config.allow_download=false',
          f'--config.num_epochs={epochs}', f'--config.batch_size={BATCH}',
          '--config.log_every_steps=5',
          '--config.cpu_devices=1']  # bitwise-comparable with in-process runs


def final_params(workdir, config):
  """Params of the newest checkpoint in `workdir`, as numpy arrays."""
  lr_fn = train.create_learning_rate_fn(config, config.learning_rate,
                                        STEPS_PER_EPOCH)
  template = train.create_train_state(jax.random.key(0), config, lr_fn)
  store = checkpoints.CheckpointStore(workdir, keep=3)
  try:
    restored = store.restore_latest(template, config)
  finally:
    store.close()
  return jax.tree.map(np.asarray, restored.state.params)


def assert_same_params(a, b):
  leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(leaves_a) == len(leaves_b)
  for x, y in zip(leaves_a, leaves_b):
    np.testing.assert_array_equal(x, y)  # bitwise on CPU


def step_log(workdir):
  return (pathlib.Path(workdir) / run_logs.STEP_LOG).read_text()


@pytest.fixture(scope='module')
def reference(idx_dir, tmp_path_factory):
  """An uninterrupted run, in a subprocess like the interrupted ones."""
  workdir = tmp_path_factory.mktemp('reference')
  result = subprocess.run(cli_args(idx_dir, workdir, epochs=EPOCHS),
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  return workdir


def wait_for_checkpoint(workdir, step, process, timeout=120):
  """Blocks until checkpoint `step` is complete (renamed into place)."""
  done = pathlib.Path(workdir) / checkpoints.CHECKPOINT_DIR / str(step)
  deadline = time.monotonic() + timeout
  while not (done / 'commit_success.txt').exists():
    assert process.poll() is None, 'the run ended before the checkpoint'
    assert time.monotonic() < deadline, f'no checkpoint {step} in {timeout}s'
    time.sleep(0.02)


def test_in_process_resume_after_a_crash_is_exact(idx_dir, tmp_path,
                                                   monkeypatch):
  """Crash right after epoch 2's checkpoint, resume, compare to a clean run."""
  clean = train.train_and_evaluate(run_config(idx_dir), str(tmp_path / 'a'))

  real_save = checkpoints.CheckpointStore.save

  def crash_after_epoch_2(self, state, data_rng, epoch, config):
    path = real_save(self, state, data_rng, epoch, config)
    if epoch == 2:
      raise SystemExit('simulated crash')
    return path

  monkeypatch.setattr(checkpoints.CheckpointStore, 'save', crash_after_epoch_2)
  with pytest.raises(SystemExit):
    train.train_and_evaluate(run_config(idx_dir), str(tmp_path / 'b'))
  monkeypatch.undo()
  resumed = train.train_and_evaluate(run_config(idx_dir), str(tmp_path / 'b'))

  assert int(resumed.step) == EPOCHS * STEPS_PER_EPOCH
  assert_same_params(clean.params, resumed.params)
  assert_same_params(clean.opt_state, resumed.opt_state)
  assert step_log(tmp_path / 'b') == step_log(tmp_path / 'a')


def test_kill_9_then_resume_matches_the_uninterrupted_run(idx_dir, tmp_path,
                                                          reference):
  workdir = tmp_path / 'killed'
  process = subprocess.Popen(cli_args(idx_dir, workdir),
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
  try:
    wait_for_checkpoint(workdir, STEPS_PER_EPOCH, process)
  finally:
    process.send_signal(signal.SIGKILL)  # no handler, no cleanup
    process.wait()
  assert process.returncode == -signal.SIGKILL
  config = run_config(idx_dir)

  resumed = subprocess.run(cli_args(idx_dir, workdir), capture_output=True,
                           text=True, timeout=300)
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  assert 'Resuming from the checkpoint at step' in resumed.stderr
  steps = [int(line.split(',')[0])
           for line in step_log(workdir).splitlines()[1:]]
  assert steps == list(range(EPOCHS * STEPS_PER_EPOCH))  # no gap, no repeat
  assert step_log(workdir) == step_log(reference)
  assert_same_params(final_params(workdir, config), final_params(reference, config))


def test_sigint_saves_the_current_step_and_exits_nonzero(idx_dir, tmp_path,
                                                         reference):
  workdir = tmp_path / 'interrupted'
  process = subprocess.Popen(cli_args(idx_dir, workdir, epochs=EPOCHS),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)
  wait_for_checkpoint(workdir, STEPS_PER_EPOCH, process)
  process.send_signal(signal.SIGINT)
  _, stderr = process.communicate(timeout=120)
  if process.returncode == 0:
    pytest.skip('the run finished before SIGINT arrived (machine too fast)')
  assert process.returncode == 128 + signal.SIGINT
  config = run_config(idx_dir)
  last = stderr.strip().splitlines()[-1]
  assert last.startswith('Stopped: SIGINT at step ')
  step = int(last.split('at step ')[1].split()[0])
  assert STEPS_PER_EPOCH <= step < EPOCHS * STEPS_PER_EPOCH
  saved = workdir / checkpoints.CHECKPOINT_DIR / str(step)
  assert (saved / 'commit_success.txt').exists()
  assert f'saved {saved}' in last

  resumed = subprocess.run(cli_args(idx_dir, workdir), capture_output=True,
                           text=True, timeout=300)
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  assert f'Resuming from the checkpoint at step {step} ' in resumed.stderr
  assert step_log(workdir) == step_log(reference)
  assert_same_params(final_params(workdir, config), final_params(reference, config))


def test_damaged_latest_checkpoint_falls_back_to_the_previous(
    idx_dir, tmp_path, reference, caplog):
  caplog.set_level(logging.INFO)
  workdir = tmp_path / 'damaged'
  config = run_config(idx_dir)
  train.train_and_evaluate(config, str(workdir))
  ckpt_dir = workdir / checkpoints.CHECKPOINT_DIR
  newest = ckpt_dir / str(EPOCHS * STEPS_PER_EPOCH)
  for path in (newest / 'state').rglob('*'):
    if path.is_file():
      path.write_bytes(b'garbage')
  state = train.train_and_evaluate(config, str(workdir))
  assert 'cannot be loaded' in caplog.text
  assert (workdir / checkpoints.DAMAGED_DIR /
          str(EPOCHS * STEPS_PER_EPOCH)).is_dir()  # set aside, not deleted
  # It resumed from epoch 3's checkpoint and redid epoch 4 exactly.
  assert f'Resuming from the checkpoint at step {3 * STEPS_PER_EPOCH}' in (
      caplog.text)
  assert_same_params(jax.tree.map(np.asarray, state.params),
                     final_params(reference, config))
  assert step_log(workdir) == step_log(reference)


def test_resume_with_a_different_config_is_refused(idx_dir, tmp_path):
  train.train_and_evaluate(run_config(idx_dir, num_epochs=1), str(tmp_path))
  with pytest.raises(checkpoints.ResumeError,
                     match=r'learning_rate=0\.1 there, 0\.2 now'):
    train.train_and_evaluate(
        run_config(idx_dir, num_epochs=1, learning_rate=0.2), str(tmp_path))


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


def test_completed_run_is_not_trained_again(idx_dir, tmp_path, caplog):
  caplog.set_level(logging.INFO)
  config = run_config(idx_dir, num_epochs=1)
  first = train.train_and_evaluate(config, str(tmp_path))
  again = train.train_and_evaluate(config, str(tmp_path))
  assert 'already complete' in caplog.text
  assert_same_params(first.params, again.params)
  assert len(step_log(tmp_path).splitlines()) == 1 + STEPS_PER_EPOCH


def test_keep_checkpoints_keeps_the_newest(idx_dir, tmp_path):
  train.train_and_evaluate(run_config(idx_dir, keep_checkpoints=2),
                           str(tmp_path))
  kept = sorted(int(p.name) for p in
                (tmp_path / checkpoints.CHECKPOINT_DIR).iterdir())
  assert kept == [3 * STEPS_PER_EPOCH, 4 * STEPS_PER_EPOCH]


def test_sigterm_in_process_path(idx_dir, tmp_path, monkeypatch):
  """SIGTERM is handled like Ctrl-C (the handler, without a subprocess)."""
  real_epoch = train.train_epoch
  calls = []

  def epoch_then_signal(*args, **kwargs):
    calls.append(1)
    if len(calls) == 2:  # just before epoch 2's first step
      os.kill(os.getpid(), signal.SIGTERM)
    return real_epoch(*args, **kwargs)

  monkeypatch.setattr(train, 'train_epoch', epoch_then_signal)
  with pytest.raises(errors.Interrupted) as error:
    train.train_and_evaluate(run_config(idx_dir), str(tmp_path))
  assert error.value.signal_number == signal.SIGTERM
  # The loop polls between steps: it stops after epoch 2's first step.
  assert str(error.value).startswith(
      f'SIGTERM at step {STEPS_PER_EPOCH + 1} (epoch 2); saved ')
  assert (tmp_path / checkpoints.CHECKPOINT_DIR /
          str(STEPS_PER_EPOCH + 1)).is_dir()
  assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored
