"""Ctrl-C and SIGTERM: save the current step, exit non-zero, resume exactly
(machinery/signals.py)."""

import os
import signal
import subprocess

import pytest

from machinery import checkpoints
from machinery import errors
from runs import assert_same_params
from runs import cli_args
from runs import EPOCHS
from runs import final_params
from runs import run_config
from runs import step_log
from runs import STEPS_PER_EPOCH
from runs import wait_for_checkpoint
import train


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
