"""Learning-rate schedules, built from optax's own schedule functions.

The seed schedule (the Flax ImageNet example's): a linear warmup from 0 to the
base rate over `warmup_epochs`, then a cosine decay to 0 over the remaining
epochs, joined with `optax.join_schedules` at the warmup boundary.
"""

import optax


def warmup_steps(config, steps_per_epoch: int) -> int:
  """Number of warmup steps; `warmup_epochs` may be fractional."""
  return int(round(config.warmup_epochs * steps_per_epoch))


def cosine_steps(config, steps_per_epoch: int) -> int:
  """Length of the cosine phase; at least one epoch, as in the seed."""
  epochs = max(config.num_epochs - config.warmup_epochs, 1)
  return int(round(epochs * steps_per_epoch))


def create_learning_rate_fn(config, base_learning_rate: float,
                            steps_per_epoch: int) -> optax.Schedule:
  """Linear warmup to `base_learning_rate`, then cosine decay to 0.

  Args:
    config: needs `warmup_epochs` and `num_epochs`.
    base_learning_rate: peak rate, reached at the end of warmup.
    steps_per_epoch: optimizer steps in one epoch.

  Returns:
    A function step -> learning rate, usable by any optax optimizer.
  """
  num_warmup = warmup_steps(config, steps_per_epoch)
  warmup_fn = optax.linear_schedule(
      init_value=0.0, end_value=base_learning_rate,
      transition_steps=num_warmup)
  cosine_fn = optax.cosine_decay_schedule(
      init_value=base_learning_rate,
      decay_steps=cosine_steps(config, steps_per_epoch))
  return optax.join_schedules(
      schedules=[warmup_fn, cosine_fn], boundaries=[num_warmup])
