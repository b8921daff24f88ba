"""Conv 2's kernel gradient alone, in five forms, by batch size.

  taskset -c 0 .venv/bin/python docs/experiments/conv2_kernel_gradient.py N

Times (best of 5 x 20 calls, jitted) the gradient of the CNN's second
convolution (3x3, 32 -> 64 channels, 14x14, 'SAME') with respect to its
kernel for a batch of N images, and that convolution's forward pass for
scale: `xla` (jax.vjp of lax.conv, what training runs), `patches_T` (one
dot of the [N*196, 288] patches contracting their first axis),
`patches_pre` (the patches built as [288, N*196], then one plain dot),
`per_window` (one [32, N*196] x [N*196, 64] dot per shifted window) and
`einsum9` (one dot_general over the 9 stacked windows). Prints ms and
GFLOP/s, and each form's relative error against `xla`. Under `taskset -c 0`
this is one core, as each of the project's CPU devices is.
"""

import sys
import time

import jax
from jax import lax
import jax.numpy as jnp

NHWC = ('NHWC', 'HWIO', 'NHWC')


def conv(x, kernel):
  return lax.conv_general_dilated(x, kernel, (1, 1), 'SAME',
                                  dimension_numbers=NHWC)


def windows(x):
  padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  return [padded[:, i:i + 14, j:j + 14, :] for i in range(3) for j in range(3)]


def forms(kernel):
  def xla(x, grad):
    return jax.vjp(lambda k: conv(x, k), kernel)[1](grad)[0]

  def patches_t(x, grad):
    patches = jnp.concatenate(windows(x), -1).reshape(-1, 288)
    return lax.dot_general(patches, grad.reshape(-1, 64),
                           (((0,), (0,)), ((), ()))).reshape(kernel.shape)

  def patches_pre(x, grad):
    padded = jnp.pad(x.transpose(3, 0, 1, 2),
                     ((0, 0), (0, 0), (1, 1), (1, 1)))
    patches = jnp.stack([padded[:, :, i:i + 14, j:j + 14]
                         for i in range(3) for j in range(3)]).reshape(288, -1)
    return (patches @ grad.reshape(-1, 64)).reshape(kernel.shape)

  def per_window(x, grad):
    flat = grad.reshape(-1, 64)
    return jnp.stack([w.reshape(-1, 32).T @ flat
                      for w in windows(x)]).reshape(kernel.shape)

  def einsum9(x, grad):
    return jnp.einsum('knhwc,nhwf->kcf', jnp.stack(windows(x)),
                      grad).reshape(kernel.shape)

  return {'xla': xla, 'patches_T': patches_t, 'patches_pre': patches_pre,
          'per_window': per_window, 'einsum9': einsum9,
          'forward (for scale)': lambda x, grad: conv(x, kernel)}


def seconds_per_call(function, *args):
  out = function(*args).block_until_ready()
  best = float('inf')
  for _ in range(5):
    start = time.perf_counter()
    for _ in range(20):
      out = function(*args)
    out.block_until_ready()
    best = min(best, (time.perf_counter() - start) / 20)
  return best


def main():
  n = int(sys.argv[1]) if len(sys.argv) > 1 else 32
  x = jax.random.normal(jax.random.key(0), (n, 14, 14, 32))
  grad = jax.random.normal(jax.random.key(1), (n, 14, 14, 64))
  kernel = jax.random.normal(jax.random.key(2), (3, 3, 32, 64))
  flops = 2 * n * 196 * 288 * 64
  table = forms(kernel)
  reference = jax.jit(table['xla'])(x, grad)
  for name, function in table.items():
    function = jax.jit(function)
    seconds = seconds_per_call(function, x, grad)
    error = ('' if name.startswith('forward') else
             f', error {float(jnp.abs(function(x, grad) - reference).max() / jnp.abs(reference).max()):.1e}')
    print(f'N={n} {name}: {seconds * 1e3:.2f} ms, '
          f'{flops / seconds / 1e9:.0f} GFLOP/s{error}')


if __name__ == '__main__':
  main()
