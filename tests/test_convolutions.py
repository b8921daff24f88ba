"""The 'matmul' convolution lowering: XLA's convolution in values and
gradients (up to float summation order), the same parameters, and a run
that trains as the 'xla' one does."""

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import cnn_loss_and_grads
from conftest import small_config
import input_pipeline
import models
import train
from machinery import convolutions

NHWC = convolutions.NHWC


def _conv(lowering):
  return lambda x, kernel: lowering(x, kernel, (1, 1), 'SAME',
                                    dimension_numbers=NHWC)


def _values_and_grads(conv, x, kernel):
  """The convolution, and the gradients of a weighted sum of its output."""
  weights = jax.random.normal(jax.random.key(9), conv(x, kernel).shape)
  out = jax.jit(conv)(x, kernel)
  grads = jax.jit(jax.grad(lambda x, k: jnp.sum(conv(x, k) * weights),
                           argnums=(0, 1)))(x, kernel)
  return out, grads


def _close(ours, xla):
  """Relative to the largest entry: float summation order only."""
  scale = float(jnp.max(jnp.abs(xla)))
  np.testing.assert_allclose(ours, xla, rtol=0, atol=2e-6 * scale)
  assert not np.array_equal(ours, np.zeros_like(ours))


@pytest.mark.parametrize('shape', [(4, 14, 14, 32), (2, 7, 5, 3)])
def test_matmul_lowering_is_xlas_convolution_in_values_and_gradients(shape):
  x = jax.random.normal(jax.random.key(0), shape)
  kernel = jax.random.normal(jax.random.key(1), (3, 3, shape[3], 16))
  ours = _values_and_grads(_conv(convolutions.as_matmuls), x, kernel)
  xla = _values_and_grads(_conv(lax.conv_general_dilated), x, kernel)
  _close(ours[0], xla[0])
  _close(ours[1][0], xla[1][0])  # input gradient
  _close(ours[1][1], xla[1][1])  # kernel gradient


def test_the_input_gradient_is_xlas_own_bit_for_bit():
  """Only the kernel gradient is a new computation; the forward pass and the
  input gradient of a many-channel convolution are XLA's numbers."""
  x = jax.random.normal(jax.random.key(0), (4, 14, 14, 32))
  kernel = jax.random.normal(jax.random.key(1), (3, 3, 32, 64))
  ours = _values_and_grads(_conv(convolutions.as_matmuls), x, kernel)
  xla = _values_and_grads(_conv(lax.conv_general_dilated), x, kernel)
  np.testing.assert_array_equal(ours[0], xla[0])
  np.testing.assert_array_equal(ours[1][0], xla[1][0])
  assert not np.array_equal(ours[1][1], xla[1][1])  # summed in another order


@pytest.mark.parametrize('strides,padding,channels', [
    ((2, 2), 'SAME', 4), ((1, 1), 'VALID', 4), ((1, 1), 'SAME', 1)])
def test_other_convolutions_are_left_to_xla(strides, padding, channels):
  """Strided, 'VALID' and one-channel (the first layer's) convolutions are
  XLA's, gradients included, bit for bit."""
  x = jax.random.normal(jax.random.key(0), (2, 9, 9, channels))
  kernel = jax.random.normal(jax.random.key(1), (3, 3, channels, 8))

  def conv_with(lowering):
    return lambda x, k: lowering(x, k, strides, padding,
                                 dimension_numbers=NHWC)

  ours = _values_and_grads(conv_with(convolutions.as_matmuls), x, kernel)
  xla = _values_and_grads(conv_with(lax.conv_general_dilated), x, kernel)
  jax.tree.map(np.testing.assert_array_equal, ours, xla)


def test_the_matmul_cnn_has_the_same_parameters_and_math():
  """Checkpoints load under either lowering; logits and gradients agree up
  to summation order."""
  images = jax.random.uniform(jax.random.key(1), (8, 28, 28, 1))
  labels = jnp.arange(8) % 10
  xla_cnn, matmul_cnn = models.CNN(), models.CNN(conv_lowering='matmul')
  params = xla_cnn.init(jax.random.key(0), images)['params']
  matmul_params = matmul_cnn.init(jax.random.key(0), images)['params']
  jax.tree.map(np.testing.assert_array_equal, params, matmul_params)

  ours, xla = (cnn_loss_and_grads(cnn, params, images, labels)
               for cnn in (matmul_cnn, xla_cnn))
  np.testing.assert_allclose(ours[0], xla[0], rtol=1e-6)
  jax.tree.map(_close, ours[1], xla[1])


@pytest.fixture(scope='module')
def data(idx_dir):
  return input_pipeline.load_idx_dir(idx_dir)


def test_a_matmul_run_trains_as_the_xla_run_does(idx_dir, data):
  """Ten steps of the real step on a batch of real-shaped data: the loss
  falls, and the parameters stay within float rounding of the 'xla' run's."""
  batch = {key: value[:32] for key, value in data.train.items()}
  states, losses = {}, {}
  for lowering in ('xla', 'matmul'):
    config = small_config(idx_dir, warmup_epochs=0.0, conv_lowering=lowering)
    lr_fn = train.create_learning_rate_fn(config, 0.05, steps_per_epoch=10)
    state = train.create_train_state(jax.random.key(0), config, lr_fn)
    for _ in range(10):
      state, metrics = train.train_step(state, batch, lr_fn)
      losses.setdefault(lowering, []).append(float(metrics['loss']))
    states[lowering] = state
  assert losses['matmul'][-1] < 0.8 * losses['matmul'][0]
  np.testing.assert_allclose(losses['matmul'], losses['xla'], rtol=1e-4)
  jax.tree.map(lambda ours, xla: np.testing.assert_allclose(
      ours, xla, rtol=0, atol=1e-4 * float(jnp.max(jnp.abs(xla)))),
               states['matmul'].params, states['xla'].params)
