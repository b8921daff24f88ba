"""Checkpoints that resume a run exactly, written with orbax-checkpoint.

A checkpoint is everything the rest of a run depends on: the whole TrainState
(params, optimizer state, step), the data-order RNG, the epoch and the
position inside it, and the config fields that shape the trajectory (so a
resumed run never silently continues under a different schedule).

Orbax writes each checkpoint into a temporary folder and renames it into
place when complete, so a crash or `kill -9` mid-save leaves no checkpoint
that looks finished. Each checkpoint also records the structure of the saved
state (every array's path, shape and dtype) and a SHA-256 of every array, so
that on restore two cases are told apart:

- damaged (a file fails to load, or an array no longer matches its checksum:
  a bad disk, a hand-edited file): reported in one line, moved aside to
  `checkpoints_damaged/` rather than deleted, and the previous one is used;
- incompatible (the code now builds a state of another structure or dtype):
  the run stops with one line and nothing is moved, since the checkpoints
  are good, only not for this code.

If every checkpoint was damaged the run stops rather than silently starting
over from step 0. `read_state` reads a run's checkpoint without touching
anything (tools/sample.py, possibly while the run trains).
"""

import dataclasses
import errno
import hashlib
import json
import logging as py_logging
import pathlib
import shutil

from absl import logging
import jax
import numpy as np
import orbax.checkpoint as ocp

from machinery.errors import ResumeError
from machinery.errors import WorkdirError

CHECKPOINT_DIR = 'checkpoints'
DAMAGED_DIR = 'checkpoints_damaged'

# Config fields that do not change the trajectory: they may differ on resume.
RESUMABLE_CHANGES = frozenset({
    'data_source', 'data_dir', 'idx_dir', 'text_path', 'allow_download',
    'log_every_steps',
    'checkpoint_every_epochs', 'keep_checkpoints', 'eval_batch_size',
    'progress_bar', 'tensorboard', 'micro_batch_size', 'cpu_devices',
    'steps_per_call'})
# Fields added after checkpoints were first written, with the value that
# keeps an older run's trajectory: a checkpoint without them still resumes.
FIELDS_ADDED_LATER = {'nesterov': False, 'decay_fraction': 0.0,
                      'conv_lowering': 'xla', 'b1': 0.9, 'b2': 0.999,
                      'eps': 1e-8, 'weight_decay': 1e-4,
                      'grad_clip_norm': 0.0,
                      'task': 'image_classification', 'text_path': '',
                      'context_length': 128, 'num_layers': 4, 'width': 128,
                      'num_heads': 4, 'steps_per_epoch': 0,
                      'eval_examples': 0, 'knots': (1.0, 0.0)}


@dataclasses.dataclass
class Restored:
  state: object             # TrainState, with the template's shardings
  data_rng: jax.Array       # the run's data-order key
  step: int                 # global step the run continues from
  epoch: int                # 1-based epoch that step belongs to


def _named_leaves(tree):
  return [(jax.tree_util.keystr(path), leaf) for path, leaf in
          jax.tree_util.tree_flatten_with_path(tree)[0]]


def tree_signature(tree) -> dict:
  """{path: [shape, dtype]} of every array in `tree` (or its abstract form)."""
  return {name: [list(leaf.shape), str(np.dtype(leaf.dtype))]
          for name, leaf in _named_leaves(tree)}


def local_values(leaf) -> np.ndarray:
  """A (replicated) array's values as held by this process."""
  if isinstance(leaf, jax.Array):
    return np.asarray(leaf.addressable_data(0))
  return np.asarray(leaf)


def tree_checksums(tree) -> dict:
  """{path: SHA-256 of the array's bytes} of every array in `tree`."""
  return {name: hashlib.sha256(local_values(leaf).tobytes()).hexdigest()
          for name, leaf in _named_leaves(tree)}


def trajectory_fields(config, may_differ=RESUMABLE_CHANGES) -> dict:
  """The config fields a resumed run must share with the saved one: all
  but those in `may_differ`."""
  return {key: value for key, value in config.to_dict().items()
          if key not in may_differ}


