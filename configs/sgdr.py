"""SGDR (warm restarts): the defaults with cosine cycles of 3 then 6 epochs.

After the 1-epoch warmup, the first cycle lasts 3 epochs and the next one
twice as long (Loshchilov & Hutter's T_mult = 2), so the 10-epoch run ends at
the bottom of the second cycle; restarts return to the full peak 0.1, as in
the paper.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.schedule = 'sgdr'
  config.cycle_epochs = 3.0
  config.cycle_mult = 2.0
  config.restart_decay = 1.0
  return config
