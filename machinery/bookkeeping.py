"""A run's bookkeeping around the training loop: resume, records, NaN stop.

train.train_and_evaluate trains; this module decides where it starts (the
newest good checkpoint, or step 0), records every group of steps the loop
reports (CSV, TensorBoard, progress), and stops the run with one line when the
loss stops being finite, naming the last good checkpoint.
"""

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from machinery.errors import NonFiniteLoss


def resume(store, state, data_rng, config, learning_rate_fn,
           steps_per_epoch, total_steps):
  """The newest good checkpoint's state and data RNG, or the fresh ones."""
  restored = store.restore_latest(state, config)
  if restored is None:
    logging.info('No checkpoint in %s: starting from step 0.',
                 store.directory)
    return state, data_rng
  if restored.step >= total_steps:
    logging.info('The checkpoint at step %d in %s ends the run.',
                 restored.step, store.directory)
    return restored.state, restored.data_rng
  epoch, offset = divmod(restored.step, steps_per_epoch)
  logging.info(
      'Resuming from the checkpoint at step %d (epoch %d, step %d of %d in '
      'it), learning rate %.6g.', restored.step, epoch + 1, offset,
      steps_per_epoch, float(learning_rate_fn(restored.step)))
  return restored.state, restored.data_rng


def first_bad_step(metrics):
  """Index of the first non-finite loss in a group of steps, or None."""
  bad = np.flatnonzero(~np.isfinite(metrics['loss']))
  return None if bad.size == 0 else int(bad[0])


def _last_good(store):
  """Where a restart resumes from: saved checkpoints are always finite."""
  kept = store.steps()
  return (f'the last good checkpoint is step {kept[-1]} in {store.directory}'
          if kept else 'no checkpoint had been saved yet')


def stop_on_nonfinite(store, first_step, metrics, i):
  step = first_step + i
  raise NonFiniteLoss(
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


def check_finite(store, state, test_loss=0.0) -> None:
  """Raises NonFiniteLoss, saving nothing, unless `state` can be saved.

  The loss a step logs is computed before its update, so the last update of
  an epoch can leave non-finite parameters behind a finite logged loss;
  checking the parameters (and the test loss) is what keeps a checkpoint of
  NaN from ever being written.
  """
  if np.isfinite(test_loss) and all_finite(state):
    return
  raise NonFiniteLoss(
      f'The parameters after step {int(state.step)} are not finite (test '
      f'loss {test_loss}); stopped without saving them, and '
      f'{_last_good(store)}. Try a lower config.learning_rate (see '
      'tools/lr_range.py).')


class EpochRecorder:
  """Per-group callback of train_epoch: records, NaN check, progress."""

  def __init__(self, writer, store, epoch, bar):
    self._writer, self._store, self._epoch, self._bar = (
        writer, store, epoch, bar)

  def __call__(self, first_step, metrics):
    bad = first_bad_step(metrics)
    if bad is not None:
      self._writer.write_steps(
          self._epoch, first_step, {k: v[:bad + 1] for k, v in metrics.items()})
      self._writer.flush()
      stop_on_nonfinite(self._store, first_step, metrics, bad)
    self._writer.write_steps(self._epoch, first_step, metrics)
    self._bar.update(len(metrics['loss']), float(metrics['loss'][-1]),
                     float(metrics['learning_rate'][-1]))


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


def log_epoch(summary):
  logging.info(
      'epoch:%3d, lr: %.4g -> %.4g, train_loss: %.4f, train_accuracy: '
      '%.2f, test_loss: %.4f, test_accuracy: %.2f, %.1fs (%d img/s)',
      summary['epoch'], summary['learning_rate_first'],
      summary['learning_rate_last'], summary['train_loss'],
      summary['train_accuracy'] * 100, summary['test_loss'],
      summary['test_accuracy'] * 100, summary['epoch_time_s'],
      summary['images_per_s'])
