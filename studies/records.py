"""A member's records: whether it is finished, carried between machines
(--carry), reused from another study (--reuse), and on which machine it ran.
"""

import gzip
import json
import os
import pathlib
import shutil

import jax

from machinery import checkpoints
from machinery import errors
from machinery import run_logs
from machinery import files
from machinery import parallel

from studies.grid import Member
from studies.planning import data_key, trains_stacked
from studies.machine import machine


def check_same_data(member: Member, data) -> None:
  """A finished member trained on other data is never pooled with these."""
  recorded = recorded_fingerprint(member.workdir)
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


# What makes a finished member finished, and where it was trained: small
# files, committed between sessions (checkpoints stay behind).
# A carried member's per-step records travel compressed (a few tens of kB
# for 1,000 steps): schedule laws (prediction.py) fit on them.
CARRIED_STEPS = run_logs.STEP_LOG + '.gz'
CARRIED_FILES = (run_logs.CONFIG_JSON, run_logs.EPOCH_LOG, run_logs.DIVERGED,
                 CARRIED_STEPS)


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
  steps = run_dir / run_logs.STEP_LOG
  if steps.is_file() and not steps.is_symlink():
    # mtime=0: the same records give the same bytes (no churn in git).
    files.write_bytes(folder / CARRIED_STEPS, gzip.compress(
        files.read_bytes(steps), mtime=0))
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


def is_same_run(recorded: dict, config,
                may_differ=REUSE_MAY_DIFFER) -> bool:
  """Whether a run's recorded config.json fields are `config`'s run (only
  the fields `may_differ` may differ)."""
  try:
    checkpoints.check_same_config(
        {k: v for k, v in recorded.items() if k != 'run_environment'},
        config, 'reused run', may_differ=may_differ)
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
          and is_same_run(recorded, member.config)
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


def recorded_fingerprint(workdir) -> str:
  """The data fingerprint a member's config.json records ('' if none)."""
  return run_logs.read_config(workdir).get('run_environment', {}).get(
      'data_fingerprint', '')
