"""The CNN: its pooling is nn.avg_pool's numbers, bit for bit."""

from flax import linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from conftest import cnn_loss_and_grads
import models


class PlainPoolingCNN(nn.Module):
  """models.CNN as the Flax example writes it, with nn.avg_pool."""

  @nn.compact
  def __call__(self, x):
    for features in (32, 64):
      x = nn.relu(nn.Conv(features=features, kernel_size=(3, 3))(x))
      x = nn.avg_pool(x, window_shape=(2, 2), strides=(2, 2))
    x = nn.relu(nn.Dense(features=256)(x.reshape((x.shape[0], -1))))
    return nn.Dense(features=10)(x)


def _images(n):
  return jax.random.uniform(jax.random.key(1), (n, 28, 28, 1))


def test_pooling_equals_nn_avg_pool_bit_for_bit():
  x = jax.random.normal(jax.random.key(0), (4, 28, 28, 32))
  ours = jax.jit(models.avg_pool_2x2)(x)
  plain = jax.jit(lambda x: nn.avg_pool(x, (2, 2), strides=(2, 2)))(x)
  assert ours.shape == (4, 14, 14, 32)
  np.testing.assert_array_equal(ours, plain)


def test_odd_sizes_are_cropped_as_nn_avg_pool_crops_them():
  x = jnp.arange(2 * 5 * 7 * 3, dtype=jnp.float32).reshape(2, 5, 7, 3)
  np.testing.assert_array_equal(
      models.avg_pool_2x2(x), nn.avg_pool(x, (2, 2), strides=(2, 2)))


def test_the_cnn_is_the_flax_example_cnn_in_values_and_gradients():
  """Same parameter tree (checkpoints load either way), same logits and the
  same gradients, bit for bit, under jit."""
  images = _images(16)
  labels = jnp.arange(16) % 10
  params = models.CNN().init(jax.random.key(0), images)['params']
  plain_params = PlainPoolingCNN().init(jax.random.key(0), images)['params']
  assert jax.tree.structure(params) == jax.tree.structure(plain_params)
  assert jax.tree.map(jnp.shape, params) == jax.tree.map(jnp.shape,
                                                         plain_params)

  ours, plain = (cnn_loss_and_grads(cnn, params, images, labels)
                 for cnn in (models.CNN(), PlainPoolingCNN()))
  np.testing.assert_array_equal(ours[0], plain[0])
  jax.tree.map(np.testing.assert_array_equal, ours[1], plain[1])
