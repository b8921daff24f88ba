"""Trains the CNN of models.py on MNIST under a warmup + cosine schedule.

The structure follows the Flax MNIST/ImageNet examples: `create_train_state`,
a jitted `train_step`, `train_epoch`, an evaluation on the test split after
every epoch, and `train_and_evaluate(config, workdir)`. What this project
adds is that every step records the learning rate the optimizer actually
applied, and the whole per-step record is written to `workdir` so it can be
plotted exactly.
"""

import functools
import pathlib
import time

from absl import logging
from flax.training import train_state
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

import checkpoints
import input_pipeline
import models
import plots
import progress
import run_logs
import schedules
import validation

# Re-exported: the seed's public API lives here in the Flax guide.
create_learning_rate_fn = schedules.create_learning_rate_fn

STEP_LOG = run_logs.STEP_LOG
EPOCH_LOG = run_logs.EPOCH_LOG
CURVES_PNG = 'curves.png'


def normalize_images(images):
  """uint8 pixels in [0, 255] -> float32 in [0, 1], on the device."""
  return jnp.asarray(images, jnp.float32) / 255.0


def cross_entropy_loss(logits, labels):
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def create_train_state(rng, config, learning_rate_fn):
  """The CNN's parameters and `optax.sgd(learning_rate_fn, momentum)`."""
  cnn = models.CNN()
  params = cnn.init(rng, jnp.ones([1, 28, 28, 1], jnp.float32))['params']
  tx = optax.sgd(learning_rate_fn, config.momentum)
  state = train_state.TrainState.create(
      apply_fn=cnn.apply, params=params, tx=tx)
  # An int32 array, not a Python int: the same type a checkpoint restores.
  return state.replace(step=jnp.zeros((), jnp.int32))


@functools.partial(jax.jit, static_argnames=('learning_rate_fn',))
def train_step(state, batch, learning_rate_fn):
  """One SGD step on `batch`; returns the new state and the step's metrics.

  `metrics['learning_rate']` is `learning_rate_fn(state.step)` of the incoming
  state: the rate optax's sgd applies in this very update (its schedule count
  and `state.step` both start at 0 and advance together).
  """

  def loss_fn(params):
    logits = state.apply_fn({'params': params},
                            normalize_images(batch['image']))
    return cross_entropy_loss(logits, batch['label']), logits

  (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.params)
  new_state = state.apply_gradients(grads=grads)
  metrics = {
      'learning_rate': learning_rate_fn(state.step),
      'loss': loss,
      'accuracy': jnp.mean(jnp.argmax(logits, -1) == batch['label']),
  }
  return new_state, metrics


@jax.jit
def eval_step(state, batch):
  """Summed loss and number of correct predictions over `batch`."""
  logits = state.apply_fn({'params': state.params},
                          normalize_images(batch['image']))
  losses = optax.softmax_cross_entropy_with_integer_labels(
      logits, batch['label'])
  return {'loss': losses.sum(),
          'correct': jnp.sum(jnp.argmax(logits, -1) == batch['label'])}


def epoch_batches(train_size, batch_size, rng) -> np.ndarray:
  """The epoch's example indices, [steps_per_epoch, batch_size].

  A fresh permutation per epoch; the remainder that does not fill a whole
  batch is dropped, as in the Flax examples, so every epoch has exactly
  `train_size // batch_size` steps and the schedule's `steps_per_epoch`
  matches the loop. The order depends on `rng` alone, which is what lets a
  resumed run replay the rest of an epoch exactly.
  """
  steps_per_epoch = train_size // batch_size
  perms = np.asarray(jax.random.permutation(rng, train_size))
  return perms[:steps_per_epoch * batch_size].reshape(
      (steps_per_epoch, batch_size))


def train_epoch(state, train_ds, batch_size, rng, learning_rate_fn, *,
                skip_batches=0, report=None, report_every=100,
                stop=lambda: False):
  """Runs the epoch's batches from `skip_batches` on.

  Metrics stay on the device and are fetched in groups of `report_every`
  steps (and at the end), so the host rarely waits for the device. Each group
  goes to `report(first_step, {name: np.ndarray})`, which may raise to end
  the run. `stop()` is polled after every step.

  Returns:
    The new state, and whether `stop()` ended the epoch early.
  """
  batches = epoch_batches(len(train_ds['label']), batch_size, rng)
  pending, first_pending = [], int(state.step)
  for i in range(skip_batches, len(batches)):
    batch = {key: value[batches[i]] for key, value in train_ds.items()}
    state, metrics = train_step(state, batch, learning_rate_fn)
    pending.append(metrics)
    stopped = bool(stop())
    if len(pending) == report_every or i == len(batches) - 1 or stopped:
      if report is not None:
        pending = jax.device_get(pending)
        report(first_pending, {key: np.array([m[key] for m in pending])
                               for key in pending[0]})
      first_pending += len(pending)
      pending = []
    if stopped:
      return state, True
  return state, False

