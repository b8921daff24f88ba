"""A run's bookkeeping around the training loop: resume, records, NaN stop.

train.py's epoch driver trains one run or a stacked group of them; this
module keeps each one's books (`Book`: its lock-protected workdir, checkpoint
store and record writer), decides where they start (the newest good
checkpoint every member has, or step 0), records every group of steps the
loop reports (CSV, TensorBoard, progress), and marks a run diverged with one
line when its loss stops being finite, naming the last good checkpoint.
"""

import pathlib

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from machinery import checkpoints
from machinery import run_logs
from machinery.errors import NonFiniteLoss
from machinery.errors import ResumeError
import tasks


class Book:
  """One run's checkpoints and records, kept by the epoch driver.

  `workdir` holds the checkpoints; `logdir` the records (the same folder
  but on processes > 0 of a multi-host run). `diverged` becomes the
  NonFiniteLoss that ended the run's training, if one did.
  """

  def __init__(self, workdir, config, fingerprint, logdir=None):
    self.workdir = pathlib.Path(workdir)
    self.logdir = pathlib.Path(logdir or workdir)
    self.config = config
    self.fingerprint = fingerprint
    self.store = None
    self.writer = None
    self.diverged = None

  def check_records(self) -> None:
    """Refuses a workdir whose records belong to another run.

    Checkpoints carry their own config check; this one also covers a
    workdir whose checkpoints were deleted but whose config.json,
    train_steps.csv and epochs.csv would otherwise be overwritten.
    """
    recorded = run_logs.read_config(self.logdir)
    if not recorded:
      return
    where = f'The run recorded in {self.logdir / run_logs.CONFIG_JSON}'
    saved = recorded.pop('run_environment', {}) or {}
    checkpoints.check_same_config(recorded, self.config, where)
    fingerprint = saved.get('data_fingerprint')
    if fingerprint and self.fingerprint and fingerprint != self.fingerprint:
      raise ResumeError(
          f'{where} was trained on other data (data fingerprint '
          f'{fingerprint} there, {self.fingerprint} now); use the same data, '
          'or a new --workdir.')

  def open_store(self) -> None:
    self.store = checkpoints.CheckpointStore(
        self.workdir, self.config.keep_checkpoints, self.fingerprint)

  def start_records(self, step, environment, tensorboard) -> None:
    """config.json and the record writer, continuing from `step`."""
    run_logs.write_config(self.logdir, self.config, environment)
    run_logs.clear_diverged(self.logdir)
    self.writer = run_logs.MetricsWriter(self.logdir, step, tensorboard)

  def mark_diverged(self, error: NonFiniteLoss) -> None:
    self.diverged = error
    if self.writer is not None:
      self.writer.flush()
    run_logs.write_diverged(self.logdir, str(error))

  def close(self) -> None:
    try:
      if self.writer is not None:
        self.writer.close()
    finally:
      if self.store is not None:
        self.store.close()


def resume_group(books, states, data_rngs, learning_rate_fns,
                 steps_per_epoch, total_steps):
  """Each run's newest good checkpoint at one common step, or fresh states.

  A crash between two members' saves leaves them at different steps: the
  group goes on from the newest step that every member can restore (a
  group of one: its newest good checkpoint).

  Returns:
    (states, data_rngs), one per book.
  """
  at_most = None
  while True:
    restored = [book.store.restore_latest(state, book.config, at_most=at_most)
                for book, state in zip(books, states)]
    steps = [r.step if r else 0 for r in restored]
    if len(set(steps)) == 1:
      break
    at_most = min(steps)  # strictly falls: the loop ends, at 0 at worst
  for book, r, fn in zip(books, restored, learning_rate_fns):
    _log_resume(book.store, r, fn, steps_per_epoch, total_steps)
  return ([r.state if r else s for r, s in zip(restored, states)],
          [r.data_rng if r else k for r, k in zip(restored, data_rngs)])


def _log_resume(store, restored, learning_rate_fn, steps_per_epoch,
                total_steps):
  if restored is None:
    logging.info('No checkpoint in %s: starting from step 0.',
                 store.directory)
    return
  if restored.step >= total_steps:
    logging.info('The checkpoint at step %d in %s ends the run.',
                 restored.step, store.directory)
    return
  epoch, offset = divmod(restored.step, steps_per_epoch)
  logging.info(
      'Resuming from the checkpoint at step %d (epoch %d, step %d of %d in '
      'it), learning rate %.6g.', restored.step, epoch + 1, offset,
      steps_per_epoch, float(learning_rate_fn(restored.step)))


def first_bad_step(metrics):
  """Index of the first non-finite loss in a group of steps, or None."""
  bad = np.flatnonzero(~np.isfinite(metrics['loss']))
  return None if bad.size == 0 else int(bad[0])


def _last_good(store):
  """Where a restart resumes from: saved checkpoints are always finite."""
  kept = store.steps()
  return (f'the last good checkpoint is step {kept[-1]} in {store.directory}'
          if kept else 'no checkpoint had been saved yet')


def nonfinite_loss(store, first_step, metrics, i) -> NonFiniteLoss:
  step = first_step + i
  return NonFiniteLoss(
      f'Loss is {metrics["loss"][i]} at step {step} (learning rate '
      f'{metrics["learning_rate"][i]:.6g}); stopped, and {_last_good(store)}. '
      'Try a lower config.learning_rate (see tools/lr_range.py).')


def all_finite(state) -> bool:
  """Whether every float in the state's params and optimizer state is finite.

  One reduction on the device, one value fetched.
  """
  leaves = [x for x in jax.tree.leaves((state.params, state.opt_state))
            if jnp.issubdtype(x.dtype, jnp.floating)]
  return bool(jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves])))


def nonfinite_state(store, state, test_loss=0.0) -> NonFiniteLoss | None:
  """None if `state` can be saved, else the NonFiniteLoss that says why not.

  The loss a step logs is computed before its update, so the last update of
  an epoch can leave non-finite parameters behind a finite logged loss;
  checking the parameters (and the test loss) is what keeps a checkpoint of
  NaN from ever being written.
  """
  if np.isfinite(test_loss) and all_finite(state):
    return None
  return NonFiniteLoss(
      f'The parameters after step {int(state.step)} are not finite (test '
      f'loss {test_loss}); stopped without saving them, and '
      f'{_last_good(store)}. Try a lower config.learning_rate (see '
      'tools/lr_range.py).')


def record_steps(book, epoch, first_step, metrics) -> None:
  """A group of one run's steps: its rows, or its rows up to a NaN and the
  run marked diverged (no later rows)."""
  bad = first_bad_step(metrics)
  if bad is None:
    book.writer.write_steps(epoch, first_step, metrics)
    return
  book.writer.write_steps(epoch, first_step,
                          {k: v[:bad + 1] for k, v in metrics.items()})
  book.mark_diverged(nonfinite_loss(book.store, first_step, metrics, bad))


def epoch_summary(writer, epoch, step, test_loss, test_accuracy, elapsed,
                  images):
  """The epochs.csv row of an epoch (without elapsed_s)."""
  return {
      'epoch': epoch,
      'step': step,
      **writer.epoch_train_metrics(),
      'test_loss': test_loss,
      'test_accuracy': test_accuracy,
      'epoch_time_s': round(elapsed, 3),
      'images_per_s': round(images / elapsed),
  }


def log_epoch(summary, config):
  """One line per epoch, in the task's words (tasks.Task.epoch_line)."""
  logging.info('%s', tasks.task_of(config).epoch_line(summary, config))
