"""Two drops of 10x at half and three quarters of the run (epochs 2 and 3
of 4), after the same 100-step warmup and peak 4e-3 as configs/lm.py: the
step schedule of He et al. (2016), as configs/step.py for the CNN."""

from configs import lm


def get_config():
  config = lm.get_config()
  config.schedule = 'step'
  config.step_epochs = (2, 3)
  config.step_decay = 0.1
  return config
