"""Plots a run from the CSV files `train.py` writes into its workdir.

  python tools/plot_run.py --workdir=runs/default   # writes runs/default/curves.png

Every finished run already writes curves.png; this redraws it, e.g. for a run
still in progress or one that was interrupted. Three panels: the learning rate
the optimizer applied at every step (epoch boundaries dotted), the per-step
training loss (log scale), and the test accuracy after every epoch.
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
# pylint: disable=g-import-not-at-top,wrong-import-position

from absl import flags

from machinery import cli
from machinery import plots
from machinery import run_logs

flags.DEFINE_string('workdir', None, 'A run\'s workdir (holds the CSV logs).')
flags.DEFINE_string('output', None, 'PNG path; default WORKDIR/curves.png.')
flags.mark_flag_as_required('workdir')


def main(argv):
  del argv
  if not pathlib.Path(flags.FLAGS.workdir).is_dir():
    sys.exit(f'Error: --workdir={flags.FLAGS.workdir} is not a folder.')
  output = flags.FLAGS.output or str(
      pathlib.Path(flags.FLAGS.workdir) / run_logs.CURVES_PNG)
  problem = plots.output_problem(output)
  if problem:
    sys.exit(f'Error: {problem}.')
  with cli.one_line_errors():
    plots.plot_run(flags.FLAGS.workdir, output)
  print(f'Wrote {output}')


if __name__ == '__main__':
  cli.run(main)
