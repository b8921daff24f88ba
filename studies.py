"""Schedule studies: a grid of configs x seeds, trained and summarised.

A study is the cross product of `--vary` values (its grid points), each run
for seeds 0..N-1: its members. Member (point, seed) is exactly the run of
`python main.py --config=... --config.seed=seed` with the point's fields: the
same initial parameters, the same data order, the same schedule.

Two ways to train the members, with the same records (a workdir per member,
as main.py writes it):

- `sequential`: one `train.train_and_evaluate` after another, with all of
  the project's machinery (micro-batches, CPU devices, exact resume). The
  faster way on a CPU, where one model already keeps the cores busy.
- `stacked`: members that share the shapes of their computation (batch size,
  number of steps, optimizer, data) are trained together in one program:
  `jax.vmap` over their stacked parameters, optimizer states, data orders and
  learning rates, each read from that member's own schedule at its step, so
  the model is compiled once and a GPU sees one larger program. The members
  axis is split over a mesh of every device of every process (each device
  trains its own members; a group is padded to a multiple of the device
  count). On XLA:CPU batched convolutions per member are slow (see
  docs/studies.md), so `auto` uses it only on accelerators.

With several processes (main.py's --coordinator_address, --num_processes,
--process_id), stacked groups span every process's devices through
jax.distributed, and sequential members are shared out: process i of n
trains members i, i + n, ... (`Share`).

Finished members are never trained again; interrupted ones resume from their
checkpoints (a stacked group resumes together).
"""

import csv
import dataclasses
import functools
import hashlib
import itertools
import json
import math
import os
import pathlib
import platform
import re
import shutil
import subprocess
import sys
import time

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np
import optax

import tasks
from configs import default
from machinery import bookkeeping
from machinery import checks
from machinery import checkpoints
from machinery import cli
from machinery import errors
from machinery import run_logs
from machinery import files
from machinery import parallel
from machinery import plots
from machinery import stats
from machinery import validation
import schedules
import train

MODES = ('auto', 'stacked', 'sequential')
# The mesh axis a stacked group's members are split along.
MEMBER_AXIS = 'members'
# Fields that give members the same shapes of computation (one program).
# The fields that choose a member's data: members sharing them share a load.
DATA_FIELDS = ('task', 'dataset', 'data_source', 'data_dir', 'idx_dir',
               'text_path', 'context_length')
GROUP_FIELDS = ('batch_size', 'num_epochs', 'eval_batch_size', 'optimizer',
                'nesterov', 'conv_lowering', 'steps_per_epoch',
                'eval_examples', 'num_layers', 'width', 'num_heads',
                *DATA_FIELDS)


# ----------------------------------------------------------------- the grid

# Above this many members a study is refused unless asked for
# (--allow_large_study): a typo in --vary should not build for minutes.
MAX_MEMBERS = 10_000
# A member folder's readable part is cut to this many characters; a hash of
# the exact values makes the name unique.
MAX_NAME_CHARS = 80


# The axis whose values are whole config files: a method, which may be
# several fields at once (schedule-free SGD: optimizer, schedule, rate).
CONFIG_AXIS = 'config'


def method_fields(path) -> dict:
  """The fields the config file at `path` sets apart from configs/default.py.

  That difference is the method: configs/wsd.py is schedule, decay_epochs
  and decay_shape; configs/default.py itself is no field at all.

  Raises:
    ConfigError: the file cannot be loaded, or sets a field the defaults
      do not have.
  """
  where = f'--vary={CONFIG_AXIS}=...{path}'
  config = cli.load_config_file(path, where)
  base = default.get_config()
  unknown = sorted(set(config.keys()) - set(base.keys()))
  if unknown:
    raise errors.ConfigError(f'{where} sets {unknown[0]!r}, which '
                             'configs/default.py has no field for.')
  return {key: value for key, value in config.items()
          if _normal(value) != _normal(base[key])}


def _normal(value):
  return list(value) if isinstance(value, tuple) else value


def parse_vary(text: str, config) -> tuple[str, list]:
  """'FIELD=V1,V2,...' -> (field, [values typed like config.FIELD]).

  `config=FILE1,FILE2,...` varies whole config files (see method_fields).
  """
  field, sep, values = text.partition('=')
  field = field.strip()
  if not sep or not values.strip():
    raise errors.ConfigError(f'--vary={text!r} is invalid: write '
                             'FIELD=VALUE1,VALUE2,...')
  if field == CONFIG_AXIS:
    paths = [v.strip() for v in values.split(',')]
    for path in paths:
      method_fields(path)  # one line now, not in the middle of the study
    return field, _without_repeats(text, field, paths)
  if field not in config:
    raise errors.ConfigError(f'--vary={text!r} is invalid: config has no '
                             f'field {field!r}.')
  if field == 'seed':
    raise errors.ConfigError('--vary=seed=... is invalid: use --seeds=N, '
                             'which pairs the seeds across the grid.')
  typed = [_typed(field, v.strip(), config[field]) for v in values.split(',')]
  return field, _without_repeats(text, field, typed)


def _without_repeats(text, field, values):
  repeated = sorted({_text(v) for v in values if values.count(v) > 1})
  if repeated:
    raise errors.ConfigError(f'--vary={text!r} is invalid: {field} takes the '
                             f'value {repeated[0]} twice.')
  return values


def _typed(field, text, like):
  try:
    if isinstance(like, bool):
      if text.lower() not in ('true', 'false'):
        raise ValueError(text)
      return text.lower() == 'true'
    if isinstance(like, int):
      return int(text)
    if isinstance(like, float):
      return float(text)
    if isinstance(like, str):
      return text
  except ValueError:
    pass
  raise errors.ConfigError(f'--vary: {field}={text!r} is not a '
                           f'{type(like).__name__} like config.{field}.')


def grid_size(varied: list[tuple[str, list]], seeds: int) -> int:
  """How many members the grid has, without building it."""
  return math.prod(len(values) for _, values in varied) * seeds


def check_grid_size(count: int, allow_large: bool) -> None:
  if count > MAX_MEMBERS and not allow_large:
    raise errors.ConfigError(
        f'The study has {count:,} members (grid points x seeds), more than '
        f'{MAX_MEMBERS:,}: check --vary and --seeds, or pass '
        '--allow_large_study to train them all.')


def grid(varied: list[tuple[str, list]]) -> list[dict]:
  """The cross product of the varied fields' values, in flag order."""
  fields = [field for field, _ in varied]
  return [dict(zip(fields, values))
          for values in itertools.product(*[v for _, v in varied])]


def _text(value) -> str:
  """A value as a label shows it: exact (floats round-trip), short."""
  if isinstance(value, float):
    text = repr(value)
    return text[:-2] if text.endswith('.0') else text
  return str(value)


