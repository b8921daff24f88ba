"""optax's cosine one-cycle (PyTorch's OneCycleLR): a rise from peak / 25
over the first 30% of the run (1.2 of 4 epochs, its default pct_start),
then a cosine fall to peak / (25 x 1e4). Peak 4e-3, as configs/lm.py."""

from configs import lm


def get_config():
  config = lm.get_config()
  config.schedule = 'onecycle'
  config.warmup_epochs = 1.2
  config.div_factor = 25.0
  config.final_div_factor = 1e4
  return config
