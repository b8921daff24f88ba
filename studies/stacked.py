"""Stacked training: members of one shape as one program, jax.vmap over their
states, data orders and rates, split over every device.
"""

import functools
import time

from absl import logging
import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np
import optax

import tasks
from machinery import bookkeeping
from machinery import checkpoints
from machinery import errors
from machinery import parallel
from machinery import validation
import schedules
import optimizers
import train

from studies.grid import Member
from studies.planning import MEMBER_AXIS, stackable, STACKABLE_OPTIMIZERS


# What a stacked group's optimizer is, per config.optimizer: optax's own
# transformation under optax.inject_hyperparams, so that the rate of every
# step is state the step sets (from each member's own schedule), and the
# fields members of one group may differ in are state too, set per member.
INJECTED = {
    'sgd': (lambda config: optax.inject_hyperparams(
        optax.sgd, static_args=('nesterov',))(
            learning_rate=0.0, momentum=config.momentum,
            nesterov=config.nesterov), ('momentum',)),
    'adamw': (lambda config: optax.inject_hyperparams(
        optax.adamw, static_args=('mask',))(
            learning_rate=0.0, b1=config.b1, b2=config.b2, eps=config.eps,
            weight_decay=config.weight_decay, mask=optimizers.decay_mask),
              ('b1', 'b2', 'eps', 'weight_decay')),
}
assert set(INJECTED) == set(STACKABLE_OPTIMIZERS)


def injected_optimizer(config) -> optax.GradientTransformation:
  """The config's optimizer, clipping included (as
  optimizers.create_optimizer), with its rate as state a step can set."""
  tx = INJECTED[config.optimizer][0](config)
  if config.grad_clip_norm:
    return optax.chain(optax.clip_by_global_norm(config.grad_clip_norm), tx)
  return tx


def _with_hyperparams(opt_state, **values):
  """`opt_state` with `values` set in its injected hyperparameters (the
  last state of a clipping chain)."""
  if not hasattr(opt_state, 'hyperparams'):
    return (*opt_state[:-1], _with_hyperparams(opt_state[-1], **values))
  return opt_state._replace(hyperparams={**opt_state.hyperparams, **values})


def _with_rate(state, rate):
  return state.replace(opt_state=_with_hyperparams(state.opt_state,
                                                   learning_rate=rate))


def _member_step(state, train_ds, indices, rates):
  """One member's step: train's own device step, its rate set from `rates`.

  The rate of step t is injected into the optimizer state before the step,
  and the same table is the learning_rate_fn the step logs from, so the
  logged rate is the applied one, as in a single run.
  """
  rate_at = lambda step: rates[step]
  return train._step_on_device(  # pylint: disable=protected-access
      _with_rate(state, rate_at(state.step)), train_ds, indices, rate_at)


def _stacked_step(states, train_ds, indices, rates):
  """Every member's step at once: vmap over states, data orders and rates."""
  return jax.vmap(_member_step, in_axes=(0, None, 0, 0))(
      states, train_ds, indices, rates)


def _stacked_eval_step(states, batch):
  return jax.vmap(train.eval_step, in_axes=(0, None))(states, batch)


def _take(states, i):
  return jax.tree.map(lambda x: x[i], states)


@functools.lru_cache(maxsize=None)
def compiled_for(mesh: jax.sharding.Mesh):
  """(step, eval_step, take) jitted for a members mesh.

  Each device runs the 1-device stacked program on its own members
  (`jax.shard_map`: left to itself, XLA's partitioner computed every
  member's batched convolutions on every device, ~4.6x slower on 4 CPU
  devices than on one); states stay split along the axis; metrics,
  evaluations and one member's state come back replicated, so every process
  can read them.
  """
  along, whole = P(MEMBER_AXIS), P()
  everywhere = NamedSharding(mesh, whole)
  per_device_step = jax.shard_map(
      _stacked_step, mesh=mesh, in_specs=(along, whole, along, along),
      out_specs=(along, along), check_vma=False)
  per_device_eval = jax.shard_map(
      _stacked_eval_step, mesh=mesh, in_specs=(along, whole),
      out_specs=along, check_vma=False)
  return (jax.jit(per_device_step,
                  out_shardings=(NamedSharding(mesh, along), everywhere)),
          jax.jit(per_device_eval, out_shardings=everywhere),
          jax.jit(_take, out_shardings=everywhere))


