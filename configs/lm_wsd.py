"""Warmup-stable-decay with a 1-sqrt cooldown over the last 20% of the run
(200 of 1,000 steps): the setting Hägele et al. (arXiv 2405.18392) found to
match cosine. The same 100-step warmup and peak 4e-3 as configs/lm.py."""

from configs import lm


def get_config():
  config = lm.get_config()
  config.schedule = 'wsd'
  config.decay_fraction = 0.2
  config.decay_shape = '1-sqrt'
  return config
