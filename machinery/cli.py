"""What main.py and every tool in tools/ share: config flags, one-line errors.

Each of them takes `--config=configs/....py` with `--config.field=value` overrides, and
turns a bad field or missing data into one line, never a traceback.
"""

import contextlib
import errno
import importlib.util
import logging
import os
import pathlib
import re
import signal
import sys
import threading

# TensorFlow (used by TFDS only to prepare data) logs a lot at import time.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging as absl_logging
from ml_collections import config_flags

from machinery import errors


def define_config_flag(required=True) -> None:
  """--config; once per process, so tools can be imported side by side."""
  if 'config' in flags.FLAGS:
    return
  config_flags.DEFINE_config_file(
      'config', None, 'Path to a training configuration file.',
      lock_config=True)
  if required:
    flags.mark_flag_as_required('config')


def define_distributed_flags() -> None:
  """--coordinator_address, --num_processes, --process_id and
  --distributed_timeout_s: main.py's multi-host flags, which tools/study.py
  takes with the same meaning (machinery/parallel.py); $JAX_COORDINATOR_ADDRESS,
  $JAX_NUM_PROCESSES and $JAX_PROCESS_ID work too."""
  if 'coordinator_address' in flags.FLAGS:
    return
  flags.DEFINE_string('coordinator_address', None,
                      'host:port of process 0, or "auto" on SLURM/Cloud TPU.')
  flags.DEFINE_integer('num_processes', None, 'Processes in the job.')
  flags.DEFINE_integer('process_id', None, 'This process\'s index.')
  flags.DEFINE_integer('distributed_timeout_s', 300, 'How long processes '
                       'wait for each other to join before giving up.',
                       lower_bound=1)


def _config_path(argv):
  """FILE[:ARG] as --config=FILE[:ARG] or --config FILE[:ARG] names it, or
  None."""
  for i, arg in enumerate(argv[1:], start=1):
    if arg.startswith('--config='):
      return arg[len('--config='):]
    if arg == '--config' and i + 1 < len(argv):
      return argv[i + 1]
  return None


def load_config_file(path, where=None):
  """`get_config()` of the config file at `path` (FILE or FILE:ARG, as
  ml_collections takes it: get_config(ARG)), checked.

  ml_collections reports a missing file, a syntax error or a failing
  get_config() as a traceback, or (without get_config) as a field named
  'config_config'; this says in one line which it is.

  Raises:
    ConfigError: naming `where` (default: --config=PATH) and the problem.
  """
  where = where or f'--config={path}'
  path, _, argument = str(path).partition(':')
  if not pathlib.Path(path).is_file():
    raise errors.ConfigError(f'{where}: no such file.')
  spec = importlib.util.spec_from_file_location('_checked_config', path)
  module = importlib.util.module_from_spec(spec)
  try:
    spec.loader.exec_module(module)
  except SyntaxError as e:
    raise errors.ConfigError(f'{where} has a syntax error at line '
                             f'{e.lineno}: {e.msg}.') from None
  except Exception as e:  # pylint: disable=broad-except
    raise errors.ConfigError(f'{where} failed to load: {type(e).__name__}: '
                             f'{e}') from None
  if not callable(getattr(module, 'get_config', None)):
    raise errors.ConfigError(f'{where} defines no get_config() function.')
  try:
    return module.get_config(argument) if argument else module.get_config()
  except Exception as e:  # pylint: disable=broad-except
    raise errors.ConfigError(f'{where}: get_config() raised '
                             f'{type(e).__name__}: {e}') from None


def check_config_file(path) -> None:
  """Exits with one line unless `path` is a config file with get_config()."""
  try:
    load_config_file(path)
  except errors.ConfigError as e:
    sys.exit(f'Error: {e}')


def parse_flags(argv):
  """absl's flag parser, plus one line for a bad config file or field.

  ml_collections raises AttributeError (with a "did you mean" hint) from deep
  inside flag parsing for `--config.typo=...`; absl would print a traceback.
  """
  path = _config_path(argv)
  if path:
    check_config_file(path)
  try:
    return app.parse_flags_with_usage(argv)
  except (AttributeError, KeyError) as e:
    text = str(e).replace('\\n', ' ').replace('\\', '')
    field = re.search(r"'([\w.]+)'", text)
    hint = re.search(r'Did you mean "([\w.]+)"', text)
    sys.exit(f'Error: config has no field '
             f'{field[1] if field else text!r}'
             + (f'; did you mean {hint[1]!r}?' if hint else '.'))


