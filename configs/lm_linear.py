"""Linear decay from the peak straight to zero after the warmup: Bergsma et
al. (arXiv 2502.15938) found it beats cosine for LLMs. The same 100-step
warmup and peak 4e-3 as configs/lm.py."""

from configs import lm


def get_config():
  config = lm.get_config()
  config.schedule = 'linear'
  config.min_learning_rate = 0.0
  return config