class CheckpointStore:
  """workdir/checkpoints, keeping the newest `keep` checkpoints."""

  def __init__(self, workdir, keep: int, data_fingerprint=None):
    self._workdir = pathlib.Path(workdir).absolute()
    self.directory = self._workdir / CHECKPOINT_DIR
    self._keep = keep
    # Saved with every checkpoint; a resume on other data is refused.
    self._fingerprint = data_fingerprint
    self._manager = self._open()

  def _open(self):
    options = ocp.CheckpointManagerOptions(
        max_to_keep=self._keep, create=True, cleanup_tmp_directories=True,
        # Synchronous: when save() returns, the checkpoint is on disk, which
        # is what a Ctrl-C handler or a NaN stop needs to promise.
        enable_async_checkpointing=False)
    manager = ocp.CheckpointManager(self.directory, options=options,
                                    item_names=('state', 'meta'))
    # Orbax removes leftover temporary folders in a background thread that
    # close() does not wait for; a run that stops right after opening (a
    # refused resume) would end the interpreter under it, with tracebacks.
    settle = getattr(manager, '_maybe_await_cleanup_tmp_directory', None)
    if settle is not None:
      settle()
    return manager

  def steps(self) -> list[int]:
    return sorted(self._manager.all_steps())

  def save(self, state, data_rng, epoch, config) -> pathlib.Path:
    """Saves `state` under its step, replacing a same-step one."""
    step = int(jax.device_get(state.step))
    meta = {'step': step, 'epoch': epoch,
            'data_rng': jax.device_get(jax.random.key_data(data_rng)).tolist(),
            'config': trajectory_fields(config),
            'tree': tree_signature(state),
            'checksums': tree_checksums(state),
            'data_fingerprint': self._fingerprint}
    if step in self._manager.all_steps():
      self._manager.delete(step)
    quiet = _QuietLoggers()  # a failed write is reported once, below
    try:
      self._manager.save(step, args=ocp.args.Composite(
          state=ocp.args.StandardSave(state),
          meta=ocp.args.JsonSave(meta)), force=True)
      self._manager.wait_until_finished()
    except Exception as e:  # pylint: disable=broad-except
      if not is_out_of_space(e):
        raise
      self._remove_unfinished(step)
      kept = self.steps()
      last = (f'the last good checkpoint is step {kept[-1]} in '
              f'{self.directory}' if kept else 'no checkpoint was saved yet')
      raise WorkdirError(
          f'No space left on the device while saving the checkpoint of step '
          f'{step} in {self.directory} (its partial files were removed); '
          f'{last}. Free some space and run the same command to resume.'
      ) from None
    finally:
      quiet.restore()
    return self.directory / str(step)

  def _remove_unfinished(self, step) -> None:
    """Orbax's temporary folder of an unfinished save of `step` (only it)."""
    for path in self.directory.glob(f'{step}.orbax-checkpoint-tmp*'):
      if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)

  def restore_latest(self, template_state, config,
                     at_most=None) -> Restored | None:
    """The newest checkpoint that loads intact; None if there is none.

    `at_most`: ignore (without touching) checkpoints after this step.

    Raises:
      ResumeError: the checkpoint was written under a different config or
        for a state of another structure; or every checkpoint was damaged.
    """
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template_state)

    def same_run(meta, where):
      _check_same_run(meta['config'], trajectory_fields(config),
                      f'The checkpoint in {where}')
      _check_same_data(meta.get('data_fingerprint'), self._fingerprint, where)
      _check_same_structure(meta.get('tree'), tree_signature(abstract), where)

    damaged = []
    for step in reversed(self.steps()):
      if at_most is not None and step > at_most:
        continue
      found = _read_checkpoint(self._manager, step, abstract, same_run)
      if isinstance(found, str):
        damaged.append(self._set_aside(step, found))
        continue
      state, meta = found
      rng = jax.random.wrap_key_data(
          jax.numpy.asarray(meta['data_rng'], jax.numpy.uint32))
      return Restored(state, rng, meta['step'], meta['epoch'])
    if damaged:
      raise ResumeError(
          f'Every checkpoint in {self.directory} was damaged (moved to '
          f'{damaged[-1].parent}); run the same command again to start over '
          'from step 0, or put a good checkpoint back.')
    return None

  def _set_aside(self, step, reason: str) -> pathlib.Path:
    damaged = self._workdir / DAMAGED_DIR / str(step)
    logging.warning(
        'Checkpoint at step %d is damaged and cannot be loaded (%s); moved it '
        'to %s and trying '
        'the previous one.', step, reason, damaged)
    damaged.parent.mkdir(parents=True, exist_ok=True)
    copy = 1
    while damaged.exists() or damaged.is_symlink():  # keep what is there
      damaged = damaged.with_name(f'{step}.{copy}')
      copy += 1
    shutil.move(str(self.directory / str(step)), str(damaged))
    self._manager.close()
    self._manager = self._open()
    return damaged

  def close(self):
    self._manager.close()