def label(point: dict) -> str:
  """'schedule=sgdr, warmup_epochs=1' (or 'base' for an empty grid).

  Exact: two points whose values differ never share a label (0.05 and
  0.05000001 print as themselves), so the label can key the statistics.
  """
  return ', '.join(f'{k}={_text(v)}' for k, v in point.items()) or 'base'


def member_folder_name(point: dict, seed: int) -> str:
  """A member's folder: a readable, safe part and a hash of the exact values.

  The readable part keeps letters, digits and `.-_=+` of `field-value` pairs
  (anything else, '/' and '..' included, becomes '_'), cut to
  MAX_NAME_CHARS; the hash of the exact (field, value) pairs and the seed
  keeps names unique whatever the cut or the replaced characters were. So a
  member lives in workdir/members/ whatever its values hold.
  """
  parts = [f'{k}-{_text(v)}' for k, v in point.items()] + [f'seed{seed}']
  readable = re.sub(r'[^A-Za-z0-9.=+_-]', '_', '_'.join(parts))
  readable = re.sub(r'\.{2,}', '_', readable).lstrip('.-')[:MAX_NAME_CHARS]
  exact = json.dumps([[k, repr(v)] for k, v in point.items()] + [seed])
  digest = hashlib.sha256(exact.encode()).hexdigest()[:10]
  return f'{readable}-{digest}'


@dataclasses.dataclass(frozen=True)
class Member:
  """One (grid point, seed) of a study and where its run lives."""
  point: dict
  seed: int
  config: ml_collections.ConfigDict
  workdir: pathlib.Path
  index: int = 0  # its place in the study's member list

  @property
  def name(self) -> str:
    return self.workdir.name

  @property
  def study_dir(self) -> pathlib.Path:
    """The study's workdir (the member lives in its members/ folder)."""
    return self.workdir.parent.parent

  def check_folder(self) -> pathlib.Path:
    """The member's folder, refused (one line) if it or members/ is a link:
    a whole run is never written into a user's folder through one."""
    return files.check_no_links_below(self.study_dir, self.workdir)


def members(base, points, seeds: int, workdir) -> list[Member]:
  """Every (point, seed), each config validated before anything runs.

  A member's config is `base` (the study's --config and --config.X), then
  the fields of its `config` axis file that differ from configs/default.py
  (its method), then its other varied fields, the most specific last.
  """
  out = []
  root = pathlib.Path(workdir) / 'members'
  methods = {}
  for point in points:
    for seed in range(seeds):
      config = base.copy_and_resolve_references()
      fields = dict(point)
      if CONFIG_AXIS in fields:
        path = fields.pop(CONFIG_AXIS)
        if path not in methods:
          methods[path] = method_fields(path)
        fields = {**methods[path], **fields}
      with config.unlocked():
        config.update(fields)
        config.seed = seed
        config.progress_bar = 'never'  # a bar per member would be noise
      validation.validate_config(config)
      out.append(Member(point, seed, config,
                        root / member_folder_name(point, seed), len(out)))
  names = sorted({m.config.task for m in out})
  if len(names) > 1:
    raise errors.ConfigError(
        f'The study mixes tasks ({", ".join(names)}): a study compares runs '
        'of one task on one primary metric; give every method file the '
        'same task (e.g. --config=configs/lm.py with configs/lm_*.py).')
  return out


def task_spec(members_: list[Member]) -> dict:
  """study_spec.json's 'task' (tasks.spec_entry)."""
  return tasks.spec_entry(members_[0].config)


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


def stackable(config) -> bool:
  """Whether a member of `config` can train in a stacked group: plain SGD,
  unclipped (its rate is injected into optax.sgd; injected_sgd)."""
  return config.optimizer == 'sgd' and not config.grad_clip_norm


def trains_stacked(member: Member, mode: str) -> bool:
  """Whether `member` trains in a stacked group in `mode` (stackable
  members only; the others train one by one)."""
  return choose_mode(mode) == 'stacked' and stackable(member.config)


def check_same_data(member: Member, data) -> None:
  """A finished member trained on other data is never pooled with these."""
  recorded = _fingerprint(member.workdir)
  if recorded and recorded != data.fingerprint:
    raise errors.ResumeError(
        f'The study member in {member.workdir} was trained on other data '
        f'(data fingerprint {recorded} there, {data.fingerprint} now); use '
        'the data it was trained on, or a new study --workdir.')


def is_finished(member: Member) -> bool:
  """Whether the member is done: its last epoch recorded, or it diverged.

  Raises:
    ResumeError: the member's folder holds a run of another config (the
      study's config file or flags changed since): it is never counted as
      this member's result.
    WorkdirError: the member's records are damaged.
  """
  check_recorded_config(member.workdir, member.config,
                        f'The study member in {member.workdir}')
  return finished_at(member.workdir, member.config)


def finished_at(workdir, config) -> bool:
  """Whether the run in `workdir` diverged or recorded its last epoch.

  Raises:
    WorkdirError: its records are damaged.
  """
  return (run_logs.read_diverged(workdir) is not None
          or last_epoch_recorded(workdir, config))


def check_recorded_config(workdir, config, what) -> None:
  """Raises ResumeError if `workdir`'s config.json is another run's."""
  recorded = run_logs.read_config(workdir)
  if recorded:
    recorded.pop('run_environment', None)
    checkpoints.check_same_config(recorded, config, what)


def last_epoch_recorded(workdir, config) -> bool:
  """Whether `workdir`'s epochs.csv ends with the run's last epoch (False
  when there is none yet; WorkdirError when it is damaged)."""
  try:
    epochs = run_logs.read_epochs(workdir, allow_empty=True)
  except errors.WorkdirError:
    if (pathlib.Path(workdir) / run_logs.EPOCH_LOG).exists():
      raise  # damaged, not missing
    return False
  return bool(len(epochs['epoch'])) and int(epochs['epoch'][-1]) == (
      config.num_epochs)


def check_all_done(members_: list[Member]) -> None:
  """After training: every member finished or diverged, none lost.

  A member whose run is complete but whose records lack the last epoch
  (epochs.csv deleted or cut after the run) would otherwise drop out of
  the statistics without a word.
  """
  lost = [m for m in members_ if not is_finished(m)]
  if lost:
    raise errors.WorkdirError(
        f'{len(lost)} member(s) trained to the end but their epochs.csv '
        f'lacks the last epoch, e.g. {lost[0].workdir} (deleted or cut?): '
        'restore the file, or move that member folder away to train it again.')


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


