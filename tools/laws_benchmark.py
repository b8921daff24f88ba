"""The frozen schedule-law benchmark, measured (docs/laws/benchmark.json).

  python tools/laws_benchmark.py \
      --runs=language_model=$HOME/studies/laws_lm \
      --runs=fashion_mnist=$HOME/studies/laws_fashion --output=docs/laws

--runs: TASK=FOLDER[,FOLDER...]: study or budget-sweep workdirs, or their
--carry folders (members/* or seed*/budget*, each with config.json,
epochs.csv and train_steps.csv[.gz]) holding
the task's benchmark runs, e.g. docs/laws/run_benchmark.sh's studies. A run
is found by its config (configs/laws_benchmark.py:TASK:NAME with its seed),
wherever it lies. Every law of laws.py is fitted on the fit set and scored
on every held-out schedule whose seeds have all finished (prediction_
benchmark.py says how). Writes, per task named, <task>_results.json and
<task>_results.md (its table and verdict), <task>_predicted.png (predicted
against measured final levels), <task>_curves.png (each held-out
schedule's curve, measured and predicted by each law) and
<task>_optimized.schedule.json into --output, and prints the tables. Each
task's files are its own: one task can be measured while the other's
ground truth still trains.
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
# pylint: disable=g-import-not-at-top,wrong-import-position

from absl import flags

from configs import laws_benchmark
from machinery import cli
from machinery import errors
import laws
import prediction_benchmark

FLAGS = flags.FLAGS

flags.DEFINE_multi_string('runs', [], 'TASK=FOLDER[,FOLDER...] (repeat per '
                          'task).')
flags.DEFINE_string('output', 'docs/laws', 'Folder for each task\'s '
                    'results and pictures.')
flags.DEFINE_list('laws', list(laws.LAWS), 'Which laws to score.')


def parse_runs(values) -> dict:
  """['language_model=a,b'] -> {'language_model': ['a', 'b']}."""
  known = laws_benchmark.tasks()
  out = {}
  for value in values:
    task, sep, folders = value.partition('=')
    if not sep or task not in known or not folders:
      raise errors.ConfigError(
          f'--runs={value} is invalid: write TASK=FOLDER[,FOLDER...] with '
          f'TASK one of {", ".join(known)}')
    for folder in folders.split(','):
      if not any(any(pathlib.Path(folder).glob(pattern)) for pattern in
                 prediction_benchmark.RUN_FOLDERS):
        raise errors.ConfigError(
            f'--runs={value}: {folder} holds no runs (no members/ of a '
            'study, no seed*/budget*/ of a budget sweep)')
    out[task] = folders.split(',')
  if not out:
    raise errors.ConfigError('--runs names no task: --runs=TASK=FOLDER')
  return out


def main(argv):
  del argv
  with cli.one_line_errors():
    unknown = [law for law in FLAGS.laws if law not in laws.LAWS]
    if unknown:
      raise errors.ConfigError(f'--laws={",".join(FLAGS.laws)} is invalid: '
                               f'each must be one of {", ".join(laws.LAWS)}')
    runs = parse_runs(FLAGS.runs)
    results = prediction_benchmark.benchmark(runs, FLAGS.laws)
    text = prediction_benchmark.write(results, FLAGS.output)
  print(text)
  tasks = ', '.join(f'{task}_results.*' for task in runs)
  print(f'Wrote {tasks} and the pictures into {FLAGS.output}.')


if __name__ == '__main__':
  cli.run(main)
