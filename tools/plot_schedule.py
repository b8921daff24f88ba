"""Draws a config's learning-rate schedule without training anything.

  python tools/plot_schedule.py --config=configs/default.py --output=schedule.png
  python tools/plot_schedule.py --config=configs/sgdr.py --config.cycle_mult=1

Writes a PNG of the rate at every step (epoch boundaries dotted, restarts and
drops dashed) and prints the rate at the steps that matter: the first, the end
of warmup, each restart or drop, the last. The schedule is the very function
training uses, evaluated step by step. It loads neither the data nor the
training loop: only the config checks and the schedule of train.setup.
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
# pylint: disable=g-import-not-at-top,wrong-import-position

from absl import flags
import numpy as np

import input_pipeline
from machinery import cli
from machinery import plots
from machinery import validation
import schedules

FLAGS = flags.FLAGS

flags.DEFINE_string('output', 'schedule.png', 'Where to write the PNG.')
flags.DEFINE_integer(
    'train_size', None, 'Training examples per epoch; default: the size of '
    'config.dataset\'s training split (60000 for MNIST).', lower_bound=1)
cli.define_config_flag()


# Key steps drawn as dashed red lines: where the rate jumps or turns.
MARKED_STEPS = ('restart', 'drop', 'start of decay')
# Longer schedules are drawn from this many evenly spaced steps (plus every
# key step): a picture has fewer pixels, and memory stays small.
MAX_DRAWN_STEPS = 200_000


def schedule_table(config, train_size: int):
  """(steps, rates, key steps {name: (step, rate)}, steps_per_epoch).

  The first stages of train.setup: validate, then the schedule's plan.
  """
  validation.validate_config(config)
  validation.validate_placement(config, train_size)
  plan = schedules.plan(config, train_size)
  keys = schedules.key_steps(config, plan.steps_per_epoch)
  steps = np.arange(plan.total_steps)
  if plan.total_steps > MAX_DRAWN_STEPS:
    steps = np.union1d(np.linspace(0, plan.total_steps - 1, MAX_DRAWN_STEPS,
                                   dtype=np.int64), list(keys.values()))
  rates = np.asarray(plan.learning_rate_fn(steps))
  named = {name: (step, float(rates[np.searchsorted(steps, step)]))
           for name, step in keys.items()}
  return steps, rates, named, plan.steps_per_epoch


def main(argv):
  del argv
  config = FLAGS.config
  problem = plots.output_problem(FLAGS.output)
  if problem:
    sys.exit(f'Error: {problem}.')
  train_size = FLAGS.train_size or input_pipeline.TRAIN_SIZES.get(
      config.dataset, 60000)
  with cli.one_line_errors():
    steps, rates, named, spe = schedule_table(config, train_size)
  description = schedules.describe(config, spe)
  if config.optimizer == 'schedule_free_sgd':
    description += (' (schedule-free SGD: this is the rate of every step; '
                    'the averaging replaces a decay)')
  restarts = [step for name, (step, _) in named.items()
              if name.startswith(MARKED_STEPS)]
  epoch_starts = (np.arange(1, config.num_epochs) * spe
                  if config.num_epochs <= 100 else [])  # dots, not a smear
  plots.plot_schedule(steps, rates, epoch_starts, restarts, description,
                      FLAGS.output)
  print(description)
  print(f'{"step":>7}  {"epoch":>6}  {"learning rate":>13}  what')
  for name, (step, rate) in named.items():
    print(f'{step:>7}  {step / spe:>6.2f}  {rate:>13.6g}  {name}')
  print(f'Wrote {FLAGS.output}')


if __name__ == '__main__':
  cli.run(main)
