"""How a study's members are placed: sequential or stacked, the CPU split,
their data loaded once and checked, and the share of each process.
"""

import dataclasses
import os
import subprocess
import sys

import jax

import tasks
from machinery import checks
from machinery import checkpoints
from machinery import errors
from machinery import run_logs
from machinery import parallel
from machinery import validation

from studies.grid import Member


MODES = ('auto', 'stacked', 'sequential')


# The mesh axis a stacked group's members are split along.
MEMBER_AXIS = 'members'


# Fields that give members the same shapes of computation (one program).
# The fields that choose a member's data: members sharing them share a load.
DATA_FIELDS = ('task', 'dataset', 'data_source', 'data_dir', 'idx_dir',
               'text_path', 'context_length')


GROUP_FIELDS = ('batch_size', 'num_epochs', 'eval_batch_size', 'optimizer',
                'nesterov', 'grad_clip_norm', 'conv_lowering',
                'steps_per_epoch',
                'eval_examples', 'num_layers', 'width', 'num_heads',
                *DATA_FIELDS)


def data_key(config) -> tuple:
  return tuple(str(config[f]) for f in DATA_FIELDS)


def split_cpu(configs) -> None:
  """Splits the CPU, before anything starts JAX, into as many devices as
  the member that wants the most would get from main.py; each member's
  run then takes its own number of them (parallel.run_devices), so that a
  member is exactly main.py's run of its config, its CPU split included,
  whatever the other members want. Configs whose fields are still invalid
  are left to their own checks."""
  wanted = [parallel.cpu_devices_wanted(config) for config in configs
            if _splittable(config)]
  if wanted:
    parallel.set_cpu_devices(configs[0], max(wanted))


def _splittable(config) -> bool:
  fields = [config.cpu_devices, config.batch_size, config.eval_batch_size]
  return (all(checks.is_int(v) for v in fields) and config.cpu_devices >= 0
          and min(fields[1:]) > 0)


def load_data(todo: list[Member], mode: str = 'sequential') -> dict:
  """Each distinct dataset of the members, loaded once: {data_key: Datasets}.

  Every member is checked against its data (batch size, step count) and,
  trained on its own, against the devices its run splits the batch over,
  before any trains: a bad member stops the study before the first, not
  after.
  """
  data = {}
  for member in todo:
    key = data_key(member.config)
    if key not in data:
      data[key] = tasks.task_of(member.config).load_data(member.config)
    mesh = None if trains_stacked(member, mode) else parallel.create_mesh(
        parallel.run_devices(member.config))
    validation.validate_placement(member.config,
                                  tasks.num_examples(data[key].train), mesh)
  return data


# The optimizers a stacked group trains (studies/stacked.py injects their
# rate); the schedule-free ones train one by one.
STACKABLE_OPTIMIZERS = ('sgd', 'adamw')


def stackable(config) -> bool:
  """Whether a member of `config` can train in a stacked group."""
  return config.optimizer in STACKABLE_OPTIMIZERS


def trains_stacked(member: Member, mode: str) -> bool:
  """Whether `member` trains in a stacked group in `mode` (stackable
  members only; the others train one by one)."""
  return choose_mode(mode) == 'stacked' and stackable(member.config)


def choose_mode(mode: str) -> str:
  """'auto': stacked on GPU/TPU, sequential on CPU (measured: README)."""
  if mode != 'auto':
    return mode
  return 'sequential' if jax.default_backend() == 'cpu' else 'stacked'


def _started_stacked(member: Member) -> bool | None:
  """Whether the member's checkpoints were written by a stacked group
  (None: it has none yet)."""
  directory = member.workdir / checkpoints.CHECKPOINT_DIR
  if not directory.is_dir() or not any(
      p.name.isdigit() for p in directory.iterdir()):
    return None
  environment = run_logs.read_config(member.workdir).get('run_environment', {})
  return 'stacked_members' in (environment or {})


def check_mode(member: Member, stacked: bool) -> None:
  """A member resumes in the mode it started in (its optimizer state differs:
  a stacked member's holds the injected rate)."""
  started = _started_stacked(member)
  if started is None or started == stacked:
    return
  then = 'stacked' if started else 'sequential'
  raise errors.ResumeError(
      f'The study member in {member.workdir} was started in --mode={then} '
      f'and its checkpoints hold that mode\'s optimizer state: resume the '
      f'study with --mode={then}.')


@dataclasses.dataclass(frozen=True)
class Share:
  """The sequential members process `process_id` of `num_processes` trains:
  those whose index in the study is process_id modulo num_processes. Fixed
  by the grid, not by timing, so a restarted process resumes exactly its
  own members and no two processes ever train the same one."""
  process_id: int = 0
  num_processes: int = 1

  def owns(self, member: Member) -> bool:
    return member.index % self.num_processes == self.process_id


def sequential_share(settings) -> Share:
  """The Share of parallel.distributed_settings' (address, count, index);
  with --coordinator_address=auto, SLURM's task count and rank fill what
  the flags leave out (no JAX job is joined: each process trains its own
  members on its own devices, as main.py would)."""
  address, count, index = settings
  if address == 'auto':
    count = count if count is not None else _env_int('SLURM_NTASKS')
    index = index if index is not None else _env_int('SLURM_PROCID')
  if count is None or index is None:
    raise errors.ConfigError(
        '--coordinator_address=auto with sequential members needs '
        '--num_processes and --process_id (or SLURM_NTASKS and SLURM_PROCID).')
  return Share(index, count)


def _env_int(name):
  text = os.environ.get(name, '')
  return int(text) if text.isdigit() else None


def mode_before_start(mode: str, settings) -> str:
  """The mode of a study of several processes, known before JAX starts:
  jax.distributed (which stacked groups over hosts need) must be joined
  before any backend runs, so 'auto' asks a short child process which
  backend this machine has."""
  if mode != 'auto' or settings is None:
    return mode
  probe = subprocess.run(
      [sys.executable, '-c', 'import jax; print(jax.default_backend())'],
      capture_output=True, text=True, timeout=300, check=False)
  backend = probe.stdout.strip().splitlines()[-1:] or ['cpu']
  return 'sequential' if backend[0] == 'cpu' else 'stacked'
