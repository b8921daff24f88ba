"""A run's records: per-step and per-epoch CSV files and TensorBoard events.

train_steps.csv has one row per optimizer step (step, epoch, learning_rate,
loss, accuracy); epochs.csv one row per epoch. Values are written with `repr`,
so a learning rate read back is exactly the float32 the optimizer used.

TensorBoard event files go to workdir/tensorboard, written by tensorboardX
(no TensorFlow needed): train/learning_rate, train/loss, train/accuracy per
step; test/loss, test/accuracy, train/epoch_loss, train/epoch_accuracy per
epoch (the x axis is the global step throughout).

On resume from step s, rows at or after s are dropped from the CSV files and
events at or after s from the TensorBoard files (a restart from step 0 drops
them all), so the records have neither a gap nor a repeated step however the
previous process ended.
"""

import csv
import json
import os
import pathlib
import struct
import time

import numpy as np

from machinery.errors import WorkdirError

# The names of a run's files in its workdir; plots and tools read them here.
STEP_LOG = 'train_steps.csv'
EPOCH_LOG = 'epochs.csv'
CURVES_PNG = 'curves.png'
CONFIG_JSON = 'config.json'
TENSORBOARD_DIR = 'tensorboard'
STEP_FIELDS = ('step', 'epoch', 'learning_rate', 'loss', 'accuracy')
EPOCH_FIELDS = ('epoch', 'step', 'learning_rate_first', 'learning_rate_last',
                'train_loss', 'train_accuracy', 'test_loss', 'test_accuracy',
                'epoch_time_s', 'images_per_s', 'elapsed_s')
STEP_SCALARS = ('learning_rate', 'loss', 'accuracy')


def read_columns(path, allow_empty=False) -> dict:
  """A CSV file as {column: np.ndarray of float}.

  Raises:
    WorkdirError: the file is missing, or holds no rows and must.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise WorkdirError(f'{path.parent} holds no run records ({path.name} is '
                       'missing): is it the --workdir of a run?')
  with open(path, newline='') as f:
    reader = csv.DictReader(f)
    rows = list(reader)
    fields = reader.fieldnames or ()
  if not rows and not allow_empty:
    raise WorkdirError(f'{path} holds no rows yet: the run has not recorded '
                       'a step.')
  return {key: np.array([float(row[key]) for row in rows]) for key in fields}


def read_steps(workdir) -> dict:
  """A run's train_steps.csv as columns (at least one step)."""
  return read_columns(pathlib.Path(workdir) / STEP_LOG)


def read_epochs(workdir, allow_empty=False) -> dict:
  """A run's epochs.csv as columns."""
  return read_columns(pathlib.Path(workdir) / EPOCH_LOG, allow_empty)


def write_config(workdir, config, environment=None) -> None:
  """config.json: the config's fields, and under 'run_environment' what
  else shaped the numbers (data fingerprint, versions, devices)."""
  fields = json.loads(config.to_json_best_effort())
  if environment:
    fields['run_environment'] = environment
  (pathlib.Path(workdir) / CONFIG_JSON).write_text(
      json.dumps(fields, indent=2))


def read_config(workdir) -> dict:
  """A run's config.json as written by write_config ({} if there is none)."""
  path = pathlib.Path(workdir) / CONFIG_JSON
  return json.loads(path.read_text()) if path.is_file() else {}


def _rows(path):
  if not path.exists():
    return []
  with open(path, newline='') as f:
    return list(csv.DictReader(f))


