"""Trains a task of tasks.py (the CNN on MNIST by default, or the byte-level
transformer on text) under the configured schedule.

The structure follows the Flax MNIST/ImageNet examples: `create_train_state`,
a jitted `train_step`, `train_epoch`, an evaluation on the test split after
every epoch, and `train_and_evaluate(config, workdir)`. What this project
adds is that every step records the learning rate the optimizer actually
applied, and the whole per-step record is written to `workdir` so it can be
plotted exactly. The machinery around the loop (devices, checkpoints,
records, signals) lives in machinery/.
"""

import contextlib
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

import input_pipeline
from machinery import bookkeeping
from machinery import errors
from machinery import files
from machinery import parallel
from machinery import plots
from machinery import progress
from machinery import run_logs
from machinery import signals
from machinery import validation
from machinery import workdir as workdir_lib
import models
import optimizers
import schedules
import tasks
import text_pipeline

# Re-exported: the seed's public API lives here in the Flax guide.
create_learning_rate_fn = schedules.create_learning_rate_fn


def compute_metrics(logits, labels, mask=None):
  """Summed cross-entropy and number of correct predictions over `mask`.

  The one metrics function of the train and eval steps: training divides
  the sum by the number of targets (the mean loss it differentiates: per
  image, or per next byte); evaluation adds the sums of all batches,
  padding masked out. `mask` [batch] covers every target of an example.
  """
  losses = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  if mask is not None:
    mask = mask.reshape(mask.shape + (1,) * (labels.ndim - mask.ndim))
  correct = jnp.argmax(logits, -1) == labels
  return {'loss': jnp.sum(losses, where=mask),
          'correct': jnp.sum(correct, where=mask)}


def cross_entropy_loss(logits, labels):
  """Mean cross-entropy of a batch."""
  return compute_metrics(logits, labels)['loss'] / labels.size


def create_train_state(rng, config, learning_rate_fn, tx=None):
  """The task's model (tasks.py), its parameters and the config's
  optimizer (optimizers.py).

  With the default `optimizer='sgd'` that is
  `optax.sgd(learning_rate_fn, momentum)`, as in the Flax guide. `tx`
  replaces it where the caller sets the rate itself (studies/stacked.py).
  """
  task = tasks.task_of(config)
  model = task.create_model(config)
  params = model.init(rng, task.example_input(config))['params']
  if tx is None:
    tx = optimizers.create_optimizer(config, learning_rate_fn)
  state = train_state.TrainState.create(
      apply_fn=model.apply, params=params, tx=tx)
  # An int32 array, not a Python int: the same type a checkpoint restores.
  return state.replace(step=jnp.zeros((), jnp.int32))


def _grads_and_metrics(state, batch):
  """Gradient of the batch's mean loss, the loss, and the correct count."""
  inputs, targets = tasks.inputs_and_targets(batch)

  def loss_fn(params):
    logits = state.apply_fn({'params': params}, inputs)
    metrics = compute_metrics(logits, targets)
    return metrics['loss'] / targets.size, metrics['correct']

  (loss, correct), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.params)
  return grads, loss, correct


def micro_batch(batch, j, num_micro_batches):
  """Rows j, j + k, j + 2k, ... of the batch (k = num_micro_batches).

  Strided rather than contiguous, so that when the batch is split over
  devices every device holds an equal share of every micro-batch.
  """
  return jax.tree.map(lambda x: x[j::num_micro_batches], batch)


