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
import gzip
import json
import pathlib
import struct
import time

import numpy as np

from machinery import files
from machinery.errors import WorkdirError

# The names of a run's files in its workdir; plots and tools read them here.
STEP_LOG = 'train_steps.csv'
EPOCH_LOG = 'epochs.csv'
CURVES_PNG = 'curves.png'
CONFIG_JSON = 'config.json'
# Written when a run's loss or parameters stop being finite: its message.
DIVERGED = 'diverged.txt'
TENSORBOARD_DIR = 'tensorboard'
STEP_FIELDS = ('step', 'epoch', 'learning_rate', 'loss', 'accuracy')
EPOCH_FIELDS = ('epoch', 'step', 'learning_rate_first', 'learning_rate_last',
                'train_loss', 'train_accuracy', 'test_loss', 'test_accuracy',
                'epoch_time_s', 'images_per_s', 'elapsed_s')
STEP_SCALARS = ('learning_rate', 'loss', 'accuracy')


def read_columns(path, allow_empty=False, fields=()) -> dict:
  """A CSV file as {column: np.ndarray of float}.

  Raises:
    WorkdirError: the file is missing, lacks one of `fields` in its header
      (an empty or cut file), holds a row that is not numbers, or holds no
      rows and must.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise WorkdirError(f'{path.parent} holds no run records ({path.name} is '
                       'missing): is it the --workdir of a run?')
  opener = gzip.open if path.suffix == '.gz' else open
  with opener(path, 'rt', newline='') as f:
    reader = csv.DictReader(f)
    rows = list(reader)
    header = reader.fieldnames or ()
  missing = [name for name in fields if name not in header]
  if missing:
    raise WorkdirError(f'{path} is damaged: its header lacks '
                       f'{", ".join(missing)}. Restore it, or use a new '
                       '--workdir.')
  if not rows and not allow_empty:
    raise WorkdirError(f'{path} holds no rows yet: the run has not recorded '
                       'a step.')
  _check_numbers(path, rows, header)
  return {key: np.array([float(row[key]) for row in rows]) for key in header}


def _check_numbers(path, rows, fields) -> None:
  """One line naming the first row whose `fields` are not all numbers."""
  for line, row in enumerate(rows, start=2):
    if not all(_is_number(row.get(key)) for key in fields):
      raise WorkdirError(f'{path} is damaged: line {line} is not a row of '
                         'numbers. Restore it, or use a new --workdir.')


def _is_number(text) -> bool:
  try:
    float(text)
    return True
  except (TypeError, ValueError):
    return False


def read_steps(workdir) -> dict:
  """A run's train_steps.csv as columns (at least one step); a published
  run may hold it compressed, as train_steps.csv.gz."""
  path = pathlib.Path(workdir) / STEP_LOG
  compressed = path.with_name(STEP_LOG + '.gz')
  if not path.is_file() and compressed.is_file():
    path = compressed
  return read_columns(path, fields=STEP_FIELDS)


def read_epochs(workdir, allow_empty=False) -> dict:
  """A run's epochs.csv as columns."""
  return read_columns(pathlib.Path(workdir) / EPOCH_LOG, allow_empty,
                      EPOCH_FIELDS)


def write_config(workdir, config, environment=None) -> None:
  """config.json: the config's fields, and under 'run_environment' what
  else shaped the numbers (data fingerprint, versions, devices)."""
  fields = json.loads(config.to_json_best_effort())
  if environment:
    fields['run_environment'] = environment
  files.write_text(pathlib.Path(workdir) / CONFIG_JSON,
                   json.dumps(fields, indent=2))


def read_config(workdir) -> dict:
  """A run's config.json as written by write_config ({} if there is none;
  a symlink is not one a run wrote, and is not read).

  Raises:
    WorkdirError: the file is not a JSON object (damaged or hand-edited).
  """
  path = pathlib.Path(workdir) / CONFIG_JSON
  if path.is_symlink() or not path.is_file():
    return {}
  try:
    fields = json.loads(path.read_text())
  except (ValueError, UnicodeDecodeError):
    fields = None
  if not isinstance(fields, dict):
    raise WorkdirError(f'{path} is damaged: it is not the JSON object a run '
                       'writes. Restore it, or use a new --workdir.')
  return fields