def read_state(workdir, template_state, step=None):
  """(state, step) of the newest intact checkpoint in `workdir` (`step`:
  that one), read only: nothing there is created, moved or removed, so a
  run can be read (tools/sample.py) while it trains and writes its next
  checkpoint. A checkpoint that fails to load or to match its checksums is
  passed over (the run itself sets it aside when it resumes).

  Raises:
    ResumeError: no checkpoint (of `step`) there, none intact, or one of
      another state structure than `template_state`.
  """
  directory = pathlib.Path(workdir).absolute() / CHECKPOINT_DIR
  if not directory.is_dir() or directory.is_symlink():
    raise ResumeError(f'{workdir} holds no {CHECKPOINT_DIR}/ folder: name a '
                      'run\'s own workdir (a published study member keeps '
                      'its records, not its checkpoints).')
  quiet = _QuietLoggers()  # orbax warns that read only means read only
  try:
    manager = ocp.CheckpointManager(
        directory, options=ocp.CheckpointManagerOptions(
            read_only=True, create=False, save_interval_steps=0,
            max_to_keep=None, cleanup_tmp_directories=False),
        item_names=('state', 'meta'))
  finally:
    quiet.restore()
  try:
    steps = sorted(manager.all_steps(), reverse=True)
    if not steps:
      raise ResumeError(f'{directory} holds no checkpoint yet: a run saves '
                        'one every checkpoint_every_epochs epochs.')
    if step is not None:
      if step not in steps:
        raise ResumeError(
            f'{directory} has no checkpoint of step {step}; it has '
            f'{", ".join(map(str, sorted(steps)))}.')
      steps = [step]
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template_state)

    def same_structure(meta, where):
      _check_same_structure(meta.get('tree'), tree_signature(abstract), where)

    for candidate in steps:  # a damaged one is passed over
      found = _read_checkpoint(manager, candidate, abstract, same_structure)
      if not isinstance(found, str):
        return found[0], candidate
  finally:
    manager.close()
  raise ResumeError(f'{directory} holds no intact checkpoint'
                    + (f' of step {step}.' if step is not None else '.'))


def _read_checkpoint(manager, step, abstract, check_meta):
  """(state, meta) of checkpoint `step`, or why it is damaged (a sentence).

  `check_meta(meta, where)` raises ResumeError for an intact checkpoint of
  another run (config, data, structure): that is the user's to resolve, so
  it is raised, where a damaged checkpoint is the caller's to pass over or
  set aside (CheckpointStore.restore_latest and read_state share this).
  """
  meta = _load(manager, step, meta=ocp.args.JsonRestore())
  if isinstance(meta, Exception):
    return _reason(meta)
  meta = meta['meta']
  check_meta(meta, pathlib.Path(manager.directory) / str(step))
  restored = _load(manager, step, state=ocp.args.StandardRestore(abstract))
  if isinstance(restored, Exception):
    return _reason(restored)
  state = restored['state']
  if 'checksums' in meta and tree_checksums(state) != meta['checksums']:
    return 'its arrays do not match the checksums saved with them'
  return state, meta


