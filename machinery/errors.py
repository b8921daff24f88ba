"""The errors a user can act on, each turned into one line by machinery.cli.

This module imports nothing from the project, so anything may raise these
without pulling in the training stack (drawing a schedule must not load orbax
or the training loop just to be able to report a bad field).
"""


class ConfigError(ValueError):
  """A config field holds a value outside its allowed range."""


class DataError(RuntimeError):
  """The data could not be found, or a data file is malformed."""


class ResumeError(ValueError):
  """The workdir's checkpoint belongs to a run with a different config."""


class NonFiniteLoss(RuntimeError):
  """The loss became NaN or infinite; the run stopped without saving."""


class Interrupted(Exception):
  """SIGINT or SIGTERM stopped the run after saving a checkpoint."""

  def __init__(self, message, signal_number):
    super().__init__(message)
    self.signal_number = signal_number


class WorkdirError(RuntimeError):
  """The workdir cannot be used: not a folder, not writable, or in use."""