def train_members(todo: list[Member], mode: str, data: dict,
                  members_per_device: int = 0, after_each=None) -> None:
  """Trains every member of `todo` (none finished) in `mode`; stacked
  groups in programs of at most `members_per_device` per device (0: all).
  `after_each()`, if given, is called after each member or stacked group."""
  groups = {}
  for member in todo:
    stacked = trains_stacked(member, mode)
    check_mode(member, stacked)
    key = (('stacked', tuple(str(member.config[f]) for f in GROUP_FIELDS))
           if stacked else ('sequential', ()))  # in the grid's order
    groups.setdefault(key, []).append(member)
  for (kind, _), group in groups.items():
    if kind == 'sequential':
      for member in group:
        _train_one(member)
        if after_each:
          after_each()
    else:
      train_stacked(group, data[data_key(group[0].config)],
                    members_per_device=members_per_device)
      if after_each:
        after_each()


# ------------------------------------------------ carried between machines

# What makes a finished member finished, and where it was trained: small
# files, committed between sessions (checkpoints stay behind).
CARRIED_FILES = (run_logs.CONFIG_JSON, run_logs.EPOCH_LOG, run_logs.DIVERGED)
MACHINE_JSON = 'machine.json'


def _carried_folder(carry, member) -> pathlib.Path:
  return pathlib.Path(carry) / 'members' / member.name


def carry_in(carry, members_: list[Member]) -> int:
  """Copies members finished on another machine from `carry` (a folder
  that carry_out filled there) into this study's workdir, so that a study
  whose long run outlives one machine resumes on the next.

  Only members with no folder here yet, and only records of this very
  member (its config, checked as on a resume) that are finished: a
  half-trained member is trained again here, never stitched. Returns how
  many were carried in.

  Raises:
    ResumeError: a carried member's config is not this study's member's.
  """
  count = 0
  for member in members_:
    source = _carried_folder(carry, member)
    if member.workdir.exists() or source.is_symlink() or not (
        source / run_logs.EPOCH_LOG).is_file():
      continue
    check_recorded_config(source, member.config,
                          f'The carried study member in {source}')
    if not finished_at(source, member.config):
      continue  # not finished where it was trained
    if copy_records_in(source, member.workdir, member.study_dir):
      count += 1
  return count


def copy_records_in(source, destination, root, machine_record=None) -> bool:
  """A finished run's records (no checkpoints) and the machine that
  trained it (`machine_record` where `source` has no machine.json), from
  a carry folder or another study into its new run folder under `root`.

  Atomic and idempotent, for processes that carry the same members in at
  once: the records are gathered in a folder of this process's own and
  renamed into place; where another process got there first, its copy
  (of the same files) stays and ours is dropped. Returns whether this call
  made the folder.
  """
  destination = pathlib.Path(destination)
  files.make_folder_below(root, destination.parent)
  partial = destination.with_name(f'.{destination.name}.{os.getpid()}'
                                  '.carrying')
  if partial.is_symlink():
    raise files.link_error(partial)
  if partial.exists():
    shutil.rmtree(partial)  # this PID's own leftover
  partial.mkdir()
  try:
    for name in (*CARRIED_FILES, MACHINE_JSON):
      path = pathlib.Path(source) / name
      if path.is_file() and not path.is_symlink():
        files.write_bytes(partial / name, path.read_bytes())
    if machine_record and not (partial / MACHINE_JSON).is_file():
      files.write_text(partial / MACHINE_JSON,
                       json.dumps(machine_record, indent=2))
    try:
      os.rename(partial, destination)
    except OSError:
      if destination.is_dir() and not destination.is_symlink():
        return False  # another process carried it in first
      raise
  finally:
    if partial.exists():
      shutil.rmtree(partial)
  return True


def copy_records_out(run_dir, folder, root) -> None:
  """A finished run's records (no checkpoints) into `folder` of a carry
  folder `root`, with the machine that trained it: its own record if it
  was carried in, else this machine (written once). Nothing is read or
  written through a link."""
  run_dir, folder = pathlib.Path(run_dir), pathlib.Path(folder)
  files.make_folder_below(root, folder)
  for name in CARRIED_FILES:
    if (run_dir / name).is_file():
      files.write_bytes(folder / name, files.read_bytes(run_dir / name))
  trained_on = run_dir / MACHINE_JSON
  if trained_on.is_file():
    files.write_bytes(folder / MACHINE_JSON, files.read_bytes(trained_on))
  elif not (folder / MACHINE_JSON).is_file():
    files.write_text(folder / MACHINE_JSON, json.dumps(machine(), indent=2))


# What may differ between a member and another study's run it takes in:
# where the data lives and what the run logs and keeps. Everything else —
# the CPU split and the eval batch included, which change last digits —
# must be the member's own.
REUSE_MAY_DIFFER = frozenset({
    'data_source', 'data_dir', 'idx_dir', 'allow_download', 'log_every_steps',
    'checkpoint_every_epochs', 'keep_checkpoints', 'progress_bar',
    'tensorboard'})


def _is_same_run(recorded: dict, config) -> bool:
  """Whether a run's recorded config.json fields are `config`'s run."""
  try:
    checkpoints.check_same_config(
        {k: v for k, v in recorded.items() if k != 'run_environment'},
        config, 'reused run', may_differ=REUSE_MAY_DIFFER)
  except errors.ResumeError:
    return False
  return True


def _finished_quietly_at(folder, config) -> bool:
  try:
    return finished_at(folder, config)
  except errors.WorkdirError:
    return False  # damaged or mid-write: not a result to take


# What a run records of where it trained that changes its numbers (the last
# digits): a reused run must have recorded the same as the member would.
PLACEMENT_FIELDS = ('backend', 'jax_version', 'jaxlib_version', 'devices',
                    'processes', 'micro_batches', 'steps_per_call',
                    'stacked_mesh_devices')


def placement(member: Member, mode: str) -> dict:
  """The PLACEMENT_FIELDS the member's run will record in `mode`: on its
  own, main.py's devices and micro-batches for its config; stacked, the
  mesh of every device (each member's step on one device, whole batch)."""
  if trains_stacked(member, mode):
    mesh_devices, devices, micro, per_call = jax.device_count(), 1, 1, 1
  else:
    mesh = parallel.create_mesh(parallel.run_devices(member.config))
    mesh_devices, devices = None, mesh.size
    micro = parallel.num_micro_batches(member.config, mesh)
    per_call = parallel.steps_per_call(member.config)
  return {'backend': jax.default_backend(), 'jax_version': jax.__version__,
          'jaxlib_version': jax.lib.__version__, 'devices': devices,
          'processes': jax.process_count(), 'micro_batches': micro,
          'steps_per_call': per_call, 'stacked_mesh_devices': mesh_devices}


def _recorded_placement(environment: dict) -> dict:
  return {field: environment.get(field) for field in PLACEMENT_FIELDS}


