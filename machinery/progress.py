"""Progress reports during an epoch: a bar on a terminal, log lines elsewhere.

On a terminal, each epoch gets a tqdm bar with steps/s, ETA, loss and
learning rate. Anywhere else (CI, nohup, a pipe) a bar's carriage returns make
a mess of the log, so the same facts go out as plain absl log lines every
`log_every_steps` steps.
"""

import sys
import time

from absl import logging
import tqdm


def use_bar(setting: str) -> bool:
  """'auto': a bar only when stderr is a terminal; 'always' / 'never'."""
  if setting == 'auto':
    return sys.stderr.isatty()
  return setting == 'always'


class EpochProgress:
  """Reports one epoch's progress; `update` once per group of steps."""

  def __init__(self, epoch, num_epochs, total_steps, done_steps, bar: bool):
    self._epoch, self._num_epochs = epoch, num_epochs
    self._total, self._done = total_steps, done_steps
    self._start_done = done_steps
    self._start = time.perf_counter()
    self._bar = None
    if bar:
      self._bar = tqdm.tqdm(
          total=total_steps, initial=done_steps, unit='step', leave=True,
          desc=f'epoch {epoch}/{num_epochs}', dynamic_ncols=True,
          file=sys.stderr)

  def update(self, steps: int, loss: float, learning_rate: float):
    self._done += steps
    if self._bar is not None:
      self._bar.set_postfix(loss=f'{loss:.4f}', lr=f'{learning_rate:.3g}',
                            refresh=False)
      self._bar.update(steps)
      return
    elapsed = time.perf_counter() - self._start
    rate = (self._done - self._start_done) / max(elapsed, 1e-9)
    eta = (self._total - self._done) / max(rate, 1e-9)
    logging.info(
        'epoch %d/%d: step %d/%d (%.0f%%), %.1f steps/s, ETA %.0fs, '
        'loss %.4f, lr %.4g', self._epoch, self._num_epochs, self._done,
        self._total, 100 * self._done / self._total, rate, eta, loss,
        learning_rate)

  def close(self):
    if self._bar is not None:
      self._bar.close()
