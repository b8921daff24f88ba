"""Trains the CNN of models.py on MNIST under a warmup + cosine schedule.

The structure follows the Flax MNIST/ImageNet examples: `create_train_state`,
a jitted `train_step`, `train_epoch`, an evaluation on the test split after
every epoch, and `train_and_evaluate(config, workdir)`. What this project
adds is that every step records the learning rate the optimizer actually
applied, and the whole per-step record is written to `workdir` so it can be
plotted exactly.
"""

import csv
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

import input_pipeline
import models
import plots
import schedules
import validation

# Re-exported: the seed's public API lives here in the Flax guide.
create_learning_rate_fn = schedules.create_learning_rate_fn

STEP_LOG = plots.STEP_LOG
EPOCH_LOG = plots.EPOCH_LOG
CURVES_PNG = 'curves.png'
STEP_FIELDS = ('step', 'epoch', 'learning_rate', 'loss', 'accuracy')
EPOCH_FIELDS = ('epoch', 'step', 'learning_rate_first', 'learning_rate_last',
                'train_loss', 'train_accuracy', 'test_loss', 'test_accuracy',
                'epoch_time_s', 'images_per_s')


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
  return train_state.TrainState.create(
      apply_fn=cnn.apply, params=params, tx=tx)


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


def train_epoch(state, train_ds, batch_size, rng, learning_rate_fn):
  """One pass over a fresh permutation of `train_ds`.

  The remainder that does not fill a whole batch is dropped, as in the Flax
  examples, so every epoch has exactly `len // batch_size` steps and the
  schedule's `steps_per_epoch` matches the loop.

  Returns:
    The new state and per-step metrics: {name: np.ndarray [steps]}.
  """
  train_size = len(train_ds['label'])
  steps_per_epoch = train_size // batch_size
  perms = jax.random.permutation(rng, train_size)
  perms = np.asarray(perms[:steps_per_epoch * batch_size])
  perms = perms.reshape((steps_per_epoch, batch_size))
  step_metrics = []
  for perm in perms:
    batch = {key: value[perm] for key, value in train_ds.items()}
    state, metrics = train_step(state, batch, learning_rate_fn)
    step_metrics.append(metrics)
  step_metrics = jax.device_get(step_metrics)  # one host sync per epoch
  return state, {key: np.array([m[key] for m in step_metrics])
                 for key in step_metrics[0]}


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


class MetricsWriter:
  """Writes the per-step and per-epoch records as CSV files in `workdir`.

  Values are written with `repr`, so a learning rate read back is exactly the
  float32 the optimizer used.
  """

  def __init__(self, workdir: pathlib.Path):
    self._step_file = open(workdir / STEP_LOG, 'w', newline='')
    self._epoch_file = open(workdir / EPOCH_LOG, 'w', newline='')
    self._steps = csv.writer(self._step_file)
    self._epochs = csv.writer(self._epoch_file)
    self._steps.writerow(STEP_FIELDS)
    self._epochs.writerow(EPOCH_FIELDS)

  def write_steps(self, epoch, first_step, step_metrics):
    for i in range(len(step_metrics['loss'])):
      self._steps.writerow(
          [first_step + i, epoch] +
          [repr(float(step_metrics[key][i])) for key in STEP_FIELDS[2:]])
    self._step_file.flush()

  def write_epoch(self, summary: dict):
    self._epochs.writerow([summary[key] for key in EPOCH_FIELDS])
    self._epoch_file.flush()

  def close(self):
    self._step_file.close()
    self._epoch_file.close()


def _log_setup(config, data, steps_per_epoch, learning_rate_fn):
  total = config.num_epochs * steps_per_epoch
  logging.info('Data: %s (train %d, test %d).', data.source,
               len(data.train['label']), len(data.test['label']))
  logging.info('JAX devices: %s', jax.devices())
  logging.info('Schedule: %s (lr at last step %.3g).',
               schedules.describe(config, steps_per_epoch),
               float(learning_rate_fn(total - 1)))


def train_and_evaluate(config: ml_collections.ConfigDict,
                       workdir: str) -> train_state.TrainState:
  """Trains for `config.num_epochs`, evaluating after every epoch.

  Writes to `workdir`: config.json, train_steps.csv (step, epoch,
  learning_rate, loss, accuracy for every step), epochs.csv and curves.png.

  Raises:
    validation.ConfigError: a config field is out of range.
    input_pipeline.DataError: no usable data was found.
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
  writer = MetricsWriter(workdir)
  try:
    for epoch in range(1, config.num_epochs + 1):
      first_step = int(state.step)
      start = time.perf_counter()
      state, step_metrics = train_epoch(
          state, data.train, config.batch_size,
          jax.random.fold_in(data_rng, epoch), learning_rate_fn)
      test_loss, test_accuracy = eval_model(
          state, data.test, config.eval_batch_size)
      elapsed = time.perf_counter() - start
      summary = {
          'epoch': epoch,
          'step': int(state.step),
          'learning_rate_first': float(step_metrics['learning_rate'][0]),
          'learning_rate_last': float(step_metrics['learning_rate'][-1]),
          'train_loss': float(step_metrics['loss'].mean()),
          'train_accuracy': float(step_metrics['accuracy'].mean()),
          'test_loss': test_loss,
          'test_accuracy': test_accuracy,
          'epoch_time_s': round(elapsed, 3),
          'images_per_s': round(steps_per_epoch * config.batch_size / elapsed),
      }
      writer.write_steps(epoch, first_step, step_metrics)
      writer.write_epoch(summary)
      logging.info(
          'epoch:%3d, lr: %.4g -> %.4g, train_loss: %.4f, train_accuracy: '
          '%.2f, test_loss: %.4f, test_accuracy: %.2f, %.1fs (%d img/s)',
          epoch, summary['learning_rate_first'], summary['learning_rate_last'],
          summary['train_loss'], summary['train_accuracy'] * 100, test_loss,
          test_accuracy * 100, elapsed, summary['images_per_s'])
  finally:
    writer.close()
  plots.plot_run(workdir, workdir / CURVES_PNG)
  logging.info('Wrote %s, %s and %s in %s.', STEP_LOG, EPOCH_LOG, CURVES_PNG,
               workdir)
  return state
