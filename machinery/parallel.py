"""Data parallelism with jax.sharding, and the device policy of a run.

One mesh axis over every device: the global batch (`config.batch_size`) is
split along it. The device policy (how many CPU devices, how many
micro-batches per step, how far the host may run ahead) lives here too, so
train.py only asks for it.

Params and optimizer state are replicated, so XLA inserts the gradient
all-reduce itself. The same code runs on one CPU, on several GPUs, and on
several hosts after `jax.distributed.initialize`, where the mesh spans every
process's devices and each process holds the same replicated copy of the
(small) dataset.

Multi-host: pass --coordinator_address, --num_processes and --process_id to
main.py, or set JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and
JAX_PROCESS_ID; on clusters JAX detects by itself (SLURM, Cloud TPU) an empty
--coordinator_address=auto suffices.
"""

import math
import os

from absl import logging
import jax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np

DATA_AXIS = 'data'
MAX_AUTO_CPU_DEVICES = 8
# Per-device micro-batch on CPU when config.micro_batch_size is 0 (auto);
# measured by tools/benchmark.py (see the README's Performance section).
MICRO_BATCH_PER_CPU_DEVICE = 32
# Optimizer steps per jitted call when config.steps_per_call is 0 (auto).
AUTO_STEPS_PER_CALL = 1
ENV_VARS = ('JAX_COORDINATOR_ADDRESS', 'JAX_NUM_PROCESSES', 'JAX_PROCESS_ID')


def maybe_initialize_distributed(coordinator_address=None, num_processes=None,
                                 process_id=None) -> bool:
  """Joins a multi-host job when asked to by flags or environment.

  Returns:
    Whether jax.distributed.initialize was called.
  """
  coordinator_address = coordinator_address or os.environ.get(ENV_VARS[0])
  if not coordinator_address:
    return False
  if num_processes is None and os.environ.get(ENV_VARS[1]):
    num_processes = int(os.environ[ENV_VARS[1]])
  if process_id is None and os.environ.get(ENV_VARS[2]):
    process_id = int(os.environ[ENV_VARS[2]])
  if coordinator_address == 'auto':  # let JAX read SLURM / TPU metadata
    jax.distributed.initialize()
  else:
    jax.distributed.initialize(coordinator_address=coordinator_address,
                               num_processes=num_processes,
                               process_id=process_id)
  logging.info('Process %d of %d; %d local and %d global devices.',
               jax.process_index(), jax.process_count(),
               jax.local_device_count(), jax.device_count())
  return True


def auto_cpu_devices(config) -> int:
  """One CPU device per core, up to 8, dividing both batch sizes.

  On this project's 2-core CI machine that is 2 devices, which with
  micro-batches of 32 ran the default config 1.8x faster than one device
  (see the README's Performance section; 4 and 8 devices were slower).
  """
  cores = min(os.cpu_count() or 1, MAX_AUTO_CPU_DEVICES)
  both = math.gcd(config.batch_size, config.eval_batch_size)
  return max(d for d in range(1, cores + 1) if both % d == 0)


def set_cpu_devices(config) -> int:
  """Splits the host CPU into `config.cpu_devices` XLA devices.

  XLA:CPU parallelises each op over the cores, and on this model's small
  convolutions much of that time goes to synchronisation; a data-parallel
  mesh of one device per core keeps every core busy on its own share of the
  batch instead. 0 means auto_cpu_devices. Only the CPU platform is
  affected: on a GPU machine the mesh is the GPUs. It must run before JAX
  starts its backends; if they already run (e.g. earlier in a test session)
  or XLA_FLAGS forces a count, the existing devices are kept.

  Returns:
    The number of CPU devices in effect.
  """
  if 'xla_force_host_platform_device_count' in os.environ.get('XLA_FLAGS', ''):
    return len(jax.devices('cpu'))
  count = config.cpu_devices or auto_cpu_devices(config)
  try:
    jax.config.update('jax_num_cpu_devices', count)
  except RuntimeError:
    if len(jax.devices('cpu')) != count:
      logging.info('JAX already started with %d CPU device(s); keeping them.',
                   len(jax.devices('cpu')))
  return len(jax.devices('cpu'))


def create_mesh(devices=None) -> jax.sharding.Mesh:
  """A 1-D mesh over `devices` (default: all devices of all processes).

  Auto axes: XLA's partitioner places the collectives (the gradient
  all-reduce) itself, as in jit's classic sharding-in-types-free mode.
  """
  devices = jax.devices() if devices is None else devices
  return jax.make_mesh((len(devices),), (DATA_AXIS,),
                       axis_types=(jax.sharding.AxisType.Auto,),
                       devices=devices)


def replicated(mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh) -> NamedSharding:
  """Leading (batch) dimension split over the devices."""
  return NamedSharding(mesh, P(DATA_AXIS))


def put_replicated(tree, mesh):
  """Copies host arrays to every device (every process passes the same)."""
  return put_sharded(jax.tree.map(np.asarray, tree), replicated(mesh))


def put_sharded(tree, sharding):
  """Host arrays (the same on every process) as global arrays."""
  return jax.tree.map(
      lambda x: jax.make_array_from_callback(x.shape, sharding,
                                             lambda index: x[index]), tree)


def is_main_process() -> bool:
  """Only process 0 writes logs, metrics files and plots."""
  return jax.process_index() == 0


def num_micro_batches(config, mesh) -> int:
  """How many micro-batches train_step splits each batch into.

  config.micro_batch_size: 0 (auto) means MICRO_BATCH_PER_CPU_DEVICE
  examples per device on CPU, where smaller batches run faster per image
  (see train._accumulated_grads), and the whole batch on GPU/TPU, where they
  do not.
  """
  micro = config.micro_batch_size
  if micro == 0:
    if jax.default_backend() != 'cpu':
      return 1
    micro = MICRO_BATCH_PER_CPU_DEVICE * mesh.size
    if config.batch_size % micro:
      return 1
  return max(config.batch_size // micro, 1)


def steps_per_call(config) -> int:
  """Optimizer steps per jitted call (config.steps_per_call; 0: automatic).

  Automatic is AUTO_STEPS_PER_CALL: see the README's Performance section.
  """
  return config.steps_per_call or AUTO_STEPS_PER_CALL


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
