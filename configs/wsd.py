"""Warmup-stable-decay: hold the peak, then decay over the last 2 epochs.

WSD (MiniCPM, arXiv 2404.06395; Hägele et al., arXiv 2405.18392) trains at
the peak rate for most of the run and anneals only at the end, so a run can
be extended, or branched into a short decay at any point, without knowing
its length in advance. The 1-sqrt shape is the one Hägele et al. found to
match cosine; 'linear' (the field's default) and 'cosine' are the others.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.schedule = 'wsd'
  config.warmup_epochs = 1.0
  config.decay_epochs = 2.0     # epochs 8 to 10
  config.decay_shape = '1-sqrt'
  return config
