"""Entry point: trains the MNIST CNN under the configured learning-rate schedule.

  python main.py --config=configs/default.py --workdir=runs/default

Any config field can be overridden, e.g. `--config.num_epochs=3`.
"""

import os
import re
import sys

# TensorFlow (used by TFDS only to prepare data) logs a lot at import time.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging
from ml_collections import config_flags

import input_pipeline
import train
import validation

FLAGS = flags.FLAGS

flags.DEFINE_string('workdir', None, 'Directory for the run\'s logs and metrics.')
config_flags.DEFINE_config_file(
    'config', None, 'Path to a training configuration file.', lock_config=True)
flags.mark_flags_as_required(['config', 'workdir'])


def parse_flags(argv):
  """absl's flag parser, plus one line for a config field that does not exist.

  ml_collections raises AttributeError (with a "did you mean" hint) from deep
  inside flag parsing for `--config.typo=...`; absl would print a traceback.
  """
  try:
    return app.parse_flags_with_usage(argv)
  except (AttributeError, KeyError) as e:
    text = str(e).replace('\\n', ' ').replace('\\', '')
    field = re.search(r"'([\w.]+)'", text)
    hint = re.search(r'Did you mean "([\w.]+)"', text)
    sys.exit(f'Error: config has no field '
             f'{field[1] if field else text!r}'
             + (f'; did you mean {hint[1]!r}?' if hint else '.'))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Too many command-line arguments.')
  logging.info('Config:\n%s', FLAGS.config)
  try:
    train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
  except (validation.ConfigError, input_pipeline.DataError) as e:
    # One line for the user, no traceback from inside JAX or TFDS.
    sys.exit(f'Error: {e}')


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)
