"""One-cycle (Smith & Topin, 2018), as optax.cosine_onecycle_schedule.

A cosine rise from learning_rate / 25 to the peak over the first 30% of the
run, then a cosine fall to learning_rate / (25 x 1e4): the factors are
optax's (and PyTorch's OneCycleLR) defaults, and 30% is their default
pct_start (3 of 10 epochs). The peak stays the defaults' 0.1, so the
comparison is of the shape.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.schedule = 'onecycle'
  config.warmup_epochs = 3.0   # pct_start = 0.3 of 10 epochs
  config.div_factor = 25.0
  config.final_div_factor = 1e4
  return config