def _rewrite(path, fields, rows):
  """Replaces `path` atomically with `rows` under a header."""
  partial = path.with_name(path.name + '.partial')
  with open(partial, 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
  os.replace(partial, path)


def _event_records(data):
  """(step, record bytes) for each record of a TensorBoard event file.

  Event files are TFRecords: u64 length, u32 length CRC, a serialized Event,
  u32 data CRC. Records are kept or dropped whole, so no CRC is recomputed.
  """
  from tensorboardX.proto import event_pb2  # pylint: disable=g-import-not-at-top
  offset = 0
  while offset + 12 <= len(data):
    (length,) = struct.unpack('<Q', data[offset:offset + 8])
    end = offset + 12 + length + 4
    if end > len(data):  # a record cut short by a crash: drop it
      return
    event = event_pb2.Event.FromString(data[offset + 12:offset + 12 + length])
    yield event.step, data[offset:end]
    offset = end


def purge_events(directory, resume_step: int) -> None:
  """Drops every event at or after `resume_step` from the event files."""
  directory = pathlib.Path(directory)
  for path in sorted(directory.glob('events.out.tfevents.*')):
    if resume_step == 0:
      path.unlink()
      continue
    kept = b''.join(record for step, record in
                    _event_records(path.read_bytes()) if step < resume_step)
    partial = path.with_name(path.name + '.partial')
    partial.write_bytes(kept)
    os.replace(partial, path)


class MetricsWriter:
  """Appends a run's records in `workdir`, continuing one that resumed."""

  def __init__(self, workdir, resume_step: int = 0, tensorboard: bool = True):
    workdir = pathlib.Path(workdir)
    step_path, epoch_path = workdir / STEP_LOG, workdir / EPOCH_LOG
    kept_steps = [r for r in _rows(step_path) if int(r['step']) < resume_step]
    kept_epochs = [r for r in _rows(epoch_path)
                   if int(r['step']) <= resume_step]
    _rewrite(step_path, STEP_FIELDS, kept_steps)
    _rewrite(epoch_path, EPOCH_FIELDS, kept_epochs)
    # The rows of the epoch in progress, for its train loss and accuracy.
    last_epoch_end = int(kept_epochs[-1]['step']) if kept_epochs else 0
    self._epoch_rows = [
        {key: float(r[key]) for key in STEP_SCALARS}
        for r in kept_steps if int(r['step']) >= last_epoch_end]
    self._step_file = open(step_path, 'a', newline='')
    self._epoch_file = open(epoch_path, 'a', newline='')
    self._steps = csv.writer(self._step_file)
    self._epochs = csv.writer(self._epoch_file)
    self._tb = None
    if tensorboard:
      import tensorboardX  # pylint: disable=g-import-not-at-top
      purge_events(workdir / TENSORBOARD_DIR, resume_step)
      self._tb = tensorboardX.SummaryWriter(
          str(workdir / TENSORBOARD_DIR),
          purge_step=resume_step if resume_step else None,
          # Event files are named by the second; a restart within the same
          # second would otherwise overwrite the file it just purged.
          filename_suffix=f'.{time.time_ns()}')

  def write_steps(self, epoch, first_step, step_metrics):
    """Rows for steps first_step, first_step + 1, ...; {name: array}."""
    for i in range(len(step_metrics['loss'])):
      values = {key: float(step_metrics[key][i]) for key in STEP_SCALARS}
      self._epoch_rows.append(values)
      self._steps.writerow([first_step + i, epoch] +
                           [repr(values[key]) for key in STEP_SCALARS])
      if self._tb:
        for key in STEP_SCALARS:
          self._tb.add_scalar(f'train/{key}', values[key], first_step + i)
    self._step_file.flush()

  def epoch_train_metrics(self) -> dict:
    """Mean loss and accuracy, first and last rate, of the epoch's steps."""
    rows = self._epoch_rows
    return {
        'learning_rate_first': rows[0]['learning_rate'],
        'learning_rate_last': rows[-1]['learning_rate'],
        'train_loss': float(np.mean([r['loss'] for r in rows])),
        'train_accuracy': float(np.mean([r['accuracy'] for r in rows])),
    }

  def write_epoch(self, summary: dict):
    self._epochs.writerow([summary[key] for key in EPOCH_FIELDS])
    self._epoch_file.flush()
    if self._tb:
      step = summary['step']
      self._tb.add_scalar('test/loss', summary['test_loss'], step)
      self._tb.add_scalar('test/accuracy', summary['test_accuracy'], step)
      self._tb.add_scalar('train/epoch_loss', summary['train_loss'], step)
      self._tb.add_scalar('train/epoch_accuracy', summary['train_accuracy'],
                          step)
      self._tb.flush()
    self._epoch_rows = []

  def flush(self):
    self._step_file.flush()
    self._epoch_file.flush()
    if self._tb:
      self._tb.flush()

  def close(self):
    self._step_file.close()
    self._epoch_file.close()
    if self._tb:
      self._tb.close()
