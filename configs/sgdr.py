"""SGDR (warm restarts): the defaults with cosine cycles of 3 then 6 epochs.

After the 1-epoch warmup, the first cycle lasts 3 epochs and the next one
twice as long, so the 10-epoch run ends at the bottom of the second cycle.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.schedule = 'sgdr'
  config.cycle_epochs = 3.0
  config.cycle_mult = 2.0
  config.restart_decay = 1.0
  return config
