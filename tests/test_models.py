"""The CNN: its pooling is nn.avg_pool's numbers, bit for bit."""

from flax import linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

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


def lm(**fields):
  return models.Transformer(**{'num_layers': 2, 'width': 32, 'num_heads': 4,
                               'context_length': 16, **fields})


def test_the_transformer_gives_logits_per_position():
  tokens = jnp.arange(2 * 16, dtype=jnp.int32).reshape(2, 16) % 256
  model = lm()
  params = jax.jit(model.init)(jax.random.key(0), tokens)['params']
  assert jax.jit(model.apply)({'params': params}, tokens).shape == (2, 16,
                                                                    256)
  assert set(params) == {'token_embedding', 'position_embedding', 'block_0',
                         'block_1', 'final_norm', 'output'}


def test_a_position_never_sees_the_future():
  """Causal: changing token 10 changes no logit before position 10."""
  tokens = jax.random.randint(jax.random.key(1), (1, 16), 0, 256)
  model = lm()
  params = jax.jit(model.init)(jax.random.key(0), tokens)['params']
  apply = jax.jit(model.apply)
  before = apply({'params': params}, tokens)
  after = apply({'params': params}, tokens.at[0, 10].set(
      (tokens[0, 10] + 1) % 256))
  np.testing.assert_array_equal(before[0, :10], after[0, :10])
  assert not np.allclose(before[0, 10:], after[0, 10:])


def test_the_probe_size_has_its_parameter_count():
  """4 layers, width 128, 4 heads, context 128: 875,520 parameters (the
  issue's 0.88M), counted by hand: embeddings 256x128 + 128x128; per block
  two LayerNorms (512), attention 4 x (128x128 + 128), MLP 128x512 + 512 +
  512x128 + 128; a final LayerNorm (256); the output 128x256 + 256."""
  model = models.Transformer()
  params = jax.eval_shape(model.init, jax.random.key(0),
                          jnp.zeros((1, 128), jnp.int32))
  count = sum(leaf.size for leaf in jax.tree.leaves(params))
  block = 512 + 4 * (128 * 128 + 128) + 128 * 512 + 512 + 512 * 128 + 128
  assert count == 256 * 128 + 128 * 128 + 4 * block + 256 + 128 * 256 + 256
  assert count == 875_520


def test_more_tokens_than_positions_is_refused():
  model = lm()
  params = jax.eval_shape(model.init, jax.random.key(0),
                          jnp.zeros((1, 16), jnp.int32))
  with pytest.raises(ValueError, match="17 tokens, more than the model's 16 "
                     'positions'):
    model.apply(params, jnp.zeros((1, 17), jnp.int32))
