"""Trains the same model, data and seed under several schedules, side by side.

  python tools/compare_schedules.py --config=configs/default.py --workdir=runs/compare

Runs `train.train_and_evaluate` once per schedule in --schedules (each in
WORKDIR/<schedule>), then writes WORKDIR/comparison.md (final and best test
accuracy, epochs and seconds to reach --target_accuracy, total seconds of
training and evaluation, compilation included; data loading is not)
and WORKDIR/comparison.png (test accuracy per epoch). Only `config.schedule`
changes between runs, except that `constant` runs without warmup: it stands
for the plain fixed rate the seed argues against. Override any other field as
usual, e.g. --config.num_epochs=5.
"""

import dataclasses
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
# pylint: disable=g-import-not-at-top,wrong-import-position

from absl import flags
from absl import logging
import numpy as np

from machinery import cli
from machinery import errors
from machinery import plots
from machinery import run_logs
from machinery import validation
from machinery import workdir as workdir_lib
import schedules
import train

FLAGS = flags.FLAGS

flags.DEFINE_string('workdir', None, 'Parent folder of the runs and results.')
flags.DEFINE_list('schedules', ['constant', 'warmup_cosine', 'sgdr'],
                  'Schedules to compare, in order.')
flags.DEFINE_float('target_accuracy', 0.99,
                   'Test accuracy the time-to-target columns refer to.',
                   lower_bound=0, upper_bound=1)
flags.mark_flag_as_required('workdir')
cli.define_config_flag()

TABLE_NAME = 'comparison.md'
PNG_NAME = 'comparison.png'


@dataclasses.dataclass
class RunSummary:
  schedule: str
  description: str
  epochs: np.ndarray
  test_accuracy: np.ndarray
  epoch_time_s: np.ndarray  # training + evaluation, compile included

  @property
  def train_time_s(self):
    return float(self.epoch_time_s.sum())

  def epochs_to(self, target):
    """First epoch whose test accuracy reaches `target`, or None."""
    hits = np.flatnonzero(self.test_accuracy >= target)
    return int(self.epochs[hits[0]]) if hits.size else None

  def time_to(self, target):
    """Training + evaluation seconds until `epochs_to(target)`, or None."""
    epoch = self.epochs_to(target)
    return None if epoch is None else float(
        self.epoch_time_s[:epoch].sum())


def config_for(base, schedule):
  """`base` with only the schedule (and, for constant, the warmup) changed."""
  config = base.copy_and_resolve_references()
  with config.unlocked():
    config.schedule = schedule
    if schedule == 'constant':
      config.warmup_epochs = 0.0
  return config


def run_one(base, schedule, workdir) -> RunSummary:
  config = config_for(base, schedule)
  train.train_and_evaluate(config, str(workdir))
  epochs = run_logs.read_epochs(workdir)
  steps_per_epoch = int(epochs['step'][0])
  return RunSummary(schedule, schedules.describe(config, steps_per_epoch),
                    epochs['epoch'], epochs['test_accuracy'],
                    epochs['epoch_time_s'])


def markdown_table(runs, target) -> str:
  """The comparison as a markdown table plus one line per schedule."""
  pct = f'{100 * target:g}%'
  lines = [f'| schedule | final test acc. | best test acc. (epoch) | '
           f'epochs to {pct} | time to {pct} | train + eval time |',
           '|---|---|---|---|---|---|']
  for run in runs:
    best = int(np.argmax(run.test_accuracy))
    epochs_to, time_to = run.epochs_to(target), run.time_to(target)
    lines.append(
        f'| `{run.schedule}` | {100 * run.test_accuracy[-1]:.2f}% | '
        f'{100 * run.test_accuracy[best]:.2f}% ({int(run.epochs[best])}) | '
        f'{epochs_to if epochs_to else "not reached"} | '
        f'{f"{time_to:.0f} s" if time_to else "-"} | '
        f'{run.train_time_s:.0f} s |')
  lines.append('')
  lines.extend(f'- `{run.schedule}`: {run.description}' for run in runs)
  return '\n'.join(lines) + '\n'


def main(argv):
  del argv
  base = FLAGS.config
  workdir = pathlib.Path(FLAGS.workdir)
  with cli.one_line_errors():
    if not FLAGS.schedules:
      raise errors.ConfigError('--schedules is empty: name at least one, '
                               'e.g. --schedules=constant,warmup_cosine.')
    workdir_lib.check_usable(workdir)
    for schedule in FLAGS.schedules:
      validation.validate_config(config_for(base, schedule))
    runs = []
    for schedule in FLAGS.schedules:
      logging.info('=== %s ===', schedule)
      runs.append(run_one(base, schedule, workdir / schedule))
  table = markdown_table(runs, FLAGS.target_accuracy)
  (workdir / TABLE_NAME).write_text(table)
  plots.plot_comparison(
      {run.schedule: (run.epochs, run.test_accuracy) for run in runs},
      FLAGS.target_accuracy, workdir / PNG_NAME)
  print(table)
  print(f'Wrote {workdir / TABLE_NAME} and {workdir / PNG_NAME}')


if __name__ == '__main__':
  cli.run(main)