def machine_of_run(environment: dict, folder) -> dict:
  """A machine record for a run reused from a plain workdir, which keeps
  no machine.json: what its config.json recorded of where it trained (the
  host itself is unknown), never this machine's."""
  return {'host': None, 'processor': None, 'cpu_count': None,
          'python': None, 'jax_version': environment.get('jax_version'),
          'backend': environment.get('backend'),
          'device_kind': environment.get('device_kind'),
          'devices': environment.get('devices'), 'code_version': None,
          'recorded_by_the_run_in': str(folder)}


def reuse_in(sources, members_: list[Member], data: dict,
             mode: str = 'sequential') -> dict:
  """Takes in finished runs of other studies that are this study's members.

  A grid point of one study is often a point of another (warmup + cosine
  at the default warmup is in the warmup study and in the budgets study
  alike): training it again would cost the same run twice. `sources` are
  other studies' workdirs or --carry folders. A member with no folder here
  yet takes the records (no checkpoints) of a finished run there whose
  recorded config is this member's field for field — seed, CPU split and
  eval batch included; only where the data lives and what was logged may
  differ (REUSE_MAY_DIFFER) —, whose data fingerprint is this member's
  data's, and whose recorded placement (backend, versions, devices,
  micro-batches, stacked or not: PLACEMENT_FIELDS) is the one this member
  would train with in `mode`: the same run. The machine that trained it
  comes with it (from the run's own records where it kept no
  machine.json). Returns {source: members taken from it}.
  """
  candidates = []
  for source in sources:
    for folder in sorted((pathlib.Path(source) / 'members').glob('*')):
      if folder.is_dir() and not folder.is_symlink():
        try:
          recorded = run_logs.read_config(folder)
        except errors.WorkdirError:
          continue  # damaged: not a result to take
        if recorded:
          candidates.append((str(source), folder, recorded))
  taken = {}
  for member in members_:
    if member.workdir.exists():
      continue
    fingerprint = data[data_key(member.config)].fingerprint
    where = placement(member, mode)
    for source, folder, recorded in candidates:
      environment = recorded.get('run_environment') or {}
      if (environment.get('data_fingerprint') == fingerprint
          and _recorded_placement(environment) == where
          and _is_same_run(recorded, member.config)
          and _finished_quietly_at(folder, member.config)):
        if copy_records_in(folder, member.workdir, member.study_dir,
                           machine_of_run(environment, folder)):
          taken[source] = taken.get(source, 0) + 1
        break
  return taken


def check_reuse_sources(sources, workdir) -> None:
  """Each --reuse folder holds a study's members, and is not this one."""
  for source in sources:
    path = pathlib.Path(source)
    if not (path / 'members').is_dir():
      raise errors.ConfigError(
          f'--reuse={source} is not a study\'s workdir or --carry folder '
          '(it has no members/ folder).')
    if path.resolve() == pathlib.Path(workdir).resolve():
      raise errors.ConfigError(f'--reuse={source} is this study\'s own '
                               'workdir: name other studies\' folders.')


def carry_out(members_: list[Member], carry) -> int:
  """Copies every finished member's records to `carry`, with the machine
  that trained it (a member carried in keeps its own): commit that folder,
  and the study resumes on any machine with carry_in. Returns how many
  members `carry` holds now."""
  count = 0
  for member in members_:
    if not finished_quietly(member):
      continue
    copy_records_out(member.workdir, _carried_folder(carry, member), carry)
    count += 1
  return count


def carried_machines(run_dirs) -> list[dict]:
  """The machines (distinct) that trained the runs carried in."""
  seen = []
  for run_dir in run_dirs:
    path = pathlib.Path(run_dir) / MACHINE_JSON
    if path.is_file():
      recorded = json.loads(path.read_text())
      if recorded not in seen:
        seen.append(recorded)
  return seen


# ------------------------------------------------------ several processes


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


def report_is_current(workdir, members_) -> bool:
  """Whether the study's report is newer than every member's last epoch:
  of two processes that finish together, only the first writes it."""
  report = pathlib.Path(workdir) / 'study.json'
  if not report.is_file():
    return False
  newest = max((m.workdir / run_logs.EPOCH_LOG).stat().st_mtime
               for m in members_)
  return report.stat().st_mtime >= newest


def finished_quietly(member: Member) -> bool:
  """is_finished for a member another process may be writing right now: a
  record caught mid-write counts as not finished yet."""
  try:
    return is_finished(member)
  except errors.WorkdirError:
    return False


def _train_one(member: Member) -> None:
  member.check_folder()
  logging.info('Member %s (sequential).', member.name)
  try:
    train.train_and_evaluate(member.config, str(member.workdir))
  except errors.NonFiniteLoss as e:  # one diverged member ends no study
    logging.warning('Member %s diverged: %s', member.name, e)


# ------------------------------------------------------- stacked training


def injected_sgd(momentum: float,
                 nesterov: bool) -> optax.GradientTransformation:
  """optax.sgd with its rate (and momentum) as state a step can set."""
  return optax.inject_hyperparams(optax.sgd, static_args=('nesterov',))(
      learning_rate=0.0, momentum=momentum, nesterov=nesterov)


def _with_rate(state, rate):
  hyper = dict(state.opt_state.hyperparams, learning_rate=rate)
  return state.replace(opt_state=state.opt_state._replace(hyperparams=hyper))


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
  """Fresh states as train.setup makes them, but with the rate injected."""
  tx = injected_sgd(group[0].config.momentum, group[0].config.nesterov)
  states, rngs = [], []
  for member, plan in zip(group, plans):
    init_rng, data_rng = jax.random.split(jax.random.key(member.config.seed))
    state = train.create_train_state(init_rng, member.config,
                                     plan.learning_rate_fn, tx=tx)
    hyper = dict(state.opt_state.hyperparams,
                 momentum=jnp.asarray(member.config.momentum, jnp.float32))
    shared = states[0] if states else state  # one apply_fn and tx: stackable
    states.append(state.replace(
        apply_fn=shared.apply_fn, tx=shared.tx,
        opt_state=state.opt_state._replace(hyperparams=hyper)))
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
  """Trains `group` (same GROUP_FIELDS, optimizer sgd) through the epoch
  driver a single run uses (train.train_group): split over `mesh` (default:
  every device of every process) in programs of at most
  `members_per_device` members per device (0: the whole group at once)."""
  if data is None:
    data = tasks.task_of(group[0].config).load_data(group[0].config)
  mesh = member_mesh() if mesh is None else mesh
  for m in group:
    if not stackable(m.config):
      raise errors.ConfigError(
          f'Member {m.name} (optimizer={m.config.optimizer!r}, '
          f'grad_clip_norm={m.config.grad_clip_norm!r}) cannot train '
          'stacked: only unclipped optimizer="sgd" members can; train it '
          'with --mode=sequential.')
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
  num_targets = num_examples * tasks.targets_per_example(test_ds)
  return list(loss / num_targets), list(correct / num_targets)


