"""Checkpoints: exact resume after a crash or kill -9, damaged and foreign
checkpoints, completed runs, keep_checkpoints (machinery/checkpoints.py)."""

import json
import logging
import shutil
import signal
import subprocess

import jax
import numpy as np
import pytest
from flax import linen as nn

import conftest
import input_pipeline
from machinery import checkpoints
from machinery import errors
from machinery import workdir
from runs import assert_same_params
from runs import cli_args
from runs import EPOCHS
from runs import final_params
from runs import run_config
from runs import step_log
from runs import STEPS_PER_EPOCH
from runs import wait_for_checkpoint
import models
import train


SCHEDULE_FREE = dict(optimizer='schedule_free_sgd', schedule='constant',
                     learning_rate=0.5)


@pytest.mark.parametrize('overrides', [{}, SCHEDULE_FREE],
                         ids=['sgd', 'schedule_free_sgd'])
def test_in_process_resume_after_a_crash_is_exact(idx_dir, tmp_path,
                                                   monkeypatch, overrides):
  """Crash right after epoch 2's checkpoint, resume, compare to a clean run."""
  clean = train.train_and_evaluate(run_config(idx_dir, **overrides),
                                   str(tmp_path / 'a'))

  real_save = checkpoints.CheckpointStore.save

  def crash_after_epoch_2(self, state, data_rng, epoch, config):
    path = real_save(self, state, data_rng, epoch, config)
    if epoch == 2:
      raise SystemExit('simulated crash')
    return path

  monkeypatch.setattr(checkpoints.CheckpointStore, 'save', crash_after_epoch_2)
  with pytest.raises(SystemExit):
    train.train_and_evaluate(run_config(idx_dir, **overrides),
                             str(tmp_path / 'b'))
  monkeypatch.undo()
  resumed = train.train_and_evaluate(run_config(idx_dir, **overrides),
                                     str(tmp_path / 'b'))

  assert int(resumed.step) == EPOCHS * STEPS_PER_EPOCH
  assert_same_params(clean.params, resumed.params)
  assert_same_params(clean.opt_state, resumed.opt_state)
  assert step_log(tmp_path / 'b') == step_log(tmp_path / 'a')


