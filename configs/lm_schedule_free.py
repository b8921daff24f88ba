"""Schedule-free AdamW (Defazio et al., 2024; optax.contrib): the same
100-step warmup, then a constant rate; the averaging of the iterates does
what a decay would, and validation uses the averaged parameters. The same
peak 4e-3, b1 0.9, b2 0.95 and weight decay as configs/lm.py: untuned, so
the peaks study (x0.5, x2) says whether its verdict hinges on the peak."""

from configs import lm


def get_config():
  config = lm.get_config()
  config.optimizer = 'schedule_free_adamw'
  config.schedule = 'constant'
  return config