STOPPED_AT_ONCE = ('Stopped at once; nothing was saved now (checkpoints saved '
                   'before, if any, are kept).')
# How long a Ctrl-C's KeyboardInterrupt may take to unwind before the
# program exits without it.
INTERRUPT_DEADLINE_S = 10.0


@contextlib.contextmanager
def one_line_errors():
  """Exits with `Error: ...` for the errors a user can fix."""
  try:
    yield
  except (errors.ConfigError, errors.DataError, errors.ResumeError,
          errors.NonFiniteLoss, errors.WorkdirError) as e:
    sys.exit(f'Error: {e}')
  except errors.Interrupted as e:  # the checkpoint is on disk
    exit_now(f'Stopped: {e}', 128 + e.signal_number)  # the shell's way
  except OSError as e:
    if e.errno != errno.ENOSPC:
      raise
    where = e.filename or 'a file'
    sys.exit(f'Error: no space left on the device writing {where}; free some '
             'space and run the same command again (a run resumes from its '
             'last checkpoint).')
  except KeyboardInterrupt:  # a second Ctrl-C: no new checkpoint
    exit_now(STOPPED_AT_ONCE)


# Libraries whose INFO lines drown the training log (orbax logs a dozen lines
# per checkpoint; JAX says it found no TPU). Their warnings still show.
QUIET_LIBRARIES = ('/orbax/', '/jax/_src/', '/tensorflow_datasets/')


class _QuietLibraries(logging.Filter):

  def filter(self, record):
    return record.levelno >= logging.WARNING or not any(
        part in record.pathname for part in QUIET_LIBRARIES)


def exit_now(message, status=130):
  """Exits 130 at once, without the interpreter's teardown.

  A Ctrl-C can land while XLA or TensorFlow threads are mid-work; tearing
  the interpreter down under them has crashed the process (SIGSEGV) after
  the message. Everything worth keeping is already on disk (orbax writes
  synchronously), so there is nothing left to clean up.
  """
  print(message, file=sys.stderr, flush=True)
  sys.stdout.flush()
  os._exit(status)  # pylint: disable=protected-access


def _quit_during_startup(signum, frame):
  del signum, frame
  exit_now('Stopped before training started; nothing was saved.')


def _interrupt_with_deadline(signum, frame):
  """Python's KeyboardInterrupt, so that the `with` blocks of start-up close
  what they opened; and a timer that exits anyway should the exception be
  caught by a library or its clean-up hang (one lost in a finalizer or a
  GC callback is `_exit_on_lost_interrupt`'s). A Ctrl-C 3 s into start-up
  on a loaded CI machine once left main.py running for 300 s."""
  del signum, frame
  timer = threading.Timer(INTERRUPT_DEADLINE_S, exit_now,
                          args=(STOPPED_AT_ONCE,))
  timer.daemon = True
  timer.start()
  raise KeyboardInterrupt


def _exit_on_lost_interrupt(unraisable) -> None:
  """sys.unraisablehook: Python prints an exception it cannot raise (one in
  a finalizer or a GC callback; JAX's runs at every collection) as a
  traceback and goes on. A Ctrl-C landing there would be lost so (CI saw
  it): it stops the program instead, with one line."""
  if issubclass(unraisable.exc_type, KeyboardInterrupt):
    exit_now(STOPPED_AT_ONCE)
  sys.__unraisablehook__(unraisable)


def quit_quietly_on_ctrl_c() -> None:
  """Ctrl-C while the program still imports JAX: one line, no traceback.

  Called first thing by main.py; `run` hands Ctrl-C back to Python once the
  program is ready to turn it into a clean stop. A SIGINT the program was
  started with ignored (a shell's background job) stays ignored.
  """
  _handle_sigint(_quit_during_startup)


def _handle_sigint(handler) -> None:
  """Installs `handler` for SIGINT unless SIGINT is ignored: whoever started
  the program chose that, and the run must not take it back."""
  if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
    signal.signal(signal.SIGINT, handler)


def run(main) -> None:
  """app.run with the config-aware flag parser and a readable log.

  A Ctrl-C before training starts (while JAX or the data load) ends the
  program with one line rather than a traceback.
  """
  absl_logging.get_absl_handler().addFilter(_QuietLibraries())
  sys.unraisablehook = _exit_on_lost_interrupt
  _handle_sigint(_interrupt_with_deadline)
  try:
    app.run(main, flags_parser=parse_flags)
  except KeyboardInterrupt:
    exit_now('Stopped before training started; nothing was saved.')
