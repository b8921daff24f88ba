"""Step decay: the classic ResNet-era schedule, x0.1 at epochs 5 and 8.

He et al. (2016) divided the rate by 10 when the validation error plateaued,
at about half and three quarters of the run; epochs 5 and 8 of 10 are those
points here (after the same 1-epoch warmup as the defaults, so that the
comparison isolates the decay's shape). Two drops of 10x end at 0.001, the
floor a cosine reaches in its last few percent.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.schedule = 'step'
  config.warmup_epochs = 1.0
  config.step_epochs = (5, 8)
  config.step_decay = 0.1
  return config
