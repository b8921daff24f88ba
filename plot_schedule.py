"""Draws a config's learning-rate schedule without training anything.

  python plot_schedule.py --config=configs/default.py --output=schedule.png
  python plot_schedule.py --config=configs/sgdr.py --config.cycle_mult=1

Writes a PNG of the rate at every step (epoch boundaries dotted, restarts and
drops dashed) and prints the rate at the steps that matter: the first, the end
of warmup, each restart or drop, the last. The schedule is the very function
training uses, evaluated step by step.
"""

from absl import flags
import numpy as np

import cli
import input_pipeline
import plots
import schedules
import validation

FLAGS = flags.FLAGS

flags.DEFINE_string('output', 'schedule.png', 'Where to write the PNG.')
flags.DEFINE_integer(
    'train_size', None, 'Training examples per epoch; default: the size of '
    'config.dataset\'s training split (60000 for MNIST).', lower_bound=1)
cli.define_config_flag()


def schedule_table(config, train_size: int):
  """(steps, rates, key steps {name: (step, rate)}, steps_per_epoch)."""
  validation.validate_config(config)
  validation.validate_batch_size(config, train_size)
  steps_per_epoch = train_size // config.batch_size
  lr_fn = schedules.create_learning_rate_fn(
      config, config.learning_rate, steps_per_epoch)
  steps = np.arange(config.num_epochs * steps_per_epoch)
  rates = np.asarray(lr_fn(steps))
  named = {name: (step, float(rates[step]))
           for name, step in schedules.key_steps(config, steps_per_epoch).items()}
  return steps, rates, named, steps_per_epoch


def main(argv):
  del argv
  config = FLAGS.config
  train_size = FLAGS.train_size or input_pipeline.TRAIN_SIZES.get(
      config.dataset, 60000)
  with cli.one_line_errors():
    steps, rates, named, spe = schedule_table(config, train_size)
  description = schedules.describe(config, spe)
  restarts = [step for name, step in schedules.key_steps(config, spe).items()
              if name.startswith(('restart', 'drop'))]
  plots.plot_schedule(steps, rates,
                      np.arange(1, config.num_epochs) * spe, restarts,
                      description, FLAGS.output)
  print(description)
  print(f'{"step":>7}  {"epoch":>6}  {"learning rate":>13}  what')
  for name, (step, rate) in named.items():
    print(f'{step:>7}  {step / spe:>6.2f}  {rate:>13.6g}  {name}')
  print(f'Wrote {FLAGS.output}')


if __name__ == '__main__':
  cli.run(main)
