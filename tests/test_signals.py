"""Ctrl-C and SIGTERM: save the current step, exit non-zero, resume exactly
(machinery/signals.py)."""

import os
import signal
import subprocess
import time

import pytest

from machinery import bookkeeping
from machinery import checkpoints
from machinery import errors
from machinery import run_logs
from machinery import signals
from runs import assert_same_params
from runs import cli_args
from runs import EPOCHS
from runs import final_params
from runs import run_config
from runs import step_log
from runs import STEPS_PER_EPOCH
from runs import wait_for_checkpoint
from runs import with_sigint
import train


def test_sigint_saves_the_current_step_and_exits_nonzero(idx_dir, tmp_path,
                                                         reference):
  workdir = tmp_path / 'interrupted'
  process = subprocess.Popen(
      with_sigint('SIG_DFL', cli_args(idx_dir, workdir, epochs=EPOCHS)),
      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
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


@pytest.fixture
def own_handler():
  """Gives each stop signal a handler of the test's own for the test, so
  the suite passes whether it was started plainly or under nohup (SIGHUP
  ignored), and the handler restored afterwards can be told from SIG_DFL."""
  def previous_handler(signum, frame):
    del signum, frame
  saved = {signum: signal.signal(signum, previous_handler)
           for signum in signals.STOP_SIGNALS}
  yield previous_handler
  for signum, handler in saved.items():
    signal.signal(signum, handler)


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_in_process_path(idx_dir, tmp_path, monkeypatch, signum,
                                 own_handler):
  """SIGTERM, and SIGHUP (a closed terminal), are handled like Ctrl-C (the
  handler, without a subprocess); the previous handler comes back after."""
  real_epoch = train.train_epoch
  calls = []

  def epoch_then_signal(*args, **kwargs):
    calls.append(1)
    if len(calls) == 2:  # just before epoch 2's first step
      os.kill(os.getpid(), signum)
    return real_epoch(*args, **kwargs)

  monkeypatch.setattr(train, 'train_epoch', epoch_then_signal)
  with pytest.raises(errors.Interrupted) as error:
    train.train_and_evaluate(run_config(idx_dir), str(tmp_path))
  assert error.value.signal_number == signum
  # The loop polls between steps: it stops after epoch 2's first step.
  assert str(error.value).startswith(
      f'{signal.Signals(signum).name} at step {STEPS_PER_EPOCH + 1} (epoch '
      '2); saved ')
  assert (tmp_path / checkpoints.CHECKPOINT_DIR /
          str(STEPS_PER_EPOCH + 1)).is_dir()
  assert signal.getsignal(signum) is own_handler  # the previous one, back


@pytest.mark.parametrize('signum', signals.STOP_SIGNALS)
def test_an_ignored_signal_stays_ignored(signum):
  """nohup ignores SIGHUP so that a closed terminal does not stop the job:
  the run must not take that back (nor ignore an ignored SIGINT less)."""
  previous = signal.signal(signum, signal.SIG_IGN)
  try:
    with signals.stop_on_signals() as request:
      assert signal.getsignal(signum) is signal.SIG_IGN
      os.kill(os.getpid(), signum)
      assert not request
    assert signal.getsignal(signum) is signal.SIG_IGN
  finally:
    signal.signal(signum, previous)


def test_a_second_signal_stops_through_the_handler_it_had():
  """The first Ctrl-C asks for a clean stop; the second is the program's
  own way to stop at once (main.py's exits even where a library swallows
  the KeyboardInterrupt), which the run hands it back to."""
  calls = []

  def programs_handler(signum, frame):
    del frame
    calls.append(signum)
    raise KeyboardInterrupt
  previous = signal.signal(signal.SIGINT, programs_handler)
  try:
    with pytest.raises(KeyboardInterrupt):
      with signals.stop_on_signals() as request:
        os.kill(os.getpid(), signal.SIGINT)
        assert request and not calls
        os.kill(os.getpid(), signal.SIGINT)
    assert calls == [signal.SIGINT]
    assert signal.getsignal(signal.SIGINT) is programs_handler
  finally:
    signal.signal(signal.SIGINT, previous)


def test_a_run_under_nohup_survives_sighup(idx_dir, tmp_path, reference):
  """A run started under `nohup` (SIGHUP ignored) trains to the end
  through a SIGHUP, and its records are those of an undisturbed run."""
  workdir = tmp_path / 'nohup'
  process = subprocess.Popen(
      ['nohup', *cli_args(idx_dir, workdir, epochs=EPOCHS)],
      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  wait_for_checkpoint(workdir, STEPS_PER_EPOCH, process)
  process.send_signal(signal.SIGHUP)
  _, stderr = process.communicate(timeout=300)
  assert process.returncode == 0, stderr[-2000:]
  assert 'Received SIGHUP' not in stderr
  assert step_log(workdir) == step_log(reference)


def test_a_background_run_keeps_sigint_ignored(idx_dir, tmp_path, reference):
  """A shell starts a background job with SIGINT ignored (so that Ctrl-C
  at the terminal does not reach it): the run keeps it so, from its first
  line on, and trains to the end, as an undisturbed run."""
  workdir = tmp_path / 'background'
  process = subprocess.Popen(
      with_sigint('SIG_IGN', cli_args(idx_dir, workdir, epochs=EPOCHS)),
      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  time.sleep(0.3)  # still importing JAX
  process.send_signal(signal.SIGINT)
  wait_for_checkpoint(workdir, STEPS_PER_EPOCH, process)
  process.send_signal(signal.SIGINT)
  _, stderr = process.communicate(timeout=300)
  assert process.returncode == 0, stderr[-2000:]
  assert 'Stopped' not in stderr and 'SIGINT' not in stderr
  assert step_log(workdir) == step_log(reference)


def records_without_timings(workdir):
  """epochs.csv without its wall-clock columns, and train_steps.csv."""
  rows = (workdir / run_logs.EPOCH_LOG).read_text().splitlines()
  timing = {'epoch_time_s', 'images_per_s', 'elapsed_s'}
  header = rows[0].split(',')
  keep = [i for i, name in enumerate(header) if name not in timing]
  epochs = [[row.split(',')[i] for i in keep] for row in rows]
  return epochs, step_log(workdir)


def test_a_stop_on_an_epochs_last_step_keeps_its_evaluation(idx_dir, tmp_path,
                                                             monkeypatch,
                                                             own_handler):
  """SIGINT lands while the epoch's last step is in flight: nothing is lost.
  (own_handler: SIGINT handled whatever pytest inherited; a shell's
  background job starts with it ignored, and an ignored signal stays
  ignored.)"""
  config = run_config(idx_dir, log_every_steps=1)
  train.train_and_evaluate(config, str(tmp_path / 'clean'))
  real_record = bookkeeping.record_steps
  sent = []

  def signal_before_the_last_step(book, epoch, first_step, metrics):
    real_record(book, epoch, first_step, metrics)
    if first_step == STEPS_PER_EPOCH - 2 and not sent:  # next: the last step
      sent.append(first_step)
      os.kill(os.getpid(), signal.SIGINT)

  monkeypatch.setattr(bookkeeping, 'record_steps',
                      signal_before_the_last_step)
  with pytest.raises(errors.Interrupted) as error:
    train.train_and_evaluate(config, str(tmp_path / 'stopped'))
  assert str(error.value).startswith(
      f'SIGINT at step {STEPS_PER_EPOCH} (epoch 1); saved ')
  epochs, _ = records_without_timings(tmp_path / 'stopped')
  assert len(epochs) == 2  # header + epoch 1, evaluated before stopping
  monkeypatch.undo()
  train.train_and_evaluate(config, str(tmp_path / 'stopped'))
  assert (records_without_timings(tmp_path / 'stopped') ==
          records_without_timings(tmp_path / 'clean'))