def _load(manager, step, **items):
  """The named items of checkpoint `step`, or the exception loading raised.

  Orbax logs a failed read at length (and its event loop may add more);
  one line from the caller says it all, so it is kept quiet here.
  """
  quiet = _QuietLoggers()
  try:
    return manager.restore(step, args=ocp.args.Composite(**items))
  except Exception as e:  # pylint: disable=broad-except
    return e
  finally:
    quiet.restore()


def _reason(error: Exception) -> str:
  first = str(error).splitlines()[0][:200] if str(error) else ''
  return f'{type(error).__name__}: {first}'


def is_out_of_space(error) -> bool:
  """Whether `error` (or what caused it) says the disk is full; orbax's
  tensorstore says RESOURCE_EXHAUSTED, Python says ENOSPC."""
  while error is not None:
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
      return True
    if 'RESOURCE_EXHAUSTED' in str(error) or 'No space left' in str(error):
      return True
    error = error.__cause__ or error.__context__
  return False


def check_same_config(saved: dict, config, what: str,
                      may_differ=RESUMABLE_CHANGES) -> None:
  """Raises ResumeError if `saved` (a run's recorded config fields) would
  give another trajectory than `config`; `what` names the run in the message.
  Only the fields in `may_differ` may differ (default: what a resume may
  change).
  """
  _check_same_run({k: v for k, v in saved.items() if k not in may_differ},
                  trajectory_fields(config, may_differ), what)


def _check_same_run(saved: dict, current: dict, what: str) -> None:
  """`saved` (older runs lack FIELDS_ADDED_LATER) against `current`, over
  the fields `current` holds and those it lacks on purpose: a field added
  later that a resume may change (absent from `current`) is not compared."""
  saved = {**{key: value for key, value in FIELDS_ADDED_LATER.items()
              if key in current}, **saved}
  changed = sorted(key for key in set(saved) | set(current)
                   if _normal(saved.get(key)) != _normal(current.get(key)))
  if changed:
    diffs = ', '.join(f'{key}={saved.get(key)!r} there, {current.get(key)!r} '
                      f'now' for key in changed)
    raise ResumeError(
        f'{what} belongs to a run with a different config '
        f'({diffs}); pass the same config to resume, or a new --workdir.')


def _check_same_data(saved, current, where) -> None:
  if saved and current and saved != current:
    raise ResumeError(
        f'The checkpoint in {where} was trained on other data (data '
        f'fingerprint {saved} there, {current} now: another dataset '
        'version, another order, or a changed file); resume with the same '
        'data, or use a new --workdir.')


def _check_same_structure(saved, current: dict, where) -> None:
  """A checkpoint of another state structure is incompatible, not damaged."""
  if saved is None or saved == current:
    return
  changed = sorted(set(saved) ^ set(current)) or sorted(
      key for key in saved if saved[key] != current[key])
  raise ResumeError(
      f'The checkpoint in {where} holds a state of another structure than '
      f'this code builds (first difference: {changed[0]}: '
      f'{saved.get(changed[0])} there, {current.get(changed[0])} now); '
      'nothing was moved: use the code that wrote it, or a new --workdir.')


class _QuietLoggers:
  """Silences the Python loggers orbax and asyncio report a failed read to."""

  NAMES = ('absl', 'asyncio', 'orbax', 'jax')

  def __init__(self):
    self._levels = {}
    for name in self.NAMES:
      logger = py_logging.getLogger(name)
      self._levels[name] = logger.level
      logger.setLevel(py_logging.CRITICAL)

  def restore(self):
    for name, level in self._levels.items():
      py_logging.getLogger(name).setLevel(level)


def _normal(value):
  """JSON turns tuples into lists; compare the values, not the containers."""
  return json.loads(json.dumps(value))
