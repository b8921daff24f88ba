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
import pathlib
import sys
import threading

from absl import logging
import jax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np

from machinery.errors import ConfigError

DATA_AXIS = 'data'
MAX_AUTO_CPU_DEVICES = 8
# Per-device micro-batch on CPU when config.micro_batch_size is 0 (auto);
# measured by tools/benchmark.py (see the README's Performance section).
MICRO_BATCH_PER_CPU_DEVICE = 32
# Optimizer steps per jitted call when config.steps_per_call is 0 (auto).
AUTO_STEPS_PER_CALL = 1
ENV_VARS = ('JAX_COORDINATOR_ADDRESS', 'JAX_NUM_PROCESSES', 'JAX_PROCESS_ID')


def distributed_settings(coordinator_address=None, num_processes=None,
                         process_id=None):
  """The job's (address, num_processes, process_id) from flags or JAX_*.

  None when no coordinator is named (a single-process run). 'auto' leaves
  the rest to JAX's cluster detection (SLURM, Cloud TPU).

  Raises:
    ConfigError: a value is missing, not a number, or out of range.
  """
  coordinator_address = coordinator_address or os.environ.get(ENV_VARS[0])
  if not coordinator_address:
    if num_processes not in (None, 1) or process_id not in (None, 0):
      raise ConfigError('--num_processes/--process_id need '
                        '--coordinator_address=HOST:PORT (or "auto").')
    return None
  num_processes = _whole_number('--num_processes', num_processes, ENV_VARS[1])
  process_id = _whole_number('--process_id', process_id, ENV_VARS[2])
  if coordinator_address == 'auto':
    return coordinator_address, num_processes, process_id
  host, sep, port = coordinator_address.rpartition(':')
  if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
    raise ConfigError(f'--coordinator_address={coordinator_address!r} is '
                      'invalid: write HOST:PORT with a port in 1..65535 (or '
                      '"auto" on SLURM / Cloud TPU).')
  if num_processes is None or process_id is None:
    raise ConfigError(f'--coordinator_address={coordinator_address} needs '
                      '--num_processes and --process_id (or JAX_NUM_PROCESSES '
                      'and JAX_PROCESS_ID).')
  if num_processes < 1 or not 0 <= process_id < num_processes:
    raise ConfigError(f'--process_id={process_id} is invalid: need 0 <= '
                      f'process_id < num_processes={num_processes}.')
  return coordinator_address, num_processes, process_id


def _whole_number(flag, value, variable):
  """A flag's integer, else the environment variable's, else None."""
  if value is not None:
    return value
  text = os.environ.get(variable)
  if not text:
    return None
  try:
    return int(text)
  except ValueError:
    raise ConfigError(f'{variable}={text!r} is invalid: it must be a whole '
                      f'number (as {flag} is).') from None


def maybe_initialize_distributed(coordinator_address=None, num_processes=None,
                                 process_id=None, timeout_s=300) -> bool:
  """Joins a multi-host job when asked to by flags or environment.

  Waits at most `timeout_s` for every process to join, saying so first; a
  job that never meets ends with one line (JAX's own wait would end in an
  abort with a C++ stack). A peer lost later is reported by
  `lost_peer_message`.

  Returns:
    Whether jax.distributed.initialize was called.
  """
  settings = distributed_settings(coordinator_address, num_processes,
                                  process_id)
  if settings is None:
    return False
  address, count, index = settings
  logging.info('Waiting up to %d s for %s process(es) at %s (this is process '
               '%s).', timeout_s, count or 'the', address,
               'auto' if index is None else index)
  watchdog = threading.Timer(timeout_s, _never_met, (address, count,
                                                     timeout_s))
  watchdog.daemon = True
  watchdog.start()
  try:
    # JAX's own timeouts a little later than ours: ours speaks first.
    timeouts = dict(initialization_timeout=int(timeout_s) + 30,
                    heartbeat_timeout_seconds=HEARTBEAT_TIMEOUT_S)
    if address == 'auto':  # let JAX read SLURM / TPU metadata
      jax.distributed.initialize(**timeouts)
    else:
      jax.distributed.initialize(coordinator_address=address,
                                 num_processes=count, process_id=index,
                                 **timeouts)
  finally:
    watchdog.cancel()
  logging.info('Process %d of %d; %d local and %d global devices.',
               jax.process_index(), jax.process_count(),
               jax.local_device_count(), jax.device_count())
  return True


