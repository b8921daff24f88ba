"""Plots a finished run from the CSV files `train.py` writes into its workdir.

  python plot_run.py --workdir=runs/default            # writes runs/default/curves.png

Three panels: the learning rate the optimizer applied at every step (epoch
boundaries dotted), the per-step training loss (log scale), and the test
accuracy after every epoch.
"""

import csv
import pathlib

from absl import app
from absl import flags
import matplotlib

matplotlib.use('Agg')  # files only; no display needed
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

import train

flags.DEFINE_string('workdir', None, 'A run\'s workdir (holds the CSV logs).')
flags.DEFINE_string('output', None, 'PNG path; default WORKDIR/curves.png.')
flags.mark_flag_as_required('workdir')


def read_columns(path) -> dict:
  """A CSV file as {column: np.ndarray of float}."""
  with open(path, newline='') as f:
    rows = list(csv.DictReader(f))
  if not rows:
    raise ValueError(f'{path} holds no rows yet.')
  return {key: np.array([float(row[key]) for row in rows]) for key in rows[0]}


def plot_run(workdir, output) -> None:
  workdir = pathlib.Path(workdir)
  steps = read_columns(workdir / train.STEP_LOG)
  epochs = read_columns(workdir / train.EPOCH_LOG)
  fig = plt.figure(figsize=(8, 8), constrained_layout=True)
  ax_lr = fig.add_subplot(3, 1, 1)
  ax_loss = fig.add_subplot(3, 1, 2, sharex=ax_lr)
  ax_acc = fig.add_subplot(3, 1, 3)
  ax_lr.plot(steps['step'], steps['learning_rate'], color='tab:blue')
  ax_lr.set_ylabel('learning rate')
  ax_loss.plot(steps['step'], steps['loss'], color='tab:orange', lw=0.6)
  ax_loss.set_yscale('log')
  ax_loss.set_ylabel('train loss (per step)')
  ax_loss.set_xlabel('step')
  for boundary in epochs['step'][:-1]:
    for ax in (ax_lr, ax_loss):
      ax.axvline(boundary, color='gray', ls=':', lw=0.8)
  ax_acc.plot(epochs['epoch'], 100 * epochs['test_accuracy'], 'o-',
              color='tab:green')
  ax_acc.set_xlabel('epoch')
  ax_acc.set_ylabel('test accuracy (%)')
  best = int(np.argmax(epochs['test_accuracy']))
  ax_acc.annotate(f'{100 * epochs["test_accuracy"][best]:.2f}%',
                  (epochs['epoch'][best], 100 * epochs['test_accuracy'][best]),
                  textcoords='offset points', xytext=(0, -14), ha='center')
  fig.suptitle(f'{workdir.name}: learning rate, loss and test accuracy')
  fig.savefig(output, dpi=100)
  plt.close(fig)


def main(argv):
  del argv
  output = flags.FLAGS.output or str(
      pathlib.Path(flags.FLAGS.workdir) / 'curves.png')
  plot_run(flags.FLAGS.workdir, output)
  print(f'Wrote {output}')


if __name__ == '__main__':
  app.run(main)
