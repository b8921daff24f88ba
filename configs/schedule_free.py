"""Schedule-free SGD (Defazio et al., 2024): no decay to choose at all.

optax.contrib.schedule_free_sgd with b1 = momentum: a warmup over
warmup_epochs, then a constant rate; the averaging of the iterates does what
a decay would. The test set is evaluated at the averaged parameters
(optax.contrib.schedule_free_eval_params). Its inner step is plain SGD, not
SGD with momentum 0.9, whose steps are 1 / (1 - 0.9) = 10 times larger at the
same rate: hence a much larger learning_rate than the defaults' (see the
README for the probe that chose it).
"""

from configs import default


def get_config():
  config = default.get_config()
  config.optimizer = 'schedule_free_sgd'
  config.schedule = 'constant'
  config.warmup_epochs = 1.0
  config.momentum = 0.9         # b1, the averaging weight
  config.learning_rate = 3.0   # best of 0.3, 1, 3, 10 in a 3-epoch probe
  return config
