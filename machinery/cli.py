"""What main.py and every tool in tools/ share: config flags, one-line errors.

Each of them takes `--config=configs/....py` with `--config.field=value` overrides, and
turns a bad field or missing data into one line, never a traceback.
"""

import contextlib
import logging
import os
import re
import sys

# TensorFlow (used by TFDS only to prepare data) logs a lot at import time.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging as absl_logging
from ml_collections import config_flags

from machinery import errors


def define_config_flag() -> None:
  """--config; once per process, so tools can be imported side by side."""
  if 'config' in flags.FLAGS:
    return
  config_flags.DEFINE_config_file(
      'config', None, 'Path to a training configuration file.',
      lock_config=True)
  flags.mark_flag_as_required('config')


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


@contextlib.contextmanager
def one_line_errors():
  """Exits with `Error: ...` for the errors a user can fix."""
  try:
    yield
  except (errors.ConfigError, errors.DataError, errors.ResumeError,
          errors.NonFiniteLoss) as e:
    sys.exit(f'Error: {e}')
  except errors.Interrupted as e:
    print(f'Stopped: {e}', file=sys.stderr)
    sys.exit(128 + e.signal_number)  # the shell's convention for signals
  except KeyboardInterrupt:  # a second Ctrl-C: no new checkpoint
    print('Stopped at once; the last finished checkpoint is kept.',
          file=sys.stderr)
    sys.exit(130)


# Libraries whose INFO lines drown the training log (orbax logs a dozen lines
# per checkpoint; JAX says it found no TPU). Their warnings still show.
QUIET_LIBRARIES = ('/orbax/', '/jax/_src/', '/tensorflow_datasets/')


class _QuietLibraries(logging.Filter):

  def filter(self, record):
    return record.levelno >= logging.WARNING or not any(
        part in record.pathname for part in QUIET_LIBRARIES)


def run(main) -> None:
  """app.run with the config-aware flag parser and a readable log."""
  absl_logging.get_absl_handler().addFilter(_QuietLibraries())
  app.run(main, flags_parser=parse_flags)