def write_diverged(workdir, message: str) -> None:
  files.write_text(pathlib.Path(workdir) / DIVERGED, message + '\n')


def clear_diverged(workdir) -> None:
  """Forgets an earlier divergence when the run trains again."""
  path = pathlib.Path(workdir) / DIVERGED
  if path.is_file() and not path.is_symlink():
    path.unlink()


def read_diverged(workdir) -> str | None:
  """The message of a run that diverged, or None."""
  path = pathlib.Path(workdir) / DIVERGED
  if path.is_file() and not path.is_symlink():
    return path.read_text().strip()
  return None


def _rows(path, fields):
  """The rows of a record file being continued; a link is not ours: none."""
  if path.is_symlink() or not path.exists():
    return []
  with open(path, newline='') as f:
    rows = list(csv.DictReader(f))
  _check_numbers(path, rows, fields)
  return rows


def _rewrite(path, fields, rows):
  """Replaces `path` atomically with `rows` under a header."""
  with files.replacing(path, newline='') as f:
    writer = csv.DictWriter(f, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)


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
    if path.is_symlink() or not path.is_file():
      continue  # not written by a run: neither read nor removed
    if resume_step == 0:
      path.unlink()
      continue
    kept = b''.join(record for step, record in
                    _event_records(path.read_bytes()) if step < resume_step)
    files.write_bytes(path, kept)


def _tensorboard_writer(directory, resume_step):
  import tensorboardX  # pylint: disable=g-import-not-at-top
  if directory.is_symlink():
    raise files.link_error(directory)
  purge_events(directory, resume_step)
  return tensorboardX.SummaryWriter(
      str(directory), purge_step=resume_step if resume_step else None,
      # Event files are named by the second; a restart within the same
      # second would otherwise overwrite the file it just purged.
      filename_suffix=f'.{time.time_ns()}')


def truncate_records(workdir, step: int) -> tuple[list, list]:
  """Cuts `workdir`'s train_steps.csv to the steps before `step` and its
  epochs.csv to the epochs ended by then: the records of a run resuming
  from its checkpoint at `step`. Returns the rows kept (steps, epochs)."""
  workdir = pathlib.Path(workdir)
  step_path, epoch_path = workdir / STEP_LOG, workdir / EPOCH_LOG
  kept_steps = [r for r in _rows(step_path, STEP_FIELDS)
                if int(r['step']) < step]
  kept_epochs = [r for r in _rows(epoch_path, EPOCH_FIELDS)
                 if int(r['step']) <= step]
  _rewrite(step_path, STEP_FIELDS, kept_steps)
  _rewrite(epoch_path, EPOCH_FIELDS, kept_epochs)
  return kept_steps, kept_epochs


class MetricsWriter:
  """Appends a run's records in `workdir`, continuing one that resumed."""

  def __init__(self, workdir, resume_step: int = 0, tensorboard: bool = True):
    workdir = pathlib.Path(workdir)
    step_path, epoch_path = workdir / STEP_LOG, workdir / EPOCH_LOG
    kept_steps, kept_epochs = truncate_records(workdir, resume_step)
    # The rows of the epoch in progress, for its train loss and accuracy.
    last_epoch_end = int(kept_epochs[-1]['step']) if kept_epochs else 0
    self._epoch_rows = [
        {key: float(r[key]) for key in STEP_SCALARS}
        for r in kept_steps if int(r['step']) >= last_epoch_end]
    self._tb = None
    self._step_file = files.open_append(step_path)
    try:
      self._epoch_file = files.open_append(epoch_path)
    except BaseException:
      self._step_file.close()
      raise
    self._steps = csv.writer(self._step_file)
    self._epochs = csv.writer(self._epoch_file)
    if tensorboard:
      try:
        self._tb = _tensorboard_writer(workdir / TENSORBOARD_DIR, resume_step)
      except BaseException:  # nothing left open behind a failed start
        self._step_file.close()
        self._epoch_file.close()
        raise

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
