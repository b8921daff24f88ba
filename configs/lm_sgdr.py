"""SGDR (Loshchilov & Hutter) after configs/lm.py's 100-step warmup: a
first cosine cycle of 1.2 epochs (300 steps), then one twice as long
(T_mult = 2), so the 4-epoch run ends at the bottom of the second cycle;
the restart returns to the full peak 4e-3."""

from configs import lm


def get_config():
  config = lm.get_config()
  config.schedule = 'sgdr'
  config.cycle_epochs = 1.2
  config.cycle_mult = 2.0
  config.restart_decay = 1.0
  return config
