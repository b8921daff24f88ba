"""Trains the CNN of models.py on MNIST under a warmup + cosine schedule.

The structure follows the Flax MNIST/ImageNet examples: `create_train_state`,
a jitted `train_step`, `train_epoch`, an evaluation on the test split after
every epoch, and `train_and_evaluate(config, workdir)`. What this project
adds is that every step records the learning rate the optimizer actually
applied, and the whole per-step record is written to `workdir` so it can be
plotted exactly.
"""

import dataclasses
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
import parallel
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
# Per-device micro-batch on CPU when config.micro_batch_size is 0 (auto);
# measured by benchmark.py (see the README's Performance section).
MICRO_BATCH_PER_CPU_DEVICE = 32


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


def _grads_and_metrics(state, batch):
  """Gradient of the batch's mean loss, the loss, and the correct count."""

  def loss_fn(params):
    logits = state.apply_fn({'params': params},
                            normalize_images(batch['image']))
    return cross_entropy_loss(logits, batch['label']), logits

  (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.params)
  correct = jnp.sum(jnp.argmax(logits, -1) == batch['label'])
  return grads, loss, correct


def micro_batch(batch, j, num_micro_batches):
  """Rows j, j + k, j + 2k, ... of the batch (k = num_micro_batches).

  Strided rather than contiguous, so that when the batch is split over
  devices every device holds an equal share of every micro-batch.
  """
  return jax.tree.map(lambda x: x[j::num_micro_batches], batch)


def _accumulated_grads(state, batch, num_micro_batches):
  """The whole batch's gradient, computed one micro-batch at a time.

  Micro-batches have equal sizes, so the mean of their mean-loss gradients
  is exactly the gradient of the batch's mean loss (up to float rounding):
  same math, same optimizer step, same schedule. Why bother: XLA:CPU's first
  conv block writes a [batch, 28, 28, 32] float tensor several times per step
  (conv, bias add, ReLU mask, avg-pool); at batch 128 that is 12.8 MB, far
  beyond the 1 MB of L2 per core, and throughput per image drops. Unrolled in
  Python (not lax.scan: see jax-ml/jax#12868), each micro-batch's
  activations stay in cache. `num_micro_batches=1` is the plain step.
  """
  grads, loss, correct = _grads_and_metrics(
      state, micro_batch(batch, 0, num_micro_batches))
  for j in range(1, num_micro_batches):
    g, l, c = _grads_and_metrics(state, micro_batch(batch, j,
                                                    num_micro_batches))
    grads = jax.tree.map(jnp.add, grads, g)
    loss, correct = loss + l, correct + c
  if num_micro_batches > 1:
    grads = jax.tree.map(lambda g: g / num_micro_batches, grads)
    loss = loss / num_micro_batches
  return grads, loss, correct


def _apply_step(state, batch, learning_rate_fn, num_micro_batches):
  grads, loss, correct = _accumulated_grads(state, batch, num_micro_batches)
  metrics = {
      'learning_rate': learning_rate_fn(state.step),
      'loss': loss,
      'accuracy': correct / batch['label'].shape[0],
  }
  return state.apply_gradients(grads=grads), metrics


@functools.partial(jax.jit,
                   static_argnames=('learning_rate_fn', 'num_micro_batches'))
def train_step(state, batch, learning_rate_fn, num_micro_batches=1):
  """One SGD step on `batch`; returns the new state and the step's metrics.

  `metrics['learning_rate']` is `learning_rate_fn(state.step)` of the incoming
  state: the rate optax's sgd applies in this very update (its schedule count
  and `state.step` both start at 0 and advance together).
  """
  return _apply_step(state, batch, learning_rate_fn, num_micro_batches)


@functools.partial(
    jax.jit, static_argnames=('learning_rate_fn', 'num_micro_batches',
                              'batch_sharding'),
    donate_argnames=('state',))