def eval_model(state, test_ds, batch_size):
  """Mean loss and accuracy over the whole of `test_ds`."""
  num_examples = len(test_ds['label'])
  totals = []
  for start in range(0, num_examples, batch_size):
    batch = {key: value[start:start + batch_size]
             for key, value in test_ds.items()}
    totals.append(eval_step(state, batch))
  totals = jax.device_get(totals)
  loss = sum(float(t['loss']) for t in totals) / num_examples
  accuracy = sum(int(t['correct']) for t in totals) / num_examples
  return loss, accuracy


class NonFiniteLoss(RuntimeError):
  """The loss became NaN or infinite; the run stopped without saving."""


class Interrupted(Exception):
  """SIGINT or SIGTERM stopped the run after saving a checkpoint."""

  def __init__(self, message, signal_number):
    super().__init__(message)
    self.signal_number = signal_number


def _log_setup(config, data, steps_per_epoch, learning_rate_fn):
  total = config.num_epochs * steps_per_epoch
  logging.info('Data: %s (train %d, test %d).', data.source,
               len(data.train['label']), len(data.test['label']))
  logging.info('JAX devices: %s', jax.devices())
  logging.info('Schedule: %s (lr at last step %.3g).',
               schedules.describe(config, steps_per_epoch),
               float(learning_rate_fn(total - 1)))


def _resume(store, state, data_rng, config, learning_rate_fn,
            steps_per_epoch):
  """The newest good checkpoint's state and data RNG, or the fresh ones."""
  restored = store.restore_latest(state, config)
  if restored is None:
    logging.info('No checkpoint in %s: starting from step 0.',
                 store.directory)
    return state, data_rng
  epoch, offset = divmod(restored.step, steps_per_epoch)
  logging.info(
      'Resuming from the checkpoint at step %d (epoch %d, step %d of %d in '
      'it), learning rate %.6g.', restored.step, epoch + 1, offset,
      steps_per_epoch, float(learning_rate_fn(restored.step)))
  return restored.state, restored.data_rng


def _first_bad_step(first_step, metrics):
  bad = np.flatnonzero(~np.isfinite(metrics['loss']))
  return None if bad.size == 0 else int(bad[0])


def _stop_on_nonfinite(store, first_step, metrics, i):
  step = first_step + i
  kept = store.steps()
  where = (f'the last good checkpoint is step {kept[-1]} in {store.directory}'
           if kept else 'no checkpoint had been saved yet')
  raise NonFiniteLoss(
      f'Loss is {metrics["loss"][i]} at step {step} (learning rate '
      f'{metrics["learning_rate"][i]:.6g}); stopped, and {where}. Try a '
      'lower config.learning_rate (see lr_range_test.py).')


class _EpochRecorder:
  """Per-group callback of train_epoch: records, NaN check, progress."""

  def __init__(self, writer, store, epoch, bar):
    self._writer, self._store, self._epoch, self._bar = (
        writer, store, epoch, bar)

  def __call__(self, first_step, metrics):
    bad = _first_bad_step(first_step, metrics)
    if bad is not None:
      self._writer.write_steps(
          self._epoch, first_step, {k: v[:bad + 1] for k, v in metrics.items()})
      self._writer.flush()
      _stop_on_nonfinite(self._store, first_step, metrics, bad)
    self._writer.write_steps(self._epoch, first_step, metrics)
    self._bar.update(len(metrics['loss']), float(metrics['loss'][-1]),
                     float(metrics['learning_rate'][-1]))


