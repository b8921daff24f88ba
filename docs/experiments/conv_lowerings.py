"""Two other lowerings of the CNN's convolutions, timed in the whole step.

  [POOL=flax] .venv/bin/python docs/experiments/conv_lowerings.py LOWERING BATCH MICRO DEVICES

LOWERING is `xla` (lax.conv_general_dilated, what models.py uses),
`patches` (one matmul over the 3x3 patches; autodiff gives the backward) or
`matmul_grad` (XLA's forward convolution, with a custom_vjp whose input
gradient is a forward convolution of the flipped kernel and whose kernel
gradient is one matmul of the patches) or `shifted_grad` (as
`matmul_grad`, but the kernel gradient as one dot per shifted window,
without the 9x patches copy) or `swapped_grad` (the kernel gradient as
an explicit NHWC 'VALID' convolution of the transposed padded input
[C, H+2, W+2, N] with the transposed gradient [H, W, N, F] as a 14x14
kernel: XLA's own kernel gradient, bit for bit, through explicit
transposes), or `project_xla` / `project_matmul` (models.CNN with that
conv_lowering: the project's own step). POOL=flax pools with nn.avg_pool
instead of models.avg_pool_2x2 (the same numbers). All give the same
parameters and the same math up to float summation order (relative error
~1e-6). Prints the images/s of train.train_epoch over 12,800 generated
images (best of two epochs after compiling) and a digest of the parameters
after the three epochs (equal digests: the same numbers bit for bit). Not
used by the project: measured, and slower where it counts (see
docs/performance.md).
"""

import hashlib
import os
import sys
import time

DEVICES = int(sys.argv[4]) if len(sys.argv) > 4 else 1
import jax  # pylint: disable=g-import-not-at-top,wrong-import-position

jax.config.update('jax_num_cpu_devices', DEVICES)
from flax import linen as nn  # pylint: disable=g-import-not-at-top,wrong-import-position
import jax.numpy as jnp  # pylint: disable=g-import-not-at-top,wrong-import-position
from jax import lax  # pylint: disable=g-import-not-at-top,wrong-import-position

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..'))
import input_pipeline  # pylint: disable=g-import-not-at-top,wrong-import-position
import models  # pylint: disable=g-import-not-at-top,wrong-import-position
import train  # pylint: disable=g-import-not-at-top,wrong-import-position
from configs import default  # pylint: disable=g-import-not-at-top,wrong-import-position
from machinery import checkpoints  # pylint: disable=g-import-not-at-top,wrong-import-position
from machinery import convolutions  # pylint: disable=g-import-not-at-top,wrong-import-position
from machinery import parallel  # pylint: disable=g-import-not-at-top,wrong-import-position

NHWC = convolutions.NHWC


def shifted_windows(x, size):
  """The size x size windows of a 'SAME'-padded NHWC batch, as `size**2`
  shifted copies in (row, column) order, each [N, H, W, C]."""
  half = size // 2
  padded = jnp.pad(x, ((0, 0), (half, half), (half, half), (0, 0)))
  h, w = x.shape[1], x.shape[2]
  return [padded[:, i:i + h, j:j + w, :]
          for i in range(size) for j in range(size)]


def plain_case_only(fast):
  """A conv_general_dilated for nn.Conv: `fast(lhs, rhs)` in the plain case
  (convolutions.is_plain), lax.conv_general_dilated otherwise."""

  def conv(lhs, rhs, window_strides, padding, lhs_dilation=None,
           rhs_dilation=None, dimension_numbers=None, feature_group_count=1,
           precision=None, **kwargs):
    if convolutions.is_plain(lhs, rhs, window_strides, padding, lhs_dilation,
                 rhs_dilation, dimension_numbers, feature_group_count):
      return fast(lhs, rhs)
    return lax.conv_general_dilated(
        lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
        rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
        feature_group_count=feature_group_count, precision=precision,
        **kwargs)
  return conv


def _patches_matmul(lhs, rhs):
  """The convolution as one matmul over the 3x3 patches; autodiff gives
  the backward (matmuls and shifted adds)."""
  size, _, channels, features = rhs.shape
  patches = jnp.concatenate(shifted_windows(lhs, size), axis=-1)
  return jnp.dot(patches, rhs.reshape(size * size * channels, features))


def _xla_same_conv(x, kernel):
  return lax.conv_general_dilated(x, kernel, (1, 1), 'SAME',
                                  dimension_numbers=NHWC)


@jax.custom_vjp
def _conv_with_matmul_grads(x, kernel):
  return _xla_same_conv(x, kernel)


def _conv_forward(x, kernel):
  return _xla_same_conv(x, kernel), (x, kernel)


def _conv_backward(saved, grad):
  """dX as XLA's own forward convolution of the gradient with the flipped
  kernel; dW as one matmul of the patches with the gradient."""
  x, kernel = saved
  size, _, channels, features = kernel.shape
  flipped = jnp.flip(kernel, (0, 1)).transpose(0, 1, 3, 2)
  grad_x = _xla_same_conv(grad, flipped)
  patches = jnp.concatenate(shifted_windows(x, size), axis=-1)
  grad_kernel = jnp.dot(patches.reshape(-1, size * size * channels).T,
                        grad.reshape(-1, features))
  return grad_x, grad_kernel.reshape(kernel.shape)