def train_step_on_device(state, train_ds, epoch_indices, learning_rate_fn,
                         num_micro_batches=1, batch_sharding=None):
  """train_step, gathering its batch from a device-resident training set.

  `epoch_indices` [steps_per_epoch, batch] is the epoch's permutation, on the
  device; the row for this step is `state.step % steps_per_epoch`, so the
  host sends nothing per step, and a run resumed mid-epoch picks up the right
  row by itself. The state's buffers are donated: XLA updates params and
  momentum in place instead of allocating new ones every step.
  """
  row = state.step % epoch_indices.shape[0]
  indices = jax.lax.dynamic_index_in_dim(epoch_indices, row, keepdims=False)
  if batch_sharding is None:
    batch = {key: value[indices] for key, value in train_ds.items()}
  else:
    batch = _local_gather(train_ds, indices, batch_sharding.mesh)
  return _apply_step(state, batch, learning_rate_fn, num_micro_batches)


def _local_gather(train_ds, indices, mesh):
  """Each device gathers its own share of the batch from its own copy.

  Written as a shard_map rather than left to the SPMD partitioner: the
  partitioner may split the (replicated) training set across devices and
  combine with collectives, which on XLA:CPU with the full 60,000 images
  deadlocks in an all-reduce rendezvous (seen with jax 0.10.2). Here no
  device talks to another until the gradient all-reduce.
  """
  spec = jax.sharding.PartitionSpec(parallel.DATA_AXIS)
  gather = jax.shard_map(
      lambda data, idx: jax.tree.map(lambda x: x[idx], data), mesh=mesh,
      in_specs=(jax.sharding.PartitionSpec(), spec), out_specs=spec)
  return gather(train_ds, indices)


@jax.jit
def eval_step(state, batch):
  """Summed loss and number of correct predictions over `batch['mask']`."""
  logits = state.apply_fn({'params': state.params},
                          normalize_images(batch['image']))
  losses = optax.softmax_cross_entropy_with_integer_labels(
      logits, batch['label'])
  correct = jnp.argmax(logits, -1) == batch['label']
  return {'loss': jnp.sum(losses, where=batch['mask']),
          'correct': jnp.sum(correct, where=batch['mask'])}


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def epoch_indices(rng, train_size, batch_size, sharding=None):
  """The epoch's example indices, [steps_per_epoch, batch_size], on device.

  A fresh permutation per epoch; the remainder that does not fill a whole
  batch is dropped, as in the Flax examples, so every epoch has exactly
  `train_size // batch_size` steps and the schedule's `steps_per_epoch`
  matches the loop. The order depends on `rng` alone, which is what lets a
  resumed run replay the rest of an epoch exactly.
  """
  steps_per_epoch = train_size // batch_size
  perm = jax.random.permutation(rng, train_size)
  indices = perm[:steps_per_epoch * batch_size].reshape(
      (steps_per_epoch, batch_size))
  if sharding is not None:
    indices = jax.lax.with_sharding_constraint(indices, sharding)
  return indices


