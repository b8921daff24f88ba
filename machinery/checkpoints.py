"""Checkpoints that resume a run exactly, written with orbax-checkpoint.

A checkpoint is everything the rest of a run depends on: the whole TrainState
(params, optimizer state, step), the data-order RNG, the epoch and the
position inside it, and the config fields that shape the trajectory (so a
resumed run never silently continues under a different schedule).

Orbax writes each checkpoint into a temporary folder and renames it into
place when complete, so a crash or `kill -9` mid-save leaves no checkpoint
that looks finished. A finished checkpoint that fails to load anyway (a bad
disk, a hand-edited file) is reported, moved aside to `checkpoints_damaged/`
rather than deleted, and the previous one is used.
"""

import dataclasses
import json
import pathlib
import shutil

from absl import logging
import jax
import orbax.checkpoint as ocp

from machinery.errors import ResumeError

CHECKPOINT_DIR = 'checkpoints'
DAMAGED_DIR = 'checkpoints_damaged'

# Config fields that do not change the trajectory: they may differ on resume.
RESUMABLE_CHANGES = frozenset({
    'data_source', 'data_dir', 'idx_dir', 'allow_download', 'log_every_steps',
    'checkpoint_every_epochs', 'keep_checkpoints', 'eval_batch_size',
    'progress_bar', 'tensorboard', 'micro_batch_size', 'cpu_devices'})


@dataclasses.dataclass
class Restored:
  state: object             # TrainState, with the template's shardings
  data_rng: jax.Array       # the run's data-order key
  step: int                 # global step the run continues from
  epoch: int                # 1-based epoch that step belongs to


def trajectory_fields(config) -> dict:
  """The config fields a resumed run must share with the saved one."""
  return {key: value for key, value in config.to_dict().items()
          if key not in RESUMABLE_CHANGES}


class CheckpointStore:
  """workdir/checkpoints, keeping the newest `keep` checkpoints."""

  def __init__(self, workdir, keep: int):
    self._workdir = pathlib.Path(workdir).absolute()
    self.directory = self._workdir / CHECKPOINT_DIR
    self._keep = keep
    self._manager = self._open()

  def _open(self):
    options = ocp.CheckpointManagerOptions(
        max_to_keep=self._keep, create=True, cleanup_tmp_directories=True,
        # Synchronous: when save() returns, the checkpoint is on disk, which
        # is what a Ctrl-C handler or a NaN stop needs to promise.
        enable_async_checkpointing=False)
    return ocp.CheckpointManager(self.directory, options=options,
                                 item_names=('state', 'meta'))

  def steps(self) -> list[int]:
    return sorted(self._manager.all_steps())

  def save(self, state, data_rng, epoch, config) -> pathlib.Path:
    """Saves `state` under its step, replacing a same-step one."""
    step = int(jax.device_get(state.step))
    meta = {'step': step, 'epoch': epoch,
            'data_rng': jax.device_get(jax.random.key_data(data_rng)).tolist(),
            'config': trajectory_fields(config)}
    if step in self._manager.all_steps():
      self._manager.delete(step)
    self._manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        meta=ocp.args.JsonSave(meta)), force=True)
    self._manager.wait_until_finished()
    return self.directory / str(step)

  def restore_latest(self, template_state, config) -> Restored | None:
    """The newest checkpoint that loads; None if there is none.

    Raises:
      ResumeError: the checkpoint was written under a different config.
    """
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template_state)
    for step in reversed(self.steps()):
      try:
        restored = self._manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract),
            meta=ocp.args.JsonRestore()))
      except Exception as e:  # pylint: disable=broad-except
        self._set_aside(step, e)
        continue
      meta = restored['meta']
      _check_same_run(meta['config'], trajectory_fields(config),
                      self.directory / str(step))
      rng = jax.random.wrap_key_data(
          jax.numpy.asarray(meta['data_rng'], jax.numpy.uint32))
      return Restored(restored['state'], rng, meta['step'], meta['epoch'])
    return None

  def _set_aside(self, step, error):
    damaged = self._workdir / DAMAGED_DIR / str(step)
    logging.warning(
        'Checkpoint at step %d cannot be loaded (%s: %s); moved it to %s and '
        'trying the previous one.', step, type(error).__name__,
        str(error).splitlines()[0][:200] if str(error) else '', damaged)
    damaged.parent.mkdir(parents=True, exist_ok=True)
    if damaged.exists():
      shutil.rmtree(damaged)
    shutil.move(str(self.directory / str(step)), str(damaged))
    self._manager.close()
    self._manager = self._open()

  def close(self):
    self._manager.close()


def _check_same_run(saved: dict, current: dict, where) -> None:
  changed = sorted(key for key in set(saved) | set(current)
                   if _normal(saved.get(key)) != _normal(current.get(key)))
  if changed:
    diffs = ', '.join(f'{key}={saved.get(key)!r} there, {current.get(key)!r} '
                      f'now' for key in changed)
    raise ResumeError(
        f'The checkpoint in {where} belongs to a run with a different config '
        f'({diffs}); pass the same config to resume, or a new --workdir.')


def _normal(value):
  """JSON turns tuples into lists; compare the values, not the containers."""
  return json.loads(json.dumps(value))