# --------------------------------------------------------------- results


def _fingerprint(workdir) -> str:
  """The data fingerprint a member's config.json records ('' if none)."""
  return run_logs.read_config(workdir).get('run_environment', {}).get(
      'data_fingerprint', '')


def member_result(member: Member, target: float,
                  metric: tasks.Metric = tasks.TEST_ACCURACY) -> dict:
  """One row of study.csv, read back from the member's epochs.csv.

  One rule in both modes: a member is finished when its last epoch is
  recorded with finite numbers and it did not diverge (a diverged member
  keeps `diverged` = 1 and counts in no mean). The best epoch is the best
  of the study's primary `metric`; epochs to `target` count for a test
  accuracy only.
  """
  epochs = run_logs.read_epochs(member.workdir, allow_empty=True)
  accuracy = epochs['test_accuracy']
  diverged = run_logs.read_diverged(member.workdir) is not None or not (
      np.all(np.isfinite(epochs['test_loss'])))
  finished = (len(accuracy) == member.config.num_epochs and not diverged
              and int(epochs['epoch'][-1]) == member.config.num_epochs)
  row = {'member': member.name, 'seed': member.seed, **member.point,
         'finished': int(finished), 'diverged': int(diverged),
         'data_fingerprint': _fingerprint(member.workdir)}
  if not len(accuracy):
    return row
  primary = epochs[metric.key]
  best = int(np.argmax(primary) if metric.higher_is_better
             else np.argmin(primary))
  hits = np.flatnonzero(accuracy >= target) if metric.key == (
      'test_accuracy') else np.array([], int)
  row.update({
      'final_test_accuracy': float(accuracy[-1]),
      'best_test_accuracy': float(accuracy[best]),
      'best_epoch': int(epochs['epoch'][best]),
      'epochs_to_target': int(epochs['epoch'][hits[0]]) if hits.size else '',
      'final_test_loss': float(epochs['test_loss'][-1]),
      'wall_s': round(float(epochs['epoch_time_s'].sum()), 1),
  })
  return row


# ----------------------------------------------------------- the report


def parse_baseline(text, varied, config) -> dict:
  """'F=V,F2=V2' -> {F: V, F2: V2}, each a varied field and one of its values."""
  values = dict(varied)
  if not text:
    return {field: options[0] for field, options in varied}
  baseline = {}
  for part in text.split(','):
    field, _, value = part.partition('=')
    if field not in values:
      raise errors.ConfigError(f'--baseline={text!r} is invalid: {field!r} '
                               f'is not a varied field ({", ".join(values)}).')
    typed = parse_vary(f'{field}={value}', config)[1][0]
    if typed not in values[field]:
      raise errors.ConfigError(f'--baseline={text!r} is invalid: {typed!r} '
                               f'is not among the values of {field}.')
    baseline[field] = typed
  return baseline


def _check_one_dataset(rows, points) -> None:
  """The members of a grid point were all trained on the same data."""
  seen = {}
  for row in rows:
    if row.get('finished') and row.get('data_fingerprint'):
      key = label({f: row[f] for f in points[0]})
      seen.setdefault(key, set()).add(row['data_fingerprint'])
  for key, fingerprints in seen.items():
    if len(fingerprints) > 1:
      raise errors.DataError(
          f'The members of grid point {key} were trained on different data '
          f'(fingerprints {", ".join(sorted(fingerprints))}): their results '
          'cannot be pooled; retrain them on one dataset.')


# A run "trained" when it finished without diverging and its final primary
# metric is on the right side of the metric's bound (tasks.Metric: a test
# accuracy of at least 20%, twice chance on 10 classes; a validation loss
# of at most 4 bits per byte). A run beyond it stayed at chance: an outcome
# of another kind, counted, never averaged.
TRAINED_ACCURACY = tasks.TEST_ACCURACY.trained_bound


def _final(metric) -> str:
  return 'final_' + metric.key


def outcome(row, metric: tasks.Metric = tasks.TEST_ACCURACY) -> float | None:
  """A row's final primary metric if the run trained, None if it diverged
  or stayed at chance; raises KeyError for a member still training."""
  if row.get('diverged'):
    return None
  if not row.get('finished') or _final(metric) not in row:
    raise KeyError(row.get('member'))
  value = row[_final(metric)]
  return value if metric.trained(value) else None


def _difference_bounds(metric):
  low, high = metric.bounds
  return (low - high, high - low)


def compare(mine: dict, theirs: dict,
            metric: tasks.Metric = tasks.TEST_ACCURACY):
  """mine against theirs ({seed: outcome}), over the seeds both have.

  Every paired seed trained on both sides: the paired difference and its
  t-test (stats.Difference). Otherwise whether a run trains at all is the
  outcome: stats.Counts with the exact McNemar test, and beside it the
  difference over the seeds where both trained (described, not tested).
  None when no seed is paired.
  """
  seeds = sorted(set(mine) & set(theirs))
  if not seeds:
    return None, None
  bounds = _difference_bounds(metric)
  if all(mine[s] is not None and theirs[s] is not None for s in seeds):
    return stats.paired_difference([mine[s] for s in seeds],
                                   [theirs[s] for s in seeds],
                                   bounds=bounds), None
  both = [s for s in seeds if mine[s] is not None and theirs[s] is not None]
  described = stats.paired_difference([mine[s] for s in both],
                                      [theirs[s] for s in both],
                                      bounds=bounds) if both else None
  return stats.trained_counts([mine[s] is not None for s in seeds],
                              [theirs[s] is not None for s in seeds]), (
                                  described)


def result_dict(result, described=None,
                metric: tasks.Metric = tasks.TEST_ACCURACY) -> dict:
  """A comparison as study.json keeps it, with its verdict."""
  out = {**result.as_dict(), 'test': (
      'exact McNemar on trained seeds' if isinstance(result, stats.Counts)
      else 'paired t'), 'verdict': stats.verdict(result,
                                                 metric.higher_is_better)}
  if described is not None:
    out['among_trained'] = described.as_dict()
  return out


