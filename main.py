"""Entry point: trains the MNIST CNN under the configured learning-rate schedule.

  python main.py --config=configs/default.py --workdir=runs/default

Any config field can be overridden, e.g. `--config.num_epochs=3`.
"""

from absl import app
from absl import flags
from absl import logging

import cli
import train

FLAGS = flags.FLAGS

flags.DEFINE_string('workdir', None, 'Directory for the run\'s logs and metrics.')
flags.mark_flag_as_required('workdir')
cli.define_config_flag()


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Too many command-line arguments.')
  logging.info('Config:\n%s', FLAGS.config)
  with cli.one_line_errors():
    train.train_and_evaluate(FLAGS.config, FLAGS.workdir)


if __name__ == '__main__':
  cli.run(main)
