"""Ways to compute the CNN's 3x3 convolutions: the `conv_lowering` table.

Each entry is a `conv_general_dilated` for `nn.Conv`, so the parameter tree,
the checkpoints and the model's math stay the same; only the order of the
float sums differs (relative differences of about 1e-7 per step, which
training amplifies like any other rounding: results keep their accuracy,
not their last digits).

  'xla'     lax.conv_general_dilated and its autodiff: the seed's, and what
            every committed result of this project was trained with.
  'matmul'  XLA's forward pass and input gradient (the same numbers, bit
            for bit), with the kernel gradient of every convolution of a
            many-channel input as one [9*C, N*H*W] x [N*H*W, F] matmul of its
            patches: XLA:CPU's own kernel gradient ran at about half the
            forward's FLOP rate (docs/performance.md, "Convolutions as
            matmuls"). The first layer (one input channel, a cheap kernel
            gradient) and anything but a stride-1 'SAME' odd-square
            convolution without dilation or groups stay XLA's.
"""

import jax
from jax import lax
import jax.numpy as jnp

NHWC = ('NHWC', 'HWIO', 'NHWC')


def _same_conv(x, kernel):
  return lax.conv_general_dilated(x, kernel, (1, 1), 'SAME',
                                  dimension_numbers=NHWC)


def _windows(x, size):
  """The size x size windows of a 'SAME'-padded batch whose last two axes
  are height and width: size**2 shifted copies, in (row, column) order."""
  half, (h, w) = size // 2, x.shape[-2:]
  padded = jnp.pad(x, [(0, 0)] * (x.ndim - 2) + [(half, half)] * 2)
  return [padded[..., i:i + h, j:j + w]
          for i in range(size) for j in range(size)]


@jax.custom_vjp
def matmul_kernel_gradient(x, kernel):
  """XLA's 'SAME' convolution, whose kernel gradient is one matmul."""
  return _same_conv(x, kernel)


def _forward(x, kernel):
  return _same_conv(x, kernel), (x, kernel)


def _backward(saved, grad):
  """dX: XLA's own (the vjp in x alone: the same numbers as 'xla'); dW: the
  patches built channels-first, [size**2 * C, N*H*W], times the gradient
  [N*H*W, F] (the form that ran fastest on one core; see
  docs/experiments/conv2_kernel_gradient.py)."""
  x, kernel = saved
  size, _, channels, features = kernel.shape
  grad_x = jax.vjp(lambda x: _same_conv(x, kernel), x)[1](grad)[0]
  patches = jnp.stack(_windows(x.transpose(3, 0, 1, 2), size)).reshape(
      size * size * channels, -1)  # [9 * C, N * H * W]
  grad_kernel = patches @ grad.reshape(-1, features)
  return grad_x, grad_kernel.reshape(kernel.shape)


matmul_kernel_gradient.defvjp(_forward, _backward)


def is_plain(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
              dimension_numbers, feature_group_count):
  """Whether the call is what this CNN's layers ask: stride 1, 'SAME', no
  dilation, NHWC x HWIO, one group, an odd square kernel."""
  ones = (None, 1, (1, 1))
  return (tuple(window_strides) == (1, 1) and padding == 'SAME'
          and lhs_dilation in ones and rhs_dilation in ones
          and lhs.ndim == 4 and rhs.ndim == 4
          and lax.conv_dimension_numbers(lhs.shape, rhs.shape,
                                         dimension_numbers)
          == lax.conv_dimension_numbers(lhs.shape, rhs.shape, NHWC)
          and feature_group_count == 1 and rhs.shape[0] == rhs.shape[1]
          and rhs.shape[0] % 2 == 1)


def as_matmuls(lhs, rhs, window_strides, padding, lhs_dilation=None,
               rhs_dilation=None, dimension_numbers=None,
               feature_group_count=1, precision=None, **kwargs):
  """The 'matmul' lowering: a conv_general_dilated for nn.Conv."""
  if is_plain(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
               dimension_numbers, feature_group_count):
    if rhs.shape[2] > 1:
      return matmul_kernel_gradient(lhs, rhs)
  return lax.conv_general_dilated(
      lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
      rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
      feature_group_count=feature_group_count, precision=precision, **kwargs)


CONV_LOWERINGS = {
    'xla': lax.conv_general_dilated,
    'matmul': as_matmuls,
}