def summarize(rows, points, baseline, seeds,
              metric: tasks.Metric = tasks.TEST_ACCURACY) -> dict:
  """study.json: per point its interval and its paired difference.

  A point's mean and interval are over its members that trained;
  `members` counts those that finished or diverged, `trained` those that
  trained. The comparisons with the baseline are one family: "better" or
  "worse" only where the Holm-adjusted p-value is below 0.05.
  """
  _check_one_dataset(rows, points)
  by_point, diverged, at_chance = {}, {}, {}
  for row in rows:
    key = label({f: row[f] for f in points[0]})
    if row.get('diverged'):
      diverged[key] = diverged.get(key, 0) + 1
    elif (row.get('finished') and _final(metric) in row
          and not metric.trained(row[_final(metric)])):
      at_chance.setdefault(key, []).append(row[_final(metric)])
    try:
      by_point.setdefault(key, {})[row['seed']] = outcome(row, metric)
    except KeyError:
      continue  # still training: no outcome yet
  summary = {'seeds': seeds, 'baseline': label(baseline),
             'points': {}}
  tests = []
  for point in points:
    key = label(point)
    outcomes = by_point.get(key, {})
    trained = [v for v in outcomes.values() if v is not None]
    entry = {'fields': point,
             **stats.mean_interval(trained, bounds=metric.bounds).as_dict(),
             'members': len(outcomes), 'trained': len(trained),
             'diverged': diverged.get(key, 0),
             'at_chance': sorted(at_chance.get(key, []))}
    base_key = label({**point, **baseline})
    entry['baseline'] = base_key
    if base_key != key:
      result, described = compare(outcomes, by_point.get(base_key, {}),
                                  metric)
      if result is not None:
        tests.append((key, result, described))
    summary['points'][key] = entry
  family = stats.in_family([result for _, result, _ in tests])
  for (key, _, described), result in zip(tests, family):
    summary['points'][key]['vs_baseline'] = result_dict(result, described,
                                                        metric)
  return summary




def _interval(low, high, fmt) -> str:
  """'[low, high]', or 'n/a' where one seed leaves no interval (nan)."""
  if np.isnan(low) or np.isnan(high):
    return 'n/a'
  return f'[{fmt(low)}, {fmt(high)}]'


def comparison_sentence(versus: dict,
                        metric: tasks.Metric = tasks.TEST_ACCURACY) -> str:
  """One sentence for a comparison of study.json: the raw interval, the
  Holm-adjusted p and the verdict; for no detectable difference, the
  smallest difference the family could have detected."""
  diff, unit = metric.difference, metric.difference_unit
  p = stats.p_text(versus['p_holm']).replace('p', 'Holm-adjusted p', 1)
  if 'trained' in versus:
    text = (f'{versus["trained"]} of {versus["n"]} seeds trained against '
            f'{versus["baseline_trained"]} of {versus["n"]} (exact McNemar '
            f'test, {p}): ')
    text += ({'better': 'trains more often', 'worse': 'trains less often'}
             .get(versus['verdict'], 'no detectable difference in how often '
                  'a run trains'))
    if versus['smallest_p'] * versus['family_size'] >= stats.ALPHA:
      text += (f' (with {versus["n"]} seeds this test cannot reach p<0.05 '
               'in this family: its smallest p-value is '
               f'{versus["smallest_p"]:.4g} before Holm)')
    among = versus.get('among_trained')
    if among and among['n']:
      text += (f'; among the {among["n"]} seed(s) where both trained, '
               f'{diff(among["mean"])} {unit}' + (
                   f' {_interval(among["ci95_low"], among["ci95_high"], diff)}'
                   if among['n'] > 1 else ' (one seed: no interval)'))
    return text
  if versus['n'] < 2:
    return (f'{diff(versus["mean"])} {unit} on 1 seed: no interval, no '
            'verdict (run --seeds=2 or more)')
  numbers = (f'{diff(versus["mean"])} {unit} [{diff(versus["ci95_low"])}, '
             f'{diff(versus["ci95_high"])}] over {versus["n"]} paired seeds, '
             f'{p}')
  if versus['verdict'] == 'no detectable difference':
    return (f'no detectable difference ({numbers}; with {versus["n"]} seeds '
            'it could detect '
            f'±{diff(versus["detectable"])[1:]} {unit} at 80% power)')
  return f'{versus["verdict"]} ({numbers})'


def family_note(summary, metric: tasks.Metric = tasks.TEST_ACCURACY) -> str:
  """What the family is, in one sentence."""
  sizes = {p['vs_baseline']['family_size'] for p in summary['points'].values()
           if 'vs_baseline' in p}
  m = max(sizes) if sizes else 0
  return (f'The {m} comparison(s) with the baseline are one family: "better" '
          'or "worse" only where the Holm-adjusted p-value is below 0.05; '
          'the interval beside it is the raw 95% interval. Members that '
          f'diverged or stayed at chance ({_chance_words(metric)}) are '
          'counted, not averaged.')


def _chance_words(metric) -> str:
  """The trained bound in the words the image studies have always used."""
  if metric is tasks.TEST_ACCURACY:
    return f'final test accuracy below {100 * TRAINED_ACCURACY:g}%'
  return metric.chance_words


def markdown(summary, rows, target,
             metric: tasks.Metric = tasks.TEST_ACCURACY) -> str:
  """study.md: the ranking with intervals and one sentence per comparison
  (best first in the direction of the study's primary `metric`; epochs to
  `target` for a test accuracy)."""
  points = summary['points']
  sign = 1 if metric.higher_is_better else -1
  ranked = sorted(points, key=lambda k: -sign * np.nan_to_num(
      points[k]['mean'], nan=-sign * math.inf))
  accuracy = metric.key == 'test_accuracy'
  unit = metric.difference_unit
  if accuracy:
    title, column = 'Final test accuracy', 'final test acc.'
    extra_column = f' epochs to {100 * target:g}% (mean) |'
  else:
    title = f'Final {metric.name} in {metric.unit} ({metric.direction})'
    column, extra_column = f'final {metric.name}', ''
  lines = [
      f'{title} over seeds 0..{summary["seeds"] - 1} '
      f'(mean and 95% Student-t interval of the members that trained); '
      f'paired differences against the baseline ({summary["baseline"]} in '
      'its fields). ' + family_note(summary, metric), '',
      f'| rank | grid point | trained / n | {column} | 95% CI |{extra_column}'
      f' vs baseline: paired diff. ({unit}) [95% CI] | '
      'Holm-adjusted p | verdict |',
      '|---|---|---|---|---|' + ('---|' if accuracy else '')
      + '---|---|---|']
  for rank, key in enumerate(ranked, start=1):
    e = points[key]
    count = f'{e["trained"]} / {e["members"]}' + _untrained_note(e, metric)
    versus = e.get('vs_baseline')
    verdict = versus['verdict'] if versus else ''
    p = stats.p_text(versus['p_holm']) if versus else ''
    if not e['n']:
      lines.append(f'| {rank} | `{key}` | {count} | none trained | n/a |'
                   + (' - |' if accuracy else '')
                   + f' {_counts_cell(versus)} | {p} | {verdict} |')
      continue
    to_target = ''
    if accuracy:
      member_rows = [r for r in rows if _trained_row(r) and label(
          {f: r[f] for f in e['fields']}) == key]
      reached = [r['epochs_to_target'] for r in member_rows
                 if r.get('epochs_to_target') != '']
      to_target = (f' {np.mean(reached):.1f} ({len(reached)}/{e["n"]} '
                   'reached) |' if reached else f' not reached (0/{e["n"]}) |')
    if versus and 'trained' in versus:
      diff = _counts_cell(versus)
    elif versus:
      diff = (f'{metric.difference(versus["mean"])} ' + _interval(
          versus['ci95_low'], versus['ci95_high'], metric.difference))
    else:
      diff = '(baseline)' if key == e['baseline'] else 'n/a (no paired seed)'
    value_ci = _interval(e['ci95_low'], e['ci95_high'],
                         lambda v: metric.format(metric.shown(v)).rstrip('%'))
    lines.append(
        f'| {rank} | `{key}` | {count} | '
        f'{metric.format(metric.shown(e["mean"]))} | '
        f'{value_ci} |{to_target} {diff} | {p} | {verdict} |')
  lines.append('')
  for key in ranked:
    versus = points[key].get('vs_baseline')
    if versus:
      lines.append(f'- `{key}` vs `{points[key]["baseline"]}`: '
                   f'{comparison_sentence(versus, metric)}.')
  return '\n'.join(lines) + '\n'