def train_and_evaluate(config: ml_collections.ConfigDict,
                       workdir: str) -> train_state.TrainState:
  """Trains for `config.num_epochs`, evaluating after every epoch.

  Resumes from the newest checkpoint in `workdir/checkpoints` if there is
  one. Writes to `workdir`: config.json, train_steps.csv (step, epoch,
  learning_rate, loss, accuracy for every step), epochs.csv, TensorBoard
  events, checkpoints and, at the end, curves.png.

  Raises:
    validation.ConfigError: a config field is out of range.
    input_pipeline.DataError: no usable data was found.
    checkpoints.ResumeError: the workdir's checkpoint has another config.
    NonFiniteLoss: the loss diverged (the last good checkpoint is kept).
    Interrupted: SIGINT/SIGTERM; a checkpoint of the current step was saved.
  """
  validation.validate_config(config)
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  (workdir / 'config.json').write_text(config.to_json_best_effort(indent=2))

  data = input_pipeline.load_datasets(config)
  train_size = len(data.train['label'])
  validation.validate_batch_size(config, train_size)
  steps_per_epoch = train_size // config.batch_size
  learning_rate_fn = create_learning_rate_fn(
      config, config.learning_rate, steps_per_epoch)
  _log_setup(config, data, steps_per_epoch, learning_rate_fn)

  init_rng, data_rng = jax.random.split(jax.random.key(config.seed))
  state = create_train_state(init_rng, config, learning_rate_fn)
  store = checkpoints.CheckpointStore(workdir, config.keep_checkpoints)
  try:
    state, data_rng = _resume(store, state, data_rng, config,
                              learning_rate_fn, steps_per_epoch)
    writer = run_logs.MetricsWriter(workdir, int(state.step),
                                    config.tensorboard)
    try:
      with progress.stop_on_signals() as stop:
        state = _train_epochs(config, state, data, data_rng, steps_per_epoch,
                              learning_rate_fn, writer, store, stop)
    finally:
      writer.close()
  finally:
    store.close()
  plots.plot_run(workdir, workdir / CURVES_PNG)
  logging.info('Wrote %s, %s and %s in %s.', STEP_LOG, EPOCH_LOG, CURVES_PNG,
               workdir)
  return state


def _train_epochs(config, state, data, data_rng, steps_per_epoch,
                  learning_rate_fn, writer, store, stop):
  """The epoch loop of train_and_evaluate, from wherever `state` is."""
  start_step = int(state.step)
  if start_step >= config.num_epochs * steps_per_epoch:
    logging.info('The run is already complete (step %d); nothing to train.',
                 start_step)
  bar = progress.use_bar(config.progress_bar)
  for epoch in range(start_step // steps_per_epoch + 1, config.num_epochs + 1):
    skip = max(start_step - (epoch - 1) * steps_per_epoch, 0)
    start = time.perf_counter()
    epoch_progress = progress.EpochProgress(
        epoch, config.num_epochs, steps_per_epoch, skip, bar)
    try:
      state, stopped = train_epoch(
          state, data.train, config.batch_size,
          jax.random.fold_in(data_rng, epoch), learning_rate_fn,
          skip_batches=skip,
          report=_EpochRecorder(writer, store, epoch, epoch_progress),
          report_every=config.log_every_steps, stop=lambda: stop)
    finally:
      epoch_progress.close()
    if stopped:
      path = store.save(state, data_rng, epoch, config)
      writer.flush()
      raise Interrupted(
          f'{stop.name} at step {int(state.step)} (epoch {epoch}); saved '
          f'{path}. Run the same command to resume.', stop.signal_number)
    test_loss, test_accuracy = eval_model(
        state, data.test, config.eval_batch_size)
    elapsed = time.perf_counter() - start
    summary = _epoch_summary(writer, epoch, state, test_loss, test_accuracy,
                             elapsed, (steps_per_epoch - skip) * config.batch_size)
    writer.write_epoch(summary)
    _log_epoch(summary)
    every = config.checkpoint_every_epochs
    if (every and epoch % every == 0) or epoch == config.num_epochs:
      store.save(state, data_rng, epoch, config)
  return state


def _epoch_summary(writer, epoch, state, test_loss, test_accuracy, elapsed,
                   images):
  return {
      'epoch': epoch,
      'step': int(state.step),
      **writer.epoch_train_metrics(),
      'test_loss': test_loss,
      'test_accuracy': test_accuracy,
      'epoch_time_s': round(elapsed, 3),
      'images_per_s': round(images / elapsed),
  }


def _log_epoch(summary):
  logging.info(
      'epoch:%3d, lr: %.4g -> %.4g, train_loss: %.4f, train_accuracy: '
      '%.2f, test_loss: %.4f, test_accuracy: %.2f, %.1fs (%d img/s)',
      summary['epoch'], summary['learning_rate_first'],
      summary['learning_rate_last'], summary['train_loss'],
      summary['train_accuracy'] * 100, summary['test_loss'],
      summary['test_accuracy'] * 100, summary['epoch_time_s'],
      summary['images_per_s'])
