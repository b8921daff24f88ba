"""A run's records: TensorBoard events and CSV files (machinery/run_logs.py)."""

import csv
import struct

import numpy as np
import pytest
from tensorboardX.proto import event_pb2

from conftest import small_config
from conftest import TRAIN_SIZE
from machinery import errors
from machinery import run_logs
import train


def read_events(logdir):
  """{tag: [(step, value)]} from every event file under `logdir`.

  Event files are TFRecords: u64 length, u32 length CRC, the serialized
  Event, u32 data CRC. Parsed by hand so the test needs no TensorFlow.
  """
  scalars = {}
  for path in sorted(logdir.glob('events.out.tfevents.*')):
    data = path.read_bytes()
    offset = 0
    while offset < len(data):
      (length,) = struct.unpack('<Q', data[offset:offset + 8])
      event = event_pb2.Event.FromString(
          data[offset + 12:offset + 12 + length])
      offset += 12 + length + 4
      for value in event.summary.value:
        scalars.setdefault(value.tag, []).append(
            (event.step, value.simple_value))
  return scalars


def read_csv_columns(path):
  with open(path, newline='') as f:
    return list(csv.DictReader(f))


def test_tensorboard_events_hold_the_logged_values(idx_dir, tmp_path):
  config = small_config(idx_dir, num_epochs=2, batch_size=32)
  train.train_and_evaluate(config, str(tmp_path))
  events = read_events(tmp_path / run_logs.TENSORBOARD_DIR)
  steps = read_csv_columns(tmp_path / run_logs.STEP_LOG)
  for key in ('learning_rate', 'loss', 'accuracy'):
    logged = events[f'train/{key}']
    assert [s for s, _ in logged] == [int(r['step']) for r in steps]
    np.testing.assert_array_equal(
        np.float32([v for _, v in logged]),
        np.float32([float(r[key]) for r in steps]))
  epochs = read_csv_columns(tmp_path / run_logs.EPOCH_LOG)
  for tag, key in (('test/accuracy', 'test_accuracy'),
                   ('test/loss', 'test_loss'),
                   ('train/epoch_loss', 'train_loss')):
    assert [s for s, _ in events[tag]] == [int(r['step']) for r in epochs]
    np.testing.assert_allclose([v for _, v in events[tag]],
                               [float(r[key]) for r in epochs], rtol=1e-6)


def test_tensorboard_can_be_turned_off(idx_dir, tmp_path):
  config = small_config(idx_dir, num_epochs=1, tensorboard=False)
  train.train_and_evaluate(config, str(tmp_path))
  assert not (tmp_path / run_logs.TENSORBOARD_DIR).exists()


def test_writer_on_resume_drops_rows_from_the_resume_step(tmp_path):
  writer = run_logs.MetricsWriter(tmp_path, tensorboard=False)
  metrics = {'learning_rate': np.arange(10) * 0.01, 'loss': np.ones(10),
             'accuracy': np.zeros(10)}
  writer.write_steps(1, 0, {k: v[:5] for k, v in metrics.items()})
  writer.write_epoch({key: 0 for key in run_logs.EPOCH_FIELDS} | {
      'epoch': 1, 'step': 5})
  writer.write_steps(2, 5, {k: v[5:] for k, v in metrics.items()})
  writer.close()
  # As after a kill -9 at step 10 with the newest checkpoint at step 7.
  resumed = run_logs.MetricsWriter(tmp_path, resume_step=7,
                                   tensorboard=False)
  resumed.write_steps(2, 7, {k: v[7:] for k, v in metrics.items()})
  summary = resumed.epoch_train_metrics()
  resumed.close()
  rows = read_csv_columns(tmp_path / run_logs.STEP_LOG)
  assert [int(r['step']) for r in rows] == list(range(10))
  assert [int(r['epoch']) for r in rows] == [1] * 5 + [2] * 5
  # Epoch 2's summary covers its steps from before and after the resume.
  assert summary['learning_rate_first'] == pytest.approx(0.05)
  assert summary['learning_rate_last'] == pytest.approx(0.09)
  assert len(read_csv_columns(tmp_path / run_logs.EPOCH_LOG)) == 1




def test_a_restart_from_step_0_leaves_each_step_once_in_tensorboard(
    idx_dir, tmp_path, monkeypatch):
  """Killed before its first checkpoint, the run starts over from step 0."""
  config = small_config(idx_dir, num_epochs=2, log_every_steps=4,
                        checkpoint_every_epochs=0)
  real_write = run_logs.MetricsWriter.write_steps

  def crash_after_some_steps(self, epoch, first_step, metrics):
    real_write(self, epoch, first_step, metrics)
    if first_step >= 8:
      self.flush()
      raise SystemExit('simulated crash')

  monkeypatch.setattr(run_logs.MetricsWriter, 'write_steps',
                      crash_after_some_steps)
  with pytest.raises(SystemExit):
    train.train_and_evaluate(config, str(tmp_path))
  monkeypatch.undo()
  train.train_and_evaluate(config, str(tmp_path))
  steps = [step for step, _ in
           read_events(tmp_path / run_logs.TENSORBOARD_DIR)['train/loss']]
  assert steps == list(range(2 * (TRAIN_SIZE // 32)))


def test_resume_purges_events_at_and_after_the_resume_step(tmp_path):
  writer = run_logs.MetricsWriter(tmp_path, 0)
  writer.write_steps(1, 0, {key: np.arange(10.0) for key in
                            run_logs.STEP_SCALARS})
  writer.close()
  run_logs.MetricsWriter(tmp_path, 6).close()
  steps = [step for step, _ in
           read_events(tmp_path / run_logs.TENSORBOARD_DIR)['train/loss']]
  assert steps == [0, 1, 2, 3, 4, 5]


def test_a_damaged_record_is_one_line_on_resume(tmp_path):
  (tmp_path / run_logs.STEP_LOG).write_text(
      'step,epoch,learning_rate,loss,accuracy\n0,1,0.1,2.3,0.1\n1,1,x,y,z\n')
  with pytest.raises(errors.WorkdirError,
                     match=r'train_steps.csv is damaged: line 3 is not a row '
                     'of numbers'):
    run_logs.MetricsWriter(tmp_path, resume_step=2, tensorboard=False)


def test_a_writer_whose_tensorboard_fails_leaves_no_file_open(tmp_path,
                                                              monkeypatch):
  import tensorboardX  # pylint: disable=g-import-not-at-top
  opened = []
  real_open = run_logs.files.open_append

  def tracked(path, newline=''):
    opened.append(real_open(path, newline))
    return opened[-1]

  def broken(*args, **kwargs):
    raise OSError('no event file today')

  monkeypatch.setattr(run_logs.files, 'open_append', tracked)
  monkeypatch.setattr(tensorboardX, 'SummaryWriter', broken)
  with pytest.raises(OSError, match='no event file today'):
    run_logs.MetricsWriter(tmp_path, tensorboard=True)
  assert len(opened) == 2 and all(f.closed for f in opened)


def test_a_damaged_config_json_is_one_line(tmp_path):
  (tmp_path / run_logs.CONFIG_JSON).write_text('[1, 2')
  with pytest.raises(errors.WorkdirError, match='config.json is damaged'):
    run_logs.read_config(tmp_path)