# Seconds without a heartbeat after which JAX declares a process dead.
HEARTBEAT_TIMEOUT_S = 30


def _never_met(address, count, timeout_s):
  print(f'Error: the {count or ""} processes of the job did not all join at '
        f'{address} within {timeout_s} s (--distributed_timeout_s): start '
        'every process with the same --coordinator_address and '
        '--num_processes and its own --process_id, and check that the '
        'address resolves and its port is open.', file=sys.stderr,
        flush=True)
  os._exit(1)  # pylint: disable=protected-access


# How XLA's collectives (Gloo on CPU) and JAX's coordination service word
# the loss of a peer process.
LOST_PEER_SIGNS = ('Gloo', 'Connection closed by peer', 'heartbeat',
                   'coordination service', 'UNAVAILABLE')


def lost_peer_message(error) -> str | None:
  """One line for a collective that failed because a peer process is gone
  (None if `error` is something else or the job has one process)."""
  text = str(error).strip()
  if jax.process_count() < 2 or not any(s in text for s in LOST_PEER_SIGNS):
    return None
  first = text.splitlines()[0][:300]
  return (f'Lost contact with another process of the job ({first}); the last '
          'finished checkpoint is kept: restart every process with the same '
          'command to resume.')


def auto_cpu_devices(config) -> int:
  """One CPU device per core, up to 8, dividing both batch sizes.

  On this project's 2-core CI machine that is 2 devices, which with
  micro-batches of 32 ran the default config 1.8x faster than one device
  (see the README's Performance section; 4 and 8 devices were slower).
  """
  cores = min(os.cpu_count() or 1, MAX_AUTO_CPU_DEVICES)
  both = math.gcd(config.batch_size, config.eval_batch_size)
  return max(d for d in range(1, cores + 1) if both % d == 0)


def cpu_devices_wanted(config) -> int:
  """The CPU devices a run of `config` trains on: config.cpu_devices, or
  auto_cpu_devices for 0."""
  return config.cpu_devices or auto_cpu_devices(config)


def set_cpu_devices(config, count=None) -> int:
  """Splits the host CPU into `config.cpu_devices` XLA devices (or `count`:
  a study splits it into as many as its largest member wants, and each
  member's mesh takes its own number of them, see run_devices).

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
  count = count or cpu_devices_wanted(config)
  try:
    jax.config.update('jax_num_cpu_devices', count)
  except RuntimeError:
    if len(jax.devices('cpu')) != count:
      logging.info('JAX already started with %d CPU device(s); keeping them.',
                   len(jax.devices('cpu')))
  return len(jax.devices('cpu'))


def run_devices(config) -> list:
  """The devices a run of `config` splits its batch over.

  On one process's CPU: the first cpu_devices_wanted(config) devices, so a
  run is the same whether its process has exactly that many (main.py) or
  more (a study whose members want different splits); all of them where
  JAX started with fewer (a log line says so). GPUs, TPUs and jobs of
  several processes: every device of every process.
  """
  devices = jax.devices()
  if jax.default_backend() != 'cpu' or jax.process_count() > 1:
    return devices
  wanted = cpu_devices_wanted(config)
  if wanted > len(devices):
    logging.info('The run wants %d CPU devices but JAX started with %d; '
                 'keeping them.', wanted, len(devices))
    return devices
  return devices[:wanted]


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


def process_logdir(workdir) -> pathlib.Path:
  """Where this process keeps a run's records: process 0 in the workdir,
  the others beside them in workdir/process_<i> (they hold the same
  values, and share the checkpoints, which orbax coordinates)."""
  workdir = pathlib.Path(workdir)
  if is_main_process():
    return workdir
  return workdir / f'process_{jax.process_index()}'


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
