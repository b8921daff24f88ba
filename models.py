"""The small CNN of the Flax MNIST example (Linen).

Kept deliberately small: the point of this project is the learning-rate
schedule, and a model that trains to >99% on MNIST in a few CPU minutes makes
the schedule's effect visible quickly.
"""

import jax
from flax import linen as nn

from machinery import convolutions


def avg_pool_2x2(x):
  """`nn.avg_pool(x, (2, 2), strides=(2, 2))` of an NHWC batch, as a reshape
  and a sum over each 2x2 block.

  Why not nn.avg_pool itself: the same numbers bit for bit, forward and
  backward (tests/test_models.py), but the gradient of a reshaped sum is a
  broadcast, where reduce_window's gradient is another reduce_window over
  the padded cotangent: 1.03-1.08x a whole batch-32 CPU step, within noise
  at 64 and 128 (docs/performance.md). Odd heights or widths (which
  nn.avg_pool crops) go to nn.avg_pool.
  """
  n, h, w, c = x.shape
  if h % 2 or w % 2:
    return nn.avg_pool(x, window_shape=(2, 2), strides=(2, 2))
  with jax.named_scope('avg_pool'):
    return x.reshape(n, h // 2, 2, w // 2, 2, c).sum((2, 4)) / 4


class CNN(nn.Module):
  """Two conv/avg-pool blocks and a two-layer MLP head; returns logits.

  `conv_lowering` names how the convolutions are computed
  (convolutions.CONV_LOWERINGS): the same parameters and the same math
  either way, the float sums in another order.
  """

  num_classes: int = 10
  conv_lowering: str = 'xla'

  @nn.compact
  def __call__(self, x):
    conv = convolutions.CONV_LOWERINGS[self.conv_lowering]
    x = nn.Conv(features=32, kernel_size=(3, 3), conv_general_dilated=conv)(x)
    x = nn.relu(x)
    x = avg_pool_2x2(x)
    x = nn.Conv(features=64, kernel_size=(3, 3), conv_general_dilated=conv)(x)
    x = nn.relu(x)
    x = avg_pool_2x2(x)
    x = x.reshape((x.shape[0], -1))  # flatten
    x = nn.Dense(features=256)(x)
    x = nn.relu(x)
    x = nn.Dense(features=self.num_classes)(x)
    return x