def _accumulated_grads(state, batch, num_micro_batches,
                       grads_and_metrics=_grads_and_metrics):
  """The whole batch's gradient, computed one micro-batch at a time.

  Micro-batches have equal sizes, so the mean of their mean-loss gradients
  is exactly the gradient of the batch's mean loss (up to float rounding):
  same math, same optimizer step, same schedule. Why bother: XLA:CPU's first
  conv block writes a [batch, 28, 28, 32] float tensor several times per step
  (conv, bias add, ReLU mask, avg-pool); at batch 128 that is 12.8 MB, far
  beyond the 1 MB of L2 per core, and throughput per image drops. Unrolled in
  Python (not lax.scan: see jax-ml/jax#12868), each micro-batch's
  activations stay in cache. `num_micro_batches=1` is the plain step.
  `grads_and_metrics(state, micro_batch)` computes each micro-batch's part
  (experiments pass variants of _grads_and_metrics).
  """
  grads, loss, correct = grads_and_metrics(
      state, micro_batch(batch, 0, num_micro_batches))
  for j in range(1, num_micro_batches):
    g, l, c = grads_and_metrics(state, micro_batch(batch, j,
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
      'accuracy': correct / tasks.inputs_and_targets(batch)[1].size,
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


def _step_on_device(state, train_ds, epoch_indices, learning_rate_fn,
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


train_step_on_device = functools.partial(
    jax.jit, static_argnames=('learning_rate_fn', 'num_micro_batches',
                              'batch_sharding'),
    donate_argnames=('state',))(_step_on_device)


@functools.partial(
    jax.jit, static_argnames=('learning_rate_fn', 'num_micro_batches',
                              'batch_sharding', 'num_steps'),
    donate_argnames=('state',))
def train_steps_on_device(state, train_ds, epoch_indices, learning_rate_fn,
                          num_micro_batches=1, batch_sharding=None,
                          num_steps=1):
  """`num_steps` consecutive steps in one call; metrics stacked [num_steps].

  At small batches the cost around a step (dispatch, the host's wait on the
  in-flight limit) rivals its math; one call for several steps pays it once.
  Unrolled in Python, not lax.scan (see jax-ml/jax#12868): every step is
  the same computation as train_step_on_device's, each with its own rate.
  """
  history = []
  for _ in range(num_steps):
    state, metrics = _step_on_device(state, train_ds, epoch_indices,
                                     learning_rate_fn, num_micro_batches,
                                     batch_sharding)
    history.append(metrics)
  return state, jax.tree.map(lambda *values: jnp.stack(values), *history)


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
  inputs, targets = tasks.inputs_and_targets(batch)
  logits = state.apply_fn({'params': state.params}, inputs)
  return compute_metrics(logits, targets, batch['mask'])


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4))
def epoch_indices(rng, train_size, batch_size, sharding=None,
                  steps_per_epoch=None):
  """The epoch's example indices, [steps_per_epoch, batch_size], on device.

  A fresh permutation per epoch, cut to `steps_per_epoch` whole batches
  (schedules.epoch_steps): by default one pass, the remainder that does not
  fill a whole batch dropped as in the Flax examples, so the schedule's
  `steps_per_epoch` matches the loop. The order depends on `rng` alone,
  which is what lets a resumed run replay the rest of an epoch exactly.
  """
  steps_per_epoch = steps_per_epoch or train_size // batch_size
  perm = jax.random.permutation(rng, train_size)
  indices = perm[:steps_per_epoch * batch_size].reshape(
      (steps_per_epoch, batch_size))
  if sharding is not None:
    indices = jax.lax.with_sharding_constraint(indices, sharding)
  return indices


def train_epoch(state, train_ds, batch_size, rng, learning_rate_fn, *,
                report=None, report_every=100, stop=lambda: False,
                mesh=None, micro_batches=1, steps_per_call=1,
                until_step=None, steps_per_epoch=None):
  """Runs the rest of an epoch, from step `state.step % steps_per_epoch`
  (or up to the global step `until_step`, if that comes first).

  The training set lives on the device(s) (`train_ds` is copied there if it
  is a NumPy dict) and each step gathers its own batch there, so the host
  only dispatches steps. Metrics stay on the device and are fetched in
  groups of about `report_every` steps (and at the end); each group goes to
  `report(first_step, {name: np.ndarray})`, which may raise to end the run.
  `stop()` is polled after every call.

  With `steps_per_call` k > 1, the steps at epoch positions k*j ... k*j+k-1
  run as one call (train_steps_on_device) and the rest one by one. The
  grouping depends only on the position in the epoch, so a run stopped at a
  call boundary and resumed groups its steps exactly as an uninterrupted run.
  `steps_per_epoch` (None: one pass) is the plan's (schedules.epoch_steps).

  Returns:
    The new state, and whether `stop()` ended the epoch early.
  """
  mesh = mesh or parallel.create_mesh()
  if isinstance(next(iter(train_ds.values())), np.ndarray):
    train_ds = parallel.put_replicated(train_ds, mesh)
  indices = epoch_indices(rng, tasks.num_examples(train_ds), batch_size,
                          parallel.replicated(mesh), steps_per_epoch)
  steps_per_epoch = indices.shape[0]
  batch_sharding = parallel.batch_sharded(mesh) if mesh.size > 1 else None
  first_pending = int(state.step)
  pending, pending_steps = [], 0
  in_flight = parallel.InFlightLimit(mesh)
  i = first_pending % steps_per_epoch
  end = epoch_end(first_pending, steps_per_epoch, until_step)
  while i < end:
    k = steps_per_call
    if k > 1 and i % k == 0 and i + k <= end:
      state, metrics = train_steps_on_device(
          state, train_ds, indices, learning_rate_fn, micro_batches,
          batch_sharding, num_steps=k)
    else:
      k = 1
      state, metrics = train_step_on_device(
          state, train_ds, indices, learning_rate_fn, micro_batches,
          batch_sharding)
    in_flight.add(metrics['loss'])
    pending.append(metrics)
    pending_steps += k
    i += k
    stopped = bool(stop())
    if pending_steps >= report_every or i == end or stopped:
      if report is not None:
        fetched = jax.device_get(pending)
        report(first_pending, {key: np.concatenate(
            [np.atleast_1d(m[key]) for m in fetched]) for key in fetched[0]})
      first_pending += pending_steps
      pending, pending_steps = [], 0
    if stopped:
      return state, True
  return state, False


def epoch_end(step, steps_per_epoch, until_step=None) -> int:
  """The position in the epoch of `step` where training stops: the epoch's
  end, or `until_step` if that lies inside the epoch."""
  if until_step is None:
    return steps_per_epoch
  return min(steps_per_epoch,
             until_step - step // steps_per_epoch * steps_per_epoch)


def eval_batches(test_ds, batch_size):
  """The split in batches of one shape, the last padded, with a 'mask'."""
  num_examples = tasks.num_examples(test_ds)
  for start in range(0, num_examples, batch_size):
    batch = {key: value[start:start + batch_size]
             for key, value in test_ds.items()}
    valid = tasks.num_examples(batch)
    batch['mask'] = np.ones(valid, bool)
    if valid < batch_size:
      batch = {key: np.concatenate(
          [value, np.zeros((batch_size - valid,) + value.shape[1:],
                           value.dtype)]) for key, value in batch.items()}
    yield batch


def evaluation_split(test_ds: dict, eval_examples: int) -> dict:
  """The examples every evaluation uses: all of `test_ds` (0), or
  `eval_examples` of them evenly spaced over it (i * N // n), so each part
  of the split (each held-out document of a text) has its share. Fixed
  for the whole run and for every run on the same data: comparisons stay
  paired."""
  size = tasks.num_examples(test_ds)
  if not eval_examples or eval_examples >= size:
    return test_ds
  chosen = np.arange(eval_examples, dtype=np.int64) * size // eval_examples
  return {key: value[chosen] for key, value in test_ds.items()}


def eval_model(state, test_ds, batch_size, mesh=None):
  """Mean loss and accuracy over the whole of `test_ds` (per target: an
  image's label, or a window's every next byte).

  The last, ragged batch is padded to full size and the padding masked out,
  so every batch has one shape (one compilation) and splits evenly over the
  devices. A batch larger than the split shrinks to the split (rounded up
  to whole devices): the result is the same, without padding to the size
  asked for.
  """
  mesh = mesh or parallel.create_mesh()
  sharding = parallel.batch_sharded(mesh)
  num_examples = tasks.num_examples(test_ds)
  batch_size = min(batch_size, -(-num_examples // mesh.size) * mesh.size)
  totals = []
  in_flight = parallel.InFlightLimit(mesh)
  for batch in eval_batches(test_ds, batch_size):
    totals.append(eval_step(state, parallel.put_sharded(batch, sharding)))
    in_flight.add(totals[-1]['loss'])
  totals = jax.device_get(totals)
  num_targets = tasks.num_targets(test_ds)
  loss = sum(float(t['loss']) for t in totals) / num_targets
  accuracy = sum(int(t['correct']) for t in totals) / num_targets
  return loss, accuracy


@dataclasses.dataclass(frozen=True)
class Setup:
  """Everything a run starts from, made by `setup` in one order."""
  config: ml_collections.ConfigDict
  data: input_pipeline.Datasets | text_pipeline.TextDatasets
  plan: schedules.SchedulePlan  # steps per epoch and the schedule
  mesh: jax.sharding.Mesh
  micro_batches: int
  steps_per_call: int
  state: train_state.TrainState  # fresh, replicated over the mesh
  data_rng: jax.Array            # the run's data-order key

  @property
  def steps_per_epoch(self):
    return self.plan.steps_per_epoch

  @property
  def learning_rate_fn(self):
    return self.plan.learning_rate_fn


def setup(config: ml_collections.ConfigDict, data=None) -> Setup:
  """validate -> load data -> steps per epoch and schedule -> mesh -> state.

  The one way a run starts, shared by main.py, tools/benchmark.py and
  tools/lr_range.py (tools/plot_schedule.py uses its first stages). Every
  check runs before the work it protects: the config before any data is
  loaded, the batch against the data and the devices before anything is
  compiled. `data`: the task's datasets already in memory (generated ones,
  for tools/profile_step.py), instead of the config's.
  """
  validation.validate_config(config)
  parallel.set_cpu_devices(config)  # before anything starts JAX's backends
  if data is None:
    data = tasks.task_of(config).load_data(config)
  mesh = parallel.create_mesh(parallel.run_devices(config))
  train_size = tasks.num_examples(data.train)
  validation.validate_placement(config, train_size, mesh)
  plan = schedules.plan(config, train_size)
  init_rng, data_rng = jax.random.split(jax.random.key(config.seed))
  state = parallel.put_replicated(
      create_train_state(init_rng, config, plan.learning_rate_fn), mesh)
  return Setup(config, data, plan, mesh,
               parallel.num_micro_batches(config, mesh),
               parallel.steps_per_call(config), state, data_rng)


def _log_setup(run: Setup):
  logging.info('Data: %s (train %d, test %d; canonical order in %.2f s; '
               'fingerprint %s).', run.data.source,
               tasks.num_examples(run.data.train),
               tasks.num_examples(run.data.test), run.data.order_seconds,
               run.data.fingerprint)
  if getattr(run.data, 'ngram_bits', None):
    logging.info('Text: byte windows of %d + 1; validation split: unigram '
                 '%.2f, bigram %.2f bits per byte (counts from the training '
                 'split): the model must beat these.',
                 run.config.context_length, *run.data.ngram_bits)
  logging.info('Model: %s, %s parameters.', run.config.task,
               f'{models.parameter_count(run.state.params):,}')
  logging.info('JAX devices: %s', jax.devices())
  logging.info('Schedule: %s (lr at last step %.3g).', run.plan.description,
               float(run.learning_rate_fn(run.plan.total_steps - 1)))
  logging.info('Mesh: %d device(s) on axis %r; global batch %d, %d per '
               'device, in %d micro-batch(es) per step; %d step(s) per call.',
               run.mesh.size, parallel.DATA_AXIS, run.config.batch_size,
               run.config.batch_size // run.mesh.size, run.micro_batches,
               run.steps_per_call)


def run_environment(data, mesh_size, micro_batches, steps_per_call,
                    stacked_members=None, stacked_mesh_devices=None) -> dict:
  """What else shapes a run's numbers, for its config.json.

  Same config, data fingerprint, versions, backend, device count,
  micro-batches and steps per call: bitwise the same run. Another device
  count, micro-batch size, backend or JAX version sums the same gradients
  in another order: the last digits differ (see the README). A member of a
  stacked study group also records the group's size and the devices its
  members were split over (each member's own step runs on one device).
  """
  environment = {
      'data_fingerprint': data.fingerprint,
      'data_source': data.source,
      'jax_version': jax.__version__,
      'jaxlib_version': jax.lib.__version__,
      'backend': jax.default_backend(),
      'device_kind': jax.devices()[0].device_kind,
      'devices': mesh_size,
      'processes': jax.process_count(),
      'micro_batches': micro_batches,
      'steps_per_call': steps_per_call,
  }
  if stacked_members is not None:
    environment['stacked_members'] = stacked_members
    environment['stacked_mesh_devices'] = stacked_mesh_devices
  return environment


class SingleRun:
  """One run as the epoch driver trains it: a group of one member.

  The driver (`train_group`) asks every group the same things: its fresh
  states, to train the rest of an epoch, to evaluate, and each member's
  state; studies/stacked.py's group answers them for several members at
  once.
  """

  def __init__(self, run: Setup):
    self.run = run
    self.config = run.config
    self.size = 1
    self.steps_per_epoch = run.steps_per_epoch
    self.total_steps = run.plan.total_steps
    self.learning_rate_fns = [run.learning_rate_fn]
    self.environment = run_environment(run.data, run.mesh.size,
                                       run.micro_batches, run.steps_per_call)
    self.state, self.data_rngs = run.state, [run.data_rng]
    self._train_ds = None
    self._test_ds = evaluation_split(run.data.test, self.config.eval_examples)

  def fresh(self):
    return [self.run.state], [self.run.data_rng]

  def start(self, states, data_rngs):
    self.state, self.data_rngs = states[0], data_rngs
    self._train_ds = parallel.put_replicated(self.run.data.train,
                                             self.run.mesh)

  @property
  def step(self) -> int:
    return int(self.state.step)

  def train_epoch(self, epoch, report, stop, until_step=None) -> bool:
    """The rest of `epoch` (up to `until_step`); report(first_step,
    [metrics]) per group."""
    run = self.run
    self.state, stopped = train_epoch(
        self.state, self._train_ds, self.config.batch_size,
        jax.random.fold_in(self.data_rngs[0], epoch), run.learning_rate_fn,
        report=lambda first, metrics: report(first, [metrics]),
        report_every=self.config.log_every_steps, stop=stop, mesh=run.mesh,
        micro_batches=run.micro_batches, steps_per_call=run.steps_per_call,
        until_step=until_step, steps_per_epoch=self.steps_per_epoch)
    return stopped

  def evaluate(self):
    return [eval_model(_for_eval(self.config, self.state), self._test_ds,
                       self.config.eval_batch_size, self.run.mesh)]

  def member_state(self, i):
    del i
    return self.state


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       until_step=None) -> train_state.TrainState:
  """Trains for `config.num_epochs`, evaluating after every epoch.

  With `until_step`, pauses at that global step with a checkpoint there
  (see train_group): the same call without it finishes the very same run.

  Resumes from the newest checkpoint in `workdir/checkpoints` if there is
  one. Writes to `workdir`: config.json, train_steps.csv (step, epoch,
  learning_rate, loss, accuracy for every step), epochs.csv, TensorBoard
  events, checkpoints and, at the end, curves.png.

  Raises:
    errors.ConfigError: a config field is out of range.
    errors.DataError: no usable data was found.
    errors.ResumeError: the workdir's checkpoint or records have another
      config.
    errors.NonFiniteLoss: the loss diverged (the last good checkpoint is kept).
    errors.Interrupted: SIGINT/SIGTERM/SIGHUP; a checkpoint of the current
      step was saved.
  """
  workdir_lib.check_usable(workdir)
  run = setup(config)  # fails before the workdir is touched
  workdir = pathlib.Path(workdir)
  # Another process's records folder (multi-host) is the run's own, never
  # a link to somewhere else.
  logdir = files.check_no_links_below(workdir,
                                      parallel.process_logdir(workdir))
  _log_setup(run)
  group = SingleRun(run)
  book = bookkeeping.Book(workdir, config, run.data.fingerprint, logdir)
  train_group(group, [book], tensorboard=(config.tensorboard and
                                          parallel.is_main_process()),
              until_step=until_step)
  if book.diverged:
    raise book.diverged
  plots.plot_run(logdir, logdir / run_logs.CURVES_PNG)
  logging.info('Wrote %s, %s and %s in %s.', run_logs.STEP_LOG,
               run_logs.EPOCH_LOG, run_logs.CURVES_PNG, logdir)
  return group.state


def train_group(group, books, tensorboard=None, until_step=None) -> None:
  """The one epoch driver: a single run, or a stacked group of members.

  Holds every member's workdir lock, refuses records of another run,
  resumes every member from one common step, records every step, stops a
  member whose loss or parameters stop being finite (its `Book.diverged`;
  the others go on), evaluates, checkpoints, and on SIGINT/SIGTERM/SIGHUP
  saves every member at the current step and raises errors.Interrupted.
  A single run is the group of one (`SingleRun`), so runs and study
  members behave the same by construction.

  With `until_step`, training pauses at that global step (mid-epoch too):
  every member is saved there and the function returns; the same call
  without it goes on exactly as if it had never paused (tools/budgets.py's
  trunks).
  """
  with contextlib.ExitStack() as stack:
    for book in books:
      stack.enter_context(workdir_lib.locked(book.logdir))
    for book in books:
      book.check_records()
    for book in books:
      stack.callback(book.close)
      book.open_store()
    states, data_rngs = bookkeeping.resume_group(
        books, *group.fresh(), group.learning_rate_fns,
        group.steps_per_epoch, group.total_steps)
    group.start(states, data_rngs)
    # Only now: a run refused by the resume check changes nothing.
    for book in books:
      book.start_records(group.step, group.environment,
                         book.config.tensorboard if tensorboard is None
                         else tensorboard)
    with signals.stop_on_signals() as stop:
      _train_epochs(group, books, stop, until_step)


class _AllDiverged(Exception):
  """Every member of the group has diverged: nothing left to train."""


def _live(books):
  return [(i, book) for i, book in enumerate(books) if not book.diverged]


def _recorder(books, epoch, epoch_progress):
  """train_epoch's report: every live member's rows, NaN checks, progress."""

  def report(first_step, per_member):
    for i, book in _live(books):
      bookkeeping.record_steps(book, epoch, first_step, per_member[i])
    if not _live(books):
      raise _AllDiverged
    metrics = per_member[_live(books)[0][0]]
    epoch_progress.update(len(metrics['loss']), float(metrics['loss'][-1]),
                          float(metrics['learning_rate'][-1]))
  return report


def _train_epochs(group, books, stop, until_step=None):
  """The epoch loop of train_group, from wherever the group's step is."""
  config, steps_per_epoch = group.config, group.steps_per_epoch
  start_step = group.step
  if start_step >= group.total_steps:
    logging.info('The run is already complete (step %d); nothing to train.',
                 start_step)
  if until_step is not None and start_step >= until_step:
    return
  bar = progress.use_bar(config.progress_bar)
  run_start = time.perf_counter()
  for epoch in range(start_step // steps_per_epoch + 1, config.num_epochs + 1):
    skip = max(start_step - (epoch - 1) * steps_per_epoch, 0)
    start = time.perf_counter()
    epoch_progress = progress.EpochProgress(
        epoch, config.num_epochs, steps_per_epoch, skip, bar)
    try:
      stopped = group.train_epoch(epoch, _recorder(books, epoch,
                                                   epoch_progress),
                                  lambda: stop, until_step)
    except _AllDiverged:
      return
    finally:
      epoch_progress.close()
    paused = until_step is not None and group.step >= until_step
    if paused and not stopped and group.step < epoch * steps_per_epoch:
      _save_live(group, books, epoch)  # the pause lies inside the epoch
      return
    # A stop after the epoch's last step still evaluates and records the
    # epoch: its checkpoint lies on the boundary, and a resumed run would
    # never come back to it.
    if stopped and group.step < epoch * steps_per_epoch:
      _save_and_stop(group, books, epoch, stop)
      return  # every member had diverged: nothing was saved
    results = group.evaluate()
    for i, book in _live(books):
      problem = bookkeeping.nonfinite_state(
          book.store, group.member_state(i), results[i][0])
      if problem:
        book.mark_diverged(problem)
    if not _live(books):
      return
    elapsed = time.perf_counter() - start
    for i, book in _live(books):
      summary = bookkeeping.epoch_summary(
          book.writer, epoch, group.step, *results[i], elapsed,
          (steps_per_epoch - skip) * config.batch_size)
      summary['elapsed_s'] = round(time.perf_counter() - run_start, 3)
      book.writer.write_epoch(summary)
      if group.size == 1:
        bookkeeping.log_epoch(summary, config)
    if group.size > 1:
      logging.info('Stacked epoch %d/%d: test accuracy %s, %.1fs.', epoch,
                   config.num_epochs, ' '.join(
                       f'{100 * a:.2f}' if not books[i].diverged else 'nan'
                       for i, (_, a) in enumerate(results)), elapsed)
    if stopped:
      _save_and_stop(group, books, epoch, stop)
      return
    every = config.checkpoint_every_epochs
    if (every and epoch % every == 0) or epoch == config.num_epochs or paused:
      for i, book in _live(books):
        book.store.save(group.member_state(i), group.data_rngs[i], epoch,
                        book.config)
    if paused:
      return


def _save_live(group, books, epoch) -> list:
  """Saves every member whose state is finite at the current step; marks
  the others diverged. Returns the checkpoints' paths."""
  paths = []
  for i, book in _live(books):
    problem = bookkeeping.nonfinite_state(book.store, group.member_state(i))
    if problem:
      book.mark_diverged(problem)
      continue
    paths.append(book.store.save(group.member_state(i), group.data_rngs[i],
                                 epoch, book.config))
    book.writer.flush()
  return paths


def _save_and_stop(group, books, epoch, stop):
  """Saves every member at the current step (if finite) and stops."""
  paths = _save_live(group, books, epoch)
  if not paths:
    return  # every member diverged: the caller reports it
  saved = (paths[0] if len(paths) == 1
           else f'{len(paths)} checkpoints (e.g. {paths[0]})')
  raise errors.Interrupted(
      f'{stop.name} at step {group.step} (epoch {epoch}); saved '
      f'{saved}. Run the same command to resume.', stop.signal_number)


def _for_eval(config, state):
  """`state` with the parameters its optimizer evaluates (optimizers.py)."""
  return state.replace(params=optimizers.eval_params(config, state))
