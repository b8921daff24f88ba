"""A clean stop on Ctrl-C, SIGTERM (a scheduler's preemption) or SIGHUP
(the terminal closed).

A signal that is ignored when the run starts stays ignored: `nohup` sets
SIGHUP to SIG_IGN so that closing the terminal does not stop the job, and a
user who chose that must get it (as must one who ignores SIGINT in a
background job). On leaving, each signal gets back the handler it had.

The first signal only asks the training loop to stop: it finishes the step in
flight, saves a checkpoint and exits non-zero. A second one interrupts at
once; orbax's atomic writes still keep the last finished checkpoint intact.
"""

import contextlib
import signal

from absl import logging


class StopRequest:
  """Set by a signal of STOP_SIGNALS; the loop polls it between steps."""

  def __init__(self):
    self.signal_number = None

  def __bool__(self):
    return self.signal_number is not None

  @property
  def name(self):
    return signal.Signals(self.signal_number).name


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def stop_on_signals():
  """The first of STOP_SIGNALS sets a StopRequest; a second one interrupts.

  The loop then finishes its step, saves a checkpoint and exits non-zero.
  A second signal, for a user who does not want to wait, goes to the
  handler the signal had before (main.py's raises KeyboardInterrupt and
  exits anyway should that be lost), else raises KeyboardInterrupt;
  orbax's atomic writes still keep the last finished checkpoint intact.
  """
  request = StopRequest()
  previous = {}

  def handler(signum, frame):
    if request:
      at_once = previous.get(signum)
      if callable(at_once):  # the program's own way (cli: with a deadline)
        at_once(signum, frame)
      raise KeyboardInterrupt
    request.signal_number = signum
    logging.warning('Received %s: stopping after this step and saving a '
                    'checkpoint (send it again to quit at once).',
                    signal.Signals(signum).name)

  try:
    for signum in STOP_SIGNALS:
      if signal.getsignal(signum) is signal.SIG_IGN:
        continue  # the user chose to ignore it (nohup): leave it ignored
      previous[signum] = signal.signal(signum, handler)
  except ValueError:  # not the main thread: signals stay as they were
    logging.info('Not in the main thread: Ctrl-C will not save a checkpoint.')
  try:
    yield request
  finally:
    for signum, old in previous.items():
      signal.signal(signum, old)