def _member_states(group, plans):
  """Fresh states as train.setup makes them, but with the rate injected
  and each member's own optimizer fields (momentum; AdamW's b1, b2, eps,
  weight decay) set in its state."""
  tx = injected_optimizer(group[0].config)
  per_member = INJECTED[group[0].config.optimizer][1]
  states, rngs = [], []
  for member, plan in zip(group, plans):
    init_rng, data_rng = jax.random.split(jax.random.key(member.config.seed))
    state = train.create_train_state(init_rng, member.config,
                                     plan.learning_rate_fn, tx=tx)
    own = {name: jnp.asarray(member.config[name], jnp.float32)
           for name in per_member}
    shared = states[0] if states else state  # one apply_fn and tx: stackable
    states.append(state.replace(
        apply_fn=shared.apply_fn, tx=shared.tx,
        opt_state=_with_hyperparams(state.opt_state, **own)))
    rngs.append(data_rng)
  return states, rngs


def member_mesh(devices=None) -> jax.sharding.Mesh:
  """A 1-D mesh over `devices` (default: every device of every process)
  whose axis is the members of a stacked group."""
  devices = jax.devices() if devices is None else devices
  return jax.make_mesh((len(devices),), (MEMBER_AXIS,),
                       axis_types=(jax.sharding.AxisType.Auto,),
                       devices=devices)


def programs(group: list, devices: int, members_per_device: int = 0):
  """`group` cut into the programs that train it: each at most
  `members_per_device` x `devices` members (0: the whole group in one)."""
  if members_per_device < 0:
    raise errors.ConfigError(f'--members_per_device={members_per_device} is '
                             'invalid: it must be 0 (automatic) or more.')
  size = members_per_device * devices or len(group)
  return [group[i:i + size] for i in range(0, len(group), size)]


