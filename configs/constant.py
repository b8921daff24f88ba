"""The baseline the seed argues against: one learning rate, no warmup.

The defaults' peak 0.1 from the first step to the last: no warmup and no
decay, so every gain a schedule shows in a study is measured against it.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.schedule = 'constant'
  config.warmup_epochs = 0.0
  return config
