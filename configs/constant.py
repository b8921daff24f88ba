"""The baseline the seed argues against: one learning rate, no warmup."""

from configs import default


def get_config():
  config = default.get_config()
  config.schedule = 'constant'
  config.warmup_epochs = 0.0
  return config
