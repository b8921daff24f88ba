"""Linear decay to zero after the warmup (Bergsma et al., arXiv 2502.15938).

Bergsma et al. found a straight line from the peak to 0 at least as good as
cosine for LLM training. The same 1-epoch warmup, peak 0.1 and floor 0 as the
defaults, so only the decay's shape differs from warmup_cosine.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.schedule = 'linear'
  config.warmup_epochs = 1.0
  config.min_learning_rate = 0.0
  return config
