"""TensorBoard events, CSV records and progress reports of a run."""

import csv
import logging
import struct

import numpy as np
import pytest
from tensorboardX.proto import event_pb2

from conftest import small_config, TRAIN_SIZE
from machinery import progress
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


def test_progress_lines_without_a_terminal(caplog):
  caplog.set_level(logging.INFO)
  report = progress.EpochProgress(3, 10, total_steps=400, done_steps=100,
                                  bar=False)
  report.update(100, loss=0.25, learning_rate=0.05)
  report.close()
  line = caplog.records[-1].getMessage()
  assert line.startswith('epoch 3/10: step 200/400 (50%), ')
  assert 'steps/s, ETA ' in line and 'loss 0.2500, lr 0.05' in line


def test_progress_bar_on_a_terminal(capsys):
  report = progress.EpochProgress(1, 2, total_steps=50, done_steps=0,
                                  bar=True)
  report.update(25, loss=1.5, learning_rate=0.1)
  report.update(25, loss=0.5, learning_rate=0.05)
  report.close()
  err = capsys.readouterr().err
  assert 'epoch 1/2' in err and '50/50' in err
  assert 'step/s' in err and 'loss=0.5000' in err and '\r' in err


@pytest.mark.parametrize('setting,isatty,expected', [
    ('auto', True, True), ('auto', False, False), ('always', False, True),
    ('never', True, False)])
def test_bar_only_on_a_terminal(monkeypatch, setting, isatty, expected):
  monkeypatch.setattr(progress.sys.stderr, 'isatty', lambda: isatty)
  assert progress.use_bar(setting) is expected


def test_train_epoch_resumes_mid_epoch_and_reports_every_n_steps(idx_dir):
  config = small_config(idx_dir, batch_size=32)
  data = train.input_pipeline.load_datasets(config)
  lr_fn = train.create_learning_rate_fn(config, 0.1, TRAIN_SIZE // 32)
  state = train.create_train_state(train.jax.random.key(0), config, lr_fn)
  state = state.replace(step=state.step + 3)  # as if resumed at step 3
  reports = []
  state, stopped = train.train_epoch(
      state, data.train, 32, train.jax.random.key(1), lr_fn,
      report=lambda first, m: reports.append((first, len(m['loss']))),
      report_every=5)
  assert not stopped
  assert reports == [(3, 5), (8, 5), (13, 3)]  # steps 3..15 of 16
  assert int(state.step) == 16