def _untrained_note(entry, metric: tasks.Metric = tasks.TEST_ACCURACY) -> str:
  """' (2 diverged; 3 at chance: 11.35%)' for the members that did not
  train (the range of their final values)."""
  notes = []
  if entry.get('diverged'):
    notes.append(f'{entry["diverged"]} diverged')
  finals = entry.get('at_chance') or []
  if finals:
    low, high = (metric.format(metric.shown(v)).rstrip('%')
                 for v in (min(finals), max(finals)))
    suffix = '%' if metric.unit == '%' else f' {metric.unit}'
    notes.append(f'{len(finals)} at chance: ' + (
        f'{low}{suffix}' if low == high else f'{low}-{high}{suffix}'))
  return f' ({"; ".join(notes)})' if notes else ''


def _counts_cell(versus) -> str:
  if not versus or 'trained' not in versus:
    return '-'
  return (f'trained {versus["trained"]} vs {versus["baseline_trained"]} of '
          f'{versus["n"]}')


def _trained_row(row, metric: tasks.Metric = tasks.TEST_ACCURACY) -> bool:
  try:
    return outcome(row, metric) is not None
  except KeyError:
    return False


def epoch_curves(epoch_rows, points,
                 metric: tasks.Metric = tasks.TEST_ACCURACY) -> dict:
  """{label: (epochs, mean, low, high)} of the primary metric over seeds."""
  curves = {}
  for point in points:
    key = label(point)
    per_epoch = {}
    for row in epoch_rows:
      if row['point'] == key:
        per_epoch.setdefault(row['epoch'], []).append(row[metric.key])
    epochs = sorted(per_epoch)
    intervals = [stats.mean_interval(per_epoch[e]) for e in epochs]
    curves[key] = (epochs, [i.mean for i in intervals],
                   [i.ci95_low for i in intervals],
                   [i.ci95_high for i in intervals])
  return curves


def heatmap(varied, summary):
  """(x, xs, y, ys, cells) when exactly two numeric fields vary; each cell
  is (mean, half-width of its 95% interval, whether it differs detectably
  from its baseline point)."""
  if len(varied) != 2 or not all(
      isinstance(v[0], (int, float)) and not isinstance(v[0], bool)
      for _, v in varied):
    return None
  (y_name, ys), (x_name, xs) = varied

  def cell(point):
    half = (point.get('ci95_high', math.nan)
            - point.get('ci95_low', math.nan)) / 2
    return (point['mean'], half, point.get('vs_baseline', {}).get(
        'verdict', 'no detectable difference') != 'no detectable difference')
  cells = [[cell(summary['points'][label({y_name: y, x_name: x})])
            for x in xs] for y in ys]
  return x_name, xs, y_name, ys, cells


def write_csv(path, rows, fields):
  with files.replacing(path, newline='') as f:
    writer = csv.DictWriter(f, fieldnames=fields, extrasaction='ignore')
    writer.writeheader()
    writer.writerows(rows)