def test_kill_9_then_resume_matches_the_uninterrupted_run(idx_dir, tmp_path,
                                                          reference):
  workdir = tmp_path / 'killed'
  process = subprocess.Popen(cli_args(idx_dir, workdir),
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
  try:
    wait_for_checkpoint(workdir, STEPS_PER_EPOCH, process)
  finally:
    process.send_signal(signal.SIGKILL)  # no handler, no cleanup
    process.wait()
  assert process.returncode == -signal.SIGKILL
  config = run_config(idx_dir)

  resumed = subprocess.run(cli_args(idx_dir, workdir), capture_output=True,
                           text=True, timeout=300)
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  assert 'Resuming from the checkpoint at step' in resumed.stderr
  steps = [int(line.split(',')[0])
           for line in step_log(workdir).splitlines()[1:]]
  assert steps == list(range(EPOCHS * STEPS_PER_EPOCH))  # no gap, no repeat
  assert step_log(workdir) == step_log(reference)
  assert_same_params(final_params(workdir, config), final_params(reference, config))


def test_damaged_latest_checkpoint_falls_back_to_the_previous(
    idx_dir, tmp_path, reference, caplog):
  caplog.set_level(logging.INFO)
  workdir = tmp_path / 'damaged'
  config = run_config(idx_dir)
  train.train_and_evaluate(config, str(workdir))
  ckpt_dir = workdir / checkpoints.CHECKPOINT_DIR
  newest = ckpt_dir / str(EPOCHS * STEPS_PER_EPOCH)
  for path in (newest / 'state').rglob('*'):
    if path.is_file():
      path.write_bytes(b'garbage')
  state = train.train_and_evaluate(config, str(workdir))
  assert 'cannot be loaded' in caplog.text
  assert (workdir / checkpoints.DAMAGED_DIR /
          str(EPOCHS * STEPS_PER_EPOCH)).is_dir()  # set aside, not deleted
  # It resumed from epoch 3's checkpoint and redid epoch 4 exactly.
  assert f'Resuming from the checkpoint at step {3 * STEPS_PER_EPOCH}' in (
      caplog.text)
  assert_same_params(jax.tree.map(np.asarray, state.params),
                     final_params(reference, config))
  assert step_log(workdir) == step_log(reference)


def test_resume_with_a_different_config_is_refused(idx_dir, tmp_path):
  train.train_and_evaluate(run_config(idx_dir, num_epochs=1), str(tmp_path))
  with pytest.raises(checkpoints.ResumeError,
                     match=r'learning_rate=0\.1 there, 0\.2 now'):
    train.train_and_evaluate(
        run_config(idx_dir, num_epochs=1, learning_rate=0.2), str(tmp_path))


def test_records_of_another_run_are_refused_without_checkpoints(idx_dir,
                                                                tmp_path):
  """Checkpoints deleted: config.json still speaks for the records."""
  train.train_and_evaluate(run_config(idx_dir, num_epochs=1), str(tmp_path))
  shutil.rmtree(tmp_path / checkpoints.CHECKPOINT_DIR)
  before = {name: (tmp_path / name).read_bytes() for name in (
      'config.json', 'train_steps.csv', 'epochs.csv')}
  with pytest.raises(checkpoints.ResumeError,
                     match=r'The run recorded in .*config.json belongs to a '
                     r'run with a different config \(learning_rate=0\.1 '
                     r'there, 0\.2 now\)'):
    train.train_and_evaluate(
        run_config(idx_dir, num_epochs=1, learning_rate=0.2), str(tmp_path))
  for name, content in before.items():
    assert (tmp_path / name).read_bytes() == content, name


@pytest.mark.parametrize('field,other', [('nesterov', True),
                                         ('decay_fraction', 0.2),
                                         ('conv_lowering', 'matmul')])
def test_a_checkpoint_from_before_a_new_field_resumes_at_its_old_value(
    field, other):
  """A checkpoint written before `field` existed ran at its old value."""
  older = {'learning_rate': 0.1}
  now = {'learning_rate': 0.1, **checkpoints.FIELDS_ADDED_LATER}
  checkpoints._check_same_run(older, now, 'here')  # pylint: disable=protected-access
  with pytest.raises(checkpoints.ResumeError,
                     match=f'{field}={checkpoints.FIELDS_ADDED_LATER[field]!r}'
                     f' there, {other!r} now'):
    checkpoints._check_same_run(  # pylint: disable=protected-access
        older, {**now, field: other}, 'here')


def test_completed_run_is_not_trained_again(idx_dir, tmp_path, caplog):
  caplog.set_level(logging.INFO)
  config = run_config(idx_dir, num_epochs=1)
  first = train.train_and_evaluate(config, str(tmp_path))
  again = train.train_and_evaluate(config, str(tmp_path))
  assert 'already complete' in caplog.text
  assert 'epoch 2' not in caplog.text  # a 1-epoch run has no epoch 2
  assert_same_params(first.params, again.params)
  assert len(step_log(tmp_path).splitlines()) == 1 + STEPS_PER_EPOCH


def test_keep_checkpoints_keeps_the_newest(idx_dir, tmp_path):
  train.train_and_evaluate(run_config(idx_dir, keep_checkpoints=2),
                           str(tmp_path))
  kept = sorted(int(p.name) for p in
                (tmp_path / checkpoints.CHECKPOINT_DIR).iterdir())
  assert kept == [3 * STEPS_PER_EPOCH, 4 * STEPS_PER_EPOCH]


def test_a_refused_resume_changes_nothing_in_the_workdir(idx_dir, tmp_path):
  train.train_and_evaluate(run_config(idx_dir, num_epochs=1), str(tmp_path))
  before = {path: path.read_bytes() for path in tmp_path.rglob('*')
            if path.is_file() and path.name != workdir.LOCK_FILE}
  with pytest.raises(errors.ResumeError):
    train.train_and_evaluate(
        run_config(idx_dir, num_epochs=1, learning_rate=0.2), str(tmp_path))
  after = {path: path.read_bytes() for path in tmp_path.rglob('*')
           if path.is_file() and path.name != workdir.LOCK_FILE}
  assert after == before  # config.json, CSVs, checkpoints, events


def test_a_failed_start_leaves_no_workdir(idx_dir, tmp_path):
  with pytest.raises(errors.ConfigError, match='config.batch_size=513'):
    train.train_and_evaluate(run_config(idx_dir, batch_size=513),
                             str(tmp_path / 'new'))
  with pytest.raises(errors.DataError):
    train.train_and_evaluate(run_config(tmp_path / 'no-data'),
                             str(tmp_path / 'new'))
  assert not (tmp_path / 'new').exists()


def flip_bytes_inside_the_largest_array_file(checkpoint):
  files = [p for p in (checkpoint / 'state').rglob('*') if p.is_file()]
  largest = max(files, key=lambda p: p.stat().st_size)
  data = bytearray(largest.read_bytes())
  middle = len(data) // 2
  data[middle:middle + 64] = bytes(b ^ 0x55 for b in data[middle:middle + 64])
  largest.write_bytes(bytes(data))


def test_flipped_bytes_are_caught_by_the_checksums_in_one_line(
    idx_dir, tmp_path, reference):
  workdir = tmp_path / 'flipped'
  subprocess.run(cli_args(idx_dir, workdir), check=True, capture_output=True,
                 timeout=300)
  newest = workdir / checkpoints.CHECKPOINT_DIR / str(EPOCHS * STEPS_PER_EPOCH)
  flip_bytes_inside_the_largest_array_file(newest)
  result = subprocess.run(cli_args(idx_dir, workdir), capture_output=True,
                          text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  damaged = [line for line in result.stderr.splitlines()
             if 'is damaged' in line]
  assert len(damaged) == 1, result.stderr[-3000:]
  assert 'Traceback' not in result.stderr
  assert 'Event loop is closed' not in result.stderr
  assert f'Resuming from the checkpoint at step {3 * STEPS_PER_EPOCH}' in (
      result.stderr)
  assert step_log(workdir) == step_log(reference)  # epoch 4 redone exactly


def test_a_checkpoint_of_another_structure_stops_and_moves_nothing(
    idx_dir, tmp_path, monkeypatch):
  config = run_config(idx_dir, num_epochs=1)
  train.train_and_evaluate(config, str(tmp_path))
  before = sorted(p.name for p in (tmp_path / 'checkpoints').iterdir())

  class WiderCNN(models.CNN):  # as if the code changed the model
    @nn.compact
    def __call__(self, x):
      x = x.reshape((x.shape[0], -1))
      return nn.Dense(features=self.num_classes)(nn.Dense(features=8)(x))

  monkeypatch.setattr(models, 'CNN', WiderCNN)
  with pytest.raises(errors.ResumeError, match='holds a state of another '
                     'structure than this code builds') as error:
    train.train_and_evaluate(config, str(tmp_path))
  assert 'nothing was moved' in str(error.value)
  assert sorted(p.name for p in (tmp_path / 'checkpoints').iterdir()) == before
  assert not (tmp_path / checkpoints.DAMAGED_DIR).exists()


def test_every_checkpoint_damaged_stops_instead_of_starting_over(idx_dir,
                                                                 tmp_path):
  config = run_config(idx_dir, num_epochs=2, keep_checkpoints=2)
  train.train_and_evaluate(config, str(tmp_path))
  for checkpoint in (tmp_path / 'checkpoints').iterdir():
    if checkpoint.name.isdigit():
      flip_bytes_inside_the_largest_array_file(checkpoint)
  with pytest.raises(errors.ResumeError, match='Every checkpoint in .* was '
                     'damaged'):
    train.train_and_evaluate(config, str(tmp_path))


def test_every_checkpoint_damaged_is_one_line_and_nothing_after(idx_dir,
                                                                tmp_path):
  """The command's output ends with the one line: no orbax teardown
  tracebacks from its background cleanup behind it."""
  args = cli_args(idx_dir, tmp_path, epochs=1)
  subprocess.run(args, check=True, capture_output=True, timeout=300)
  for checkpoint in (tmp_path / 'checkpoints').iterdir():
    if checkpoint.name.isdigit():
      flip_bytes_inside_the_largest_array_file(checkpoint)
  result = subprocess.run(args, capture_output=True, text=True, timeout=300)
  assert result.returncode == 1
  assert 'Traceback' not in result.stderr
  assert result.stderr.strip().splitlines()[-1].startswith(
      f'Error: Every checkpoint in {tmp_path / "checkpoints"} was damaged')


def test_a_full_disk_during_a_save_is_one_line_and_cleaned_up(
    idx_dir, tmp_path, monkeypatch):
  config = run_config(idx_dir, num_epochs=2, checkpoint_every_epochs=1)
  real_save = checkpoints.ocp.CheckpointManager.save

  def save_until_full(self, step, *args, **kwargs):
    if step <= STEPS_PER_EPOCH:
      return real_save(self, step, *args, **kwargs)
    partial = tmp_path / 'checkpoints' / f'{step}.orbax-checkpoint-tmp'
    (partial / 'state.orbax-checkpoint-tmp').mkdir(parents=True)
    raise ValueError('RESOURCE_EXHAUSTED: Error writing "params" in OCDBT '
                     'database: Failed writing: No space left on device')

  monkeypatch.setattr(checkpoints.ocp.CheckpointManager, 'save',
                      save_until_full)
  with pytest.raises(errors.WorkdirError) as error:
    train.train_and_evaluate(config, str(tmp_path))
  directory = tmp_path / 'checkpoints'
  assert str(error.value) == (
      f'No space left on the device while saving the checkpoint of step '
      f'{2 * STEPS_PER_EPOCH} in {directory} (its partial files were '
      f'removed); the last good checkpoint is step {STEPS_PER_EPOCH} in '
      f'{directory}. Free some space and run the same command to resume.')
  assert sorted(p.name for p in directory.iterdir()) == [str(STEPS_PER_EPOCH)]


def test_a_resume_on_changed_data_is_refused(idx_dir, tmp_path):
  data_dir = tmp_path / 'data'
  arrays = conftest.write_idx_dataset(data_dir)
  train.train_and_evaluate(run_config(data_dir, num_epochs=2),
                           str(tmp_path / 'run'))
  before = input_pipeline.load_idx_dir(data_dir).fingerprint
  images = arrays['train'][0].copy()
  images[0, 0, 0] ^= 1  # one pixel
  conftest.write_idx(data_dir / 'train-images-idx3-ubyte.gz', images)
  after = input_pipeline.load_idx_dir(data_dir).fingerprint
  with pytest.raises(errors.ResumeError) as error:
    train.train_and_evaluate(run_config(data_dir, num_epochs=2),
                             str(tmp_path / 'run'))
  assert f'data fingerprint {before} there, {after} now' in str(error.value)


def test_config_json_records_what_else_shapes_the_numbers(idx_dir, tmp_path):
  train.train_and_evaluate(run_config(idx_dir, num_epochs=1), str(tmp_path))
  recorded = json.loads((tmp_path / 'config.json').read_text())
  assert recorded['learning_rate'] == 0.1  # the config itself
  environment = recorded['run_environment']
  assert environment['data_fingerprint'] == (
      input_pipeline.load_idx_dir(idx_dir).fingerprint)
  assert environment['jax_version'] == jax.__version__
  assert environment['backend'] == 'cpu'
  assert environment['devices'] == 1  # the tests' CPU split
  assert environment['micro_batches'] == 1  # batch 32: one of 32 per device
  assert environment['steps_per_call'] == 1


def test_pausing_at_steps_then_finishing_is_the_uninterrupted_run(
    idx_dir, tmp_path, reference):
  """train_and_evaluate(..., until_step=S) stops at S with a checkpoint
  there; the same call without it finishes the very run (budgets/sweep.py's
  trunks rest on this)."""
  config = run_config(idx_dir)
  # Mid-epoch, the same step again, an epoch's end, mid-epoch again.
  for pause in (3, 3, 2 * STEPS_PER_EPOCH, 2 * STEPS_PER_EPOCH + 8):
    train.train_and_evaluate(config, str(tmp_path), until_step=pause)
    store = checkpoints.CheckpointStore(tmp_path, 3)
    assert max(store.steps()) == pause
    store.close()
    logged = step_log(tmp_path).splitlines()
    assert int(logged[-1].split(',')[0]) == pause - 1
  train.train_and_evaluate(config, str(tmp_path))
  assert step_log(tmp_path) == step_log(reference)
  assert_same_params(final_params(tmp_path, config),
                     final_params(reference, config))
