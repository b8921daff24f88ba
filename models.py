"""The small CNN of the Flax MNIST example (Linen).

Kept deliberately small: the point of this project is the learning-rate
schedule, and a model that trains to >99% on MNIST in a few CPU minutes makes
the schedule's effect visible quickly.
"""

from flax import linen as nn


class CNN(nn.Module):
  """Two conv/avg-pool blocks and a two-layer MLP head; returns logits."""

  num_classes: int = 10

  @nn.compact
  def __call__(self, x):
    x = nn.Conv(features=32, kernel_size=(3, 3))(x)
    x = nn.relu(x)
    x = nn.avg_pool(x, window_shape=(2, 2), strides=(2, 2))
    x = nn.Conv(features=64, kernel_size=(3, 3))(x)
    x = nn.relu(x)
    x = nn.avg_pool(x, window_shape=(2, 2), strides=(2, 2))
    x = x.reshape((x.shape[0], -1))  # flatten
    x = nn.Dense(features=256)(x)
    x = nn.relu(x)
    x = nn.Dense(features=self.num_classes)(x)
    return x
