"""Warmup + cosine to 10% of the peak: the common LLM default (GPT-3,
Chinchilla, nanoGPT's min_lr = learning_rate / 10), against configs/lm.py's
cosine to zero. The same 100-step warmup and peak 4e-3."""

from configs import lm


def get_config():
  config = lm.get_config()
  config.min_learning_rate = 0.1 * config.learning_rate  # 4e-4
  return config