def json_safe(value):
  """`value` with every nan or infinity as None: study.json is strict JSON."""
  if isinstance(value, dict):
    return {k: json_safe(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [json_safe(v) for v in value]
  if isinstance(value, float) and not math.isfinite(value):
    return None
  return value


REPORT_FILES = ('study.csv', 'study_epochs.csv', 'study.json', 'study.md',
                'study.png')
SPEC_JSON = 'study_spec.json'  # what the study was: enough to rebuild it
ROW_FIELDS = ('member', 'seed', 'final_test_accuracy', 'best_test_accuracy',
              'best_epoch', 'epochs_to_target', 'final_test_loss', 'wall_s',
              'finished', 'diverged', 'data_fingerprint')
EPOCH_ROW_FIELDS = ('member', 'epoch', 'test_accuracy', 'test_loss',
                    'train_loss')


def machine() -> dict:
  """Where the study ran: what its wall times and last digits depend on."""
  return {'host': platform.node(), 'processor': _cpu_name(),
          'cpu_count': os.cpu_count(), 'python': platform.python_version(),
          'jax_version': jax.__version__, 'backend': jax.default_backend(),
          'device_kind': jax.devices()[0].device_kind,
          'devices': jax.device_count(), 'code_version': code_version()}


def code_version():
  """The git commit of this project's source (with `+changes` when the
  tracked files differ from it), or None outside a git checkout: a member's
  last digits depend on the code as much as on the machine."""
  source = pathlib.Path(__file__).resolve().parent

  def git(*args):
    return subprocess.run(['git', '-C', str(source), *args], check=True,
                          capture_output=True, text=True, timeout=10).stdout
  try:
    commit = git('rev-parse', 'HEAD').strip()
    changed = git('status', '--porcelain', '--untracked-files=no').strip()
  except (OSError, subprocess.SubprocessError):
    return None
  return commit + ('+changes' if changed else '')


def _cpu_name() -> str:
  try:
    for line in pathlib.Path('/proc/cpuinfo').read_text().splitlines():
      if line.startswith('model name'):
        return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor()


def write_report(workdir, members_, spec: dict) -> str:
  """The study's files (REPORT_FILES and SPEC_JSON) in `workdir`, read back
  from its members; returns study.md."""
  workdir = pathlib.Path(workdir)
  rows = [member_result(m, spec['target_accuracy'],
                        tasks.primary_metric(spec)) for m in members_]
  per_epoch = [r for m in members_ for r in epoch_rows(m)]
  fields = [f for f, _ in spec['vary']]
  write_csv(workdir / 'study.csv', rows,
            [*ROW_FIELDS[:2], *fields, *ROW_FIELDS[2:]])
  write_csv(workdir / 'study_epochs.csv', per_epoch, EPOCH_ROW_FIELDS)
  spec = {**spec, 'data_fingerprints': sorted(
      {r['data_fingerprint'] for r in rows if r['data_fingerprint']}),
          'members_wall_s': round(sum(r.get('wall_s', 0) for r in rows), 1)}
  carried = carried_machines(m.workdir for m in members_)
  if carried:
    spec['machines_of_carried_members'] = carried
  files.write_text(workdir / SPEC_JSON, json.dumps(spec, indent=2))
  return write_tables(workdir, rows, per_epoch, spec)


def write_tables(workdir, rows, per_epoch, spec) -> str:
  """study.json, study.md and study.png from the rows alone."""
  varied = [(field, values) for field, values in spec['vary']]
  points = grid(varied)
  target = spec['target_accuracy']
  metric = tasks.primary_metric(spec)  # a spec without 'task': images
  summary = {**summarize(rows, points, spec['baseline'], spec['seeds'],
                         metric), **spec.get('extra', {})}
  files.write_text(workdir / 'study.json',
                   json.dumps(json_safe(summary), indent=2, allow_nan=False))
  text = markdown(summary, rows, target, metric)
  files.write_text(workdir / 'study.md', text)
  finished = {r['member'] for r in rows if _trained_row(r, metric)}
  plots.plot_study(epoch_curves([r for r in per_epoch
                                 if r['member'] in finished], points, metric),
                   target if metric is tasks.TEST_ACCURACY else None,
                   workdir / 'study.png', heatmap(varied, summary), metric)
  return text


def read_csv(path) -> list[dict]:
  if not path.is_file():
    raise errors.WorkdirError(f'{path} is missing: is it a study folder that '
                              'tools/study.py wrote or published?')
  with open(path, newline='') as f:
    return list(csv.DictReader(f))


def counts(row: dict) -> bool:
  """Whether a study.csv row is a number to pool: a member that finished
  and did not diverge (a diverged one is reported, never averaged)."""
  return bool(int(row['finished'])) and not int(row.get('diverged') or 0)


def _number(text, kind=float):
  return '' if text in ('', None) else kind(float(text))


def rebuild(folder) -> str:
  """Rewrites study.json, study.md and study.png of a finished study from
  its study.csv, study_epochs.csv and study_spec.json alone (no members,
  no training): a published study's tables and pictures can always be
  rebuilt from its committed files. Returns study.md."""
  folder = pathlib.Path(folder)
  spec_path = folder / SPEC_JSON
  if not spec_path.is_file():
    raise errors.WorkdirError(f'{spec_path} is missing: is {folder} a study '
                              'folder that tools/study.py wrote or published?')
  try:
    spec = json.loads(spec_path.read_text())
    typed = {field: {str(v): v for v in values}
             for field, values in spec['vary']}
    for key in ('baseline', 'seeds', 'target_accuracy'):
      spec[key]  # pylint: disable=pointless-statement
  except (ValueError, KeyError, TypeError, AttributeError):
    raise errors.WorkdirError(
        f'{spec_path} is damaged (not the JSON tools/study.py writes, cut '
        'short?): restore it from where the study was published.') from None
  rows = [_rebuilt_row(row, typed, folder / 'study.csv', i)
          for i, row in enumerate(read_csv(folder / 'study.csv'), start=2)]
  point_of = {r['member']: label({f: r[f] for f in typed}) for r in rows}
  per_epoch = []
  for i, r in enumerate(read_csv(folder / 'study_epochs.csv'), start=2):
    try:
      per_epoch.append({
          'member': r['member'], 'point': point_of[r['member']],
          'epoch': int(r['epoch']),
          **{key: float(r[key]) for key in EPOCH_ROW_FIELDS[2:]}})
    except (KeyError, ValueError, TypeError):
      raise _damaged_row(folder / 'study_epochs.csv', i) from None
  return write_tables(folder, rows, per_epoch, spec)


def _rebuilt_row(row, typed, path, line) -> dict:
  """A study.csv row with its values typed as the study wrote them."""
  try:
    out = {key: row[key] for key in ('member', 'data_fingerprint')}
    out.update({field: typed[field][row[field]] for field in typed})
    out.update(seed=int(row['seed']), finished=int(row['finished']),
               diverged=int(row.get('diverged') or 0))
    for key in ('final_test_accuracy', 'best_test_accuracy',
                'final_test_loss', 'wall_s'):
      if row[key] != '':
        out[key] = float(row[key])
    for key in ('best_epoch', 'epochs_to_target'):
      out[key] = _number(row[key], int)
  except (KeyError, ValueError, TypeError):
    raise _damaged_row(path, line) from None
  if None in out.values():
    raise _damaged_row(path, line)
  return out


def _damaged_row(path, line) -> errors.WorkdirError:
  return errors.WorkdirError(
      f'{path} is damaged at line {line} (a row cut short, or a value that '
      'is not the study\'s): restore it from where the study was published.')


def publish(workdir, members_, destination) -> pathlib.Path:
  """Copies a study's results to `destination` (e.g. docs/studies/NAME):
  its REPORT_FILES, SPEC_JSON and every member's config.json (small; no
  checkpoints), so that the tables and pictures can be rebuilt and every
  member rerun from what is committed."""
  workdir, destination = pathlib.Path(workdir), pathlib.Path(destination)
  destination.mkdir(parents=True, exist_ok=True)
  for name in (*REPORT_FILES, SPEC_JSON):
    files.write_bytes(destination / name, files.read_bytes(workdir / name))
  for member in members_:
    folder = files.make_folder_below(destination,
                                     destination / 'members' / member.name)
    files.write_bytes(folder / run_logs.CONFIG_JSON, files.read_bytes(
        member.check_folder() / run_logs.CONFIG_JSON))
  return destination


def epoch_rows(member):
  epochs = run_logs.read_epochs(member.workdir, allow_empty=True)
  return [{'member': member.name, 'point': label(member.point),
           'epoch': int(e), 'test_accuracy': float(a), 'test_loss': float(l),
           'train_loss': float(t)}
          for e, a, l, t in zip(epochs['epoch'], epochs['test_accuracy'],
                                epochs['test_loss'], epochs['train_loss'])]