def num_micro_batches(config, mesh) -> int:
  """How many micro-batches train_step splits each batch into.

  config.micro_batch_size: 0 (auto) means MICRO_BATCH_PER_CPU_DEVICE
  examples per device on CPU, where smaller batches run faster per image
  (see _accumulated_grads), and the whole batch on GPU/TPU, where they do not.
  """
  micro = config.get('micro_batch_size', 0)
  if micro == 0:
    if jax.default_backend() != 'cpu':
      return 1
    micro = MICRO_BATCH_PER_CPU_DEVICE * mesh.size
    if config.batch_size % micro:
      return 1
  return max(config.batch_size // micro, 1)


class InFlightLimit:
  """Caps how many computations are dispatched ahead of the device(s).

  JAX dispatches asynchronously and the host normally runs far ahead. With
  several XLA:CPU devices (--xla_force_host_platform_device_count) that
  deadlocks on a 2-core machine: queued steps of one device take every
  thread of the shared pool while waiting in the gradient all-reduce for a
  device that then gets none (seen with jax 0.10.2). Keeping at most two
  steps in flight costs nothing measurable and avoids it. One device, or
  GPUs/TPUs, keep the unlimited queue.
  """

  def __init__(self, mesh):
    self._limit = mesh.size > 1 and jax.default_backend() == 'cpu'
    self._previous = None

  def add(self, output):
    if not self._limit:
      return
    if self._previous is not None:
      self._previous.block_until_ready()
    self._previous = output


def train_epoch(state, train_ds, batch_size, rng, learning_rate_fn, *,
                report=None, report_every=100, stop=lambda: False,
                mesh=None, micro_batches=1):
  """Runs the rest of an epoch, from step `state.step % steps_per_epoch`.

  The training set lives on the device(s) (`train_ds` is copied there if it
  is a NumPy dict) and each step gathers its own batch there, so the host
  only dispatches steps. Metrics stay on the device and are fetched in
  groups of `report_every` steps (and at the end); each group goes to
  `report(first_step, {name: np.ndarray})`, which may raise to end the run.
  `stop()` is polled after every step.

  Returns:
    The new state, and whether `stop()` ended the epoch early.
  """
  mesh = mesh or parallel.create_mesh()
  if isinstance(train_ds['label'], np.ndarray):
    train_ds = parallel.put_replicated(train_ds, mesh)
  train_size = train_ds['label'].shape[0]
  indices = epoch_indices(rng, train_size, batch_size,
                          parallel.replicated(mesh))
  steps_per_epoch = indices.shape[0]
  batch_sharding = parallel.batch_sharded(mesh) if mesh.size > 1 else None
  first_pending = int(state.step)
  pending = []
  in_flight = InFlightLimit(mesh)
  for i in range(first_pending % steps_per_epoch, steps_per_epoch):
    state, metrics = train_step_on_device(
        state, train_ds, indices, learning_rate_fn, micro_batches,
        batch_sharding)
    in_flight.add(metrics['loss'])
    pending.append(metrics)
    stopped = bool(stop())
    if len(pending) == report_every or i == steps_per_epoch - 1 or stopped:
      if report is not None:
        fetched = jax.device_get(pending)
        report(first_pending, {key: np.array([m[key] for m in fetched])
                               for key in fetched[0]})
      first_pending += len(pending)
      pending = []
    if stopped:
      return state, True
  return state, False


def eval_model(state, test_ds, batch_size, mesh=None):
  """Mean loss and accuracy over the whole of `test_ds`.

  The last, ragged batch is padded to full size and the padding masked out,
  so every batch has one shape (one compilation) and splits evenly over the
  devices.
  """
  mesh = mesh or parallel.create_mesh()
  sharding = parallel.batch_sharded(mesh)
  num_examples = len(test_ds['label'])
  totals = []
  in_flight = InFlightLimit(mesh)
  for start in range(0, num_examples, batch_size):
    batch = {key: value[start:start + batch_size]
             for key, value in test_ds.items()}
    valid = len(batch['label'])
    batch['mask'] = np.ones(valid, bool)
    if valid < batch_size:
      batch = {key: np.concatenate(
          [value, np.zeros((batch_size - valid,) + value.shape[1:],
                           value.dtype)]) for key, value in batch.items()}
    totals.append(eval_step(state, parallel.put_sharded(batch, sharding)))
    in_flight.add(totals[-1]['loss'])
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


def _first_bad_step(metrics):
  """Index of the first non-finite loss in a group of steps, or None."""
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
    bad = _first_bad_step(metrics)
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
  parallel.set_cpu_devices(config)  # before anything starts JAX
  workdir = pathlib.Path(workdir)
  # Process 0 writes the records; other hosts keep theirs apart (they hold
  # the same values) and share the checkpoints, which orbax coordinates.
  logdir = (workdir if parallel.is_main_process()
            else workdir / f'process_{jax.process_index()}')
  logdir.mkdir(parents=True, exist_ok=True)
  (logdir / 'config.json').write_text(config.to_json_best_effort(indent=2))

  data = input_pipeline.load_datasets(config)
  train_size = len(data.train['label'])
  validation.validate_batch_size(config, train_size)
  steps_per_epoch = train_size // config.batch_size
  learning_rate_fn = create_learning_rate_fn(
      config, config.learning_rate, steps_per_epoch)
  _log_setup(config, data, steps_per_epoch, learning_rate_fn)

  mesh = parallel.create_mesh()
  parallel.validate_batch_for_mesh(config, mesh)
  micro_batches = num_micro_batches(config, mesh)
  logging.info('Mesh: %d device(s) on axis %r; global batch %d, %d per '
               'device, in %d micro-batch(es) per step.', mesh.size,
               parallel.DATA_AXIS, config.batch_size,
               config.batch_size // mesh.size, micro_batches)

  init_rng, data_rng = jax.random.split(jax.random.key(config.seed))
  state = parallel.put_replicated(
      create_train_state(init_rng, config, learning_rate_fn), mesh)
  store = checkpoints.CheckpointStore(workdir, config.keep_checkpoints)
  try:
    state, data_rng = _resume(store, state, data_rng, config,
                              learning_rate_fn, steps_per_epoch)
    writer = run_logs.MetricsWriter(
        logdir, int(state.step),
        config.tensorboard and parallel.is_main_process())
    placement = Placement(mesh, micro_batches,
                          parallel.put_replicated(data.train, mesh))
    try:
      with progress.stop_on_signals() as stop:
        state = _train_epochs(config, state, data, placement, data_rng,
                              steps_per_epoch, learning_rate_fn, writer, store,
                              stop)
    finally:
      writer.close()
  finally:
    store.close()
  plots.plot_run(logdir, logdir / CURVES_PNG)
  logging.info('Wrote %s, %s and %s in %s.', STEP_LOG, EPOCH_LOG, CURVES_PNG,
               logdir)
  return state


@dataclasses.dataclass(frozen=True)
class Placement:
  """Where a run's computation lives: its mesh, micro-batches, train set."""
  mesh: jax.sharding.Mesh
  micro_batches: int
  train_ds: dict  # device-resident, replicated over the mesh


def _train_epochs(config, state, data, placement, data_rng, steps_per_epoch,
                  learning_rate_fn, writer, store, stop):
  """The epoch loop of train_and_evaluate, from wherever `state` is."""
  start_step = int(state.step)
  if start_step >= config.num_epochs * steps_per_epoch:
    logging.info('The run is already complete (step %d); nothing to train.',
                 start_step)
  bar = progress.use_bar(config.progress_bar)
  run_start = time.perf_counter()
  for epoch in range(start_step // steps_per_epoch + 1, config.num_epochs + 1):
    skip = max(start_step - (epoch - 1) * steps_per_epoch, 0)
    start = time.perf_counter()
    epoch_progress = progress.EpochProgress(
        epoch, config.num_epochs, steps_per_epoch, skip, bar)
    try:
      state, stopped = train_epoch(
          state, placement.train_ds, config.batch_size,
          jax.random.fold_in(data_rng, epoch), learning_rate_fn,
          report=_EpochRecorder(writer, store, epoch, epoch_progress),
          report_every=config.log_every_steps, stop=lambda: stop,
          mesh=placement.mesh, micro_batches=placement.micro_batches)
    finally:
      epoch_progress.close()
    if stopped:
      path = store.save(state, data_rng, epoch, config)
      writer.flush()
      raise Interrupted(
          f'{stop.name} at step {int(state.step)} (epoch {epoch}); saved '
          f'{path}. Run the same command to resume.', stop.signal_number)
    test_loss, test_accuracy = eval_model(
        state, data.test, config.eval_batch_size, placement.mesh)
    elapsed = time.perf_counter() - start
    summary = _epoch_summary(writer, epoch, state, test_loss, test_accuracy,
                             elapsed,
                             (steps_per_epoch - skip) * config.batch_size)
    summary['elapsed_s'] = round(time.perf_counter() - run_start, 3)
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