_conv_with_matmul_grads.defvjp(_conv_forward, _conv_backward)


def _conv_backward_shifted(saved, grad):
  """As _conv_backward, but the kernel gradient as one [C, N] x [N, F] dot
  per shifted window, without building the 9x patches."""
  x, kernel = saved
  size, _, channels, features = kernel.shape
  flipped = jnp.flip(kernel, (0, 1)).transpose(0, 1, 3, 2)
  grad_x = _xla_same_conv(grad, flipped)
  flat = grad.reshape(-1, features)
  grad_kernel = jnp.stack([
      jnp.dot(window.reshape(-1, channels).T, flat)
      for window in shifted_windows(x, size)])
  return grad_x, grad_kernel.reshape(kernel.shape)


@jax.custom_vjp
def _conv_with_shifted_grads(x, kernel):
  return _xla_same_conv(x, kernel)


_conv_with_shifted_grads.defvjp(_conv_forward, _conv_backward_shifted)


def _conv_backward_swapped(saved, grad):
  """dX as _conv_backward; dW as an NHWC 'VALID' convolution of the
  transposed padded input with the transposed gradient as its kernel."""
  x, kernel = saved
  size = kernel.shape[0]
  flipped = jnp.flip(kernel, (0, 1)).transpose(0, 1, 3, 2)
  grad_x = _xla_same_conv(grad, flipped)
  half = size // 2
  padded = jnp.pad(x, ((0, 0), (half, half), (half, half), (0, 0)))
  grad_kernel = lax.conv_general_dilated(
      padded.transpose(3, 1, 2, 0), grad.transpose(1, 2, 0, 3), (1, 1),
      'VALID', dimension_numbers=NHWC)
  return grad_x, grad_kernel.transpose(1, 2, 0, 3)


@jax.custom_vjp
def _conv_with_swapped_grads(x, kernel):
  return _xla_same_conv(x, kernel)


_conv_with_swapped_grads.defvjp(_conv_forward, _conv_backward_swapped)


LOWERINGS = {'xla': lax.conv_general_dilated,
             'patches': plain_case_only(_patches_matmul),
             'matmul_grad': plain_case_only(_conv_with_matmul_grads),
             'shifted_grad': plain_case_only(_conv_with_shifted_grads),
             'swapped_grad': plain_case_only(_conv_with_swapped_grads)}


POOLS = {'flax': lambda x: nn.avg_pool(x, (2, 2), strides=(2, 2)),
         'reshape': models.avg_pool_2x2}
POOL = POOLS[os.environ.get('POOL', 'reshape')]


class CNN(nn.Module):
  """models.CNN with its convolutions computed by `conv`."""
  conv: object = lax.conv_general_dilated
  num_classes: int = 10

  @nn.compact
  def __call__(self, x):
    x = nn.Conv(32, (3, 3), conv_general_dilated=self.conv)(x)
    x = POOL(nn.relu(x))
    x = nn.Conv(64, (3, 3), conv_general_dilated=self.conv)(x)
    x = POOL(nn.relu(x))
    x = nn.relu(nn.Dense(256)(x.reshape((x.shape[0], -1))))
    return nn.Dense(self.num_classes)(x)


def main():
  lowering, batch, micro = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
  # train.create_train_state passes config.conv_lowering: LOWERING replaces
  # it, except `project_LOWERING`, the project's own (models.CNN's).
  project = models.CNN
  if lowering.startswith('project_'):
    models.CNN = lambda conv_lowering='xla': project(
        conv_lowering=lowering[len('project_'):])
  else:
    models.CNN = lambda conv_lowering='xla': CNN(conv=LOWERINGS[lowering])
  size = 12800
  data = input_pipeline.synthetic_datasets(size, 'conv_lowerings').train
  config = default.get_config()
  config.batch_size = batch
  rate = train.create_learning_rate_fn(config, 0.1, size // batch)
  mesh = parallel.create_mesh()
  state = parallel.put_replicated(
      train.create_train_state(jax.random.key(0), config, rate), mesh)
  train_ds = parallel.put_replicated(data, mesh)

  def epoch(state, seed):
    return jax.block_until_ready(train.train_epoch(
        state, train_ds, batch, jax.random.key(seed), rate, mesh=mesh,
        micro_batches=micro)[0])

  state = epoch(state, 0)
  best = 0.0
  for seed in (1, 2):
    start = time.perf_counter()
    state = epoch(state, seed)
    best = max(best, size // batch * batch / (time.perf_counter() - start))
  pooling = os.environ.get('POOL', 'reshape')
  print(f'{pooling} pooling, {lowering} batch {batch} micro {micro} '
        f'devices {DEVICES}: {best:,.0f} img/s, parameters '
        f'{parameter_digest(state.params)}')


def parameter_digest(params):
  """A short hash of the parameters' checksums (checkpoints.tree_checksums:
  each array's bytes, as exact resume compares them)."""
  checksums = checkpoints.tree_checksums(params)
  return hashlib.sha256(' '.join(
      f'{name}={checksums[name]}' for name in sorted(checksums)).encode()
                        ).hexdigest()[:12]


if __name__ == '__main__':
  main()
