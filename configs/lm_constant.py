"""configs/lm.py's peak 4e-3 from the first step to the last: no warmup and
no decay (as configs/constant.py for the CNN), so every gain a schedule
shows is measured against it."""

from configs import lm


def get_config():
  config = lm.get_config()
  config.schedule = 'constant'
  config.warmup_epochs = 0.0
  return config