def slots(members_count: int, devices: int) -> int:
  """A program's member slots: its members, padded up to a multiple of the
  device count with copies of its last member, whose results are dropped
  (every device gets the same number of members; none is left out)."""
  return -(-members_count // devices) * devices


def _host(tree):
  """Host copies of a state's arrays (a replicated global array as this
  process holds it)."""
  return jax.tree.map(checkpoints.local_values, tree)


def _padded(values: list, count: int) -> list:
  return values + values[-1:] * (count - len(values))


class StackedGroup:
  """Members of the same shapes as one program, for train.train_group.

  Answers the epoch driver's questions as train.SingleRun does, for every
  member at once: the driver, not this class, does the resume, records,
  NaN stop, signal stop, locks and checkpoints, exactly as for a run.

  The members axis is split over `mesh` (every device of every process by
  default): each device trains its share of the members on the whole
  training set, which every device holds, as a data-parallel run's do.
  """

  def __init__(self, group: list[Member], data, mesh=None):
    self.config = group[0].config
    self.size = len(group)
    self.data = data
    self.mesh = member_mesh() if mesh is None else mesh
    self.slots = slots(self.size, self.mesh.size)
    self._along = NamedSharding(self.mesh, P(MEMBER_AXIS))
    self._step_fn, self._eval_fn, self._take_fn = compiled_for(self.mesh)
    train_size = tasks.num_examples(data.train)
    plans = [schedules.plan(m.config, train_size) for m in group]
    self.steps_per_epoch = plans[0].steps_per_epoch
    self.total_steps = plans[0].total_steps
    self.learning_rate_fns = [p.learning_rate_fn for p in plans]
    rates = [np.asarray(p.learning_rate_fn(np.arange(p.total_steps + 1)),
                        np.float32) for p in plans]
    self._rates = parallel.put_sharded(np.stack(_padded(rates, self.slots)),
                                       self._along)
    self._fresh = _member_states(group, plans)
    self.environment = train.run_environment(
        data, 1, 1, 1, stacked_members=len(group),
        stacked_mesh_devices=self.mesh.size)
    self.states, self.data_rngs, self._train_ds = None, None, None
    self._step = None
    self._test_ds = train.evaluation_split(data.test,
                                           self.config.eval_examples)

  def fresh(self):
    return self._fresh

  def start(self, states, data_rngs):
    host = _stack_host(_padded([_host(s) for s in states], self.slots))
    self._step = int(host.step[0])
    self.states = parallel.put_sharded(host, self._along)
    self.data_rngs = list(data_rngs)
    self._train_ds = parallel.put_replicated(self.data.train, self.mesh)

  @property
  def step(self) -> int:
    return self._step

  def train_epoch(self, epoch, report, stop, until_step=None) -> bool:
    """The rest of `epoch` (up to `until_step`) for every member; polls
    `stop` after each step."""
    indices = parallel.put_sharded(np.stack([np.asarray(train.epoch_indices(
        jax.random.fold_in(rng, epoch), tasks.num_examples(self.data.train),
        self.config.batch_size, None, self.steps_per_epoch))
        for rng in _padded(self.data_rngs, self.slots)]),
                                   self._along)
    first = self.step
    pending = []
    in_flight = parallel.InFlightLimit(self.mesh)  # metrics are gathered
    end = train.epoch_end(first, self.steps_per_epoch, until_step)
    for i in range(first % self.steps_per_epoch, end):
      self.states, metrics = self._step_fn(self.states, self._train_ds,
                                           indices, self._rates)
      in_flight.add(metrics['loss'])
      self._step += 1
      pending.append(metrics)
      stopped = bool(stop())
      if (len(pending) == self.config.log_every_steps or stopped
          or i == end - 1):
        fetched = jax.device_get(pending)
        report(first, [{key: np.array([m[key][j] for m in fetched])
                        for key in fetched[0]} for j in range(self.size)])
        first += len(pending)
        pending = []
      if stopped:
        return True
    return False

  def evaluate(self):
    losses, accuracies = stacked_eval(self.states, self._test_ds,
                                      self.config.eval_batch_size,
                                      self._eval_fn, self.mesh)
    return list(zip(losses[:self.size], accuracies[:self.size]))

  def member_state(self, i):
    return self._take_fn(self.states, i)


def stacked_seconds_per_step(group: list[Member], data, mesh,
                             steps: int) -> float:
  """Wall seconds of one step of `group` stacked over `mesh`, over `steps`
  steps (at most the rest of the first epoch) after a first, compiling one
  (tools/benchmark_stacked.py): the program a study trains, with no
  records written."""
  stacked = StackedGroup(group, data, mesh)
  stacked.start(*stacked.fresh())
  no_stop = lambda: False
  stacked.train_epoch(1, lambda *_: None, no_stop, until_step=1)
  jax.block_until_ready(stacked.states)
  start = time.perf_counter()
  stacked.train_epoch(1, lambda *_: None, no_stop, until_step=1 + steps)
  jax.block_until_ready(stacked.states)
  return (time.perf_counter() - start) / (stacked.step - 1)


def _stack_host(trees):
  return jax.tree.map(lambda *xs: np.stack(xs), *trees)


def train_stacked(group: list[Member], data=None, mesh=None,
                  members_per_device: int = 0) -> None:
  """Trains `group` (same GROUP_FIELDS, an optimizer of
  STACKABLE_OPTIMIZERS) through the epoch driver a single run uses
  (train.train_group): split over `mesh` (default:
  every device of every process) in programs of at most
  `members_per_device` members per device (0: the whole group at once)."""
  if data is None:
    data = tasks.task_of(group[0].config).load_data(group[0].config)
  mesh = member_mesh() if mesh is None else mesh
  for m in group:
    if not stackable(m.config):
      raise errors.ConfigError(
          f'Member {m.name} (optimizer={m.config.optimizer!r}) cannot '
          f'train stacked: only optimizer in {STACKABLE_OPTIMIZERS} can; '
          'train it with --mode=sequential.')
    m.check_folder()
    validation.validate_placement(m.config, tasks.num_examples(data.train))
  for part in programs(group, mesh.size, members_per_device):
    logging.info('Stacked program of %d member(s) on %d device(s) of %d '
                 'process(es): %d slot(s) per device%s: %s.', len(part),
                 mesh.size, jax.process_count(),
                 slots(len(part), mesh.size) // mesh.size,
                 _padding_note(len(part), mesh.size),
                 ', '.join(m.name for m in part))
    books = [bookkeeping.Book(m.workdir, m.config, data.fingerprint,
                              parallel.process_logdir(m.workdir))
             for m in part]
    train.train_group(StackedGroup(part, data, mesh), books)
    for m, book in zip(part, books):
      if book.diverged:
        logging.warning('Member %s diverged: %s', m.name, book.diverged)


def _padding_note(count, devices):
  padding = slots(count, devices) - count
  return (f' ({padding} padding slot(s) repeat the last member; their '
          'results are dropped)' if padding else '')


def stacked_eval(states, test_ds, batch_size, eval_fn, mesh):
  """Each member's mean test loss and accuracy (as train.eval_model)."""
  num_examples = tasks.num_examples(test_ds)
  batch_size = min(batch_size, num_examples)
  loss, correct = 0.0, 0
  for batch in train.eval_batches(test_ds, batch_size):
    totals = jax.device_get(eval_fn(states,
                                    parallel.put_replicated(batch, mesh)))
    loss = loss + totals['loss'].astype(np.float64)
    correct = correct + totals['correct'].astype(np.int64)
  num_targets = tasks.num_targets(test_ds)
  return list(loss / num_targets), list(correct / num_targets)
