"""Other structures of the data-parallel training step, A/B-timed in one process.

  .venv/bin/python docs/experiments/step_variants.py BATCH MICRO DEVICES \
      [ROUNDS] [STEPS] [VARIANT ...]

Why in one process: on a shared 2-core VM the speed of whole runs drifts by
10-30% from one minute to the next, more than the effects measured here.
All variants are compiled first; then each round runs STEPS steps of every
variant in turn (the order rotating from round to round), so every pair of
variants is compared within seconds. Reported: each variant's median
ms/step and images/s, and its per-round ratio to `base` (median, min, max).
Every variant trains its own copy of the same initial state on the same
batches, so at the end their parameters are compared with `base`'s
(bit-identical or the largest difference).

Variants (default: all):
  base            the project's step (train._step_on_device): XLA's SPMD
                  partitioner all-reduces each micro-batch's gradient, every
                  device updates all the parameters;
  sched           the same, compiled with XLA:CPU's concurrency-optimized
                  scheduler (`xla_cpu_enable_concurrency_optimized_scheduler`);
  presum          each device sums its own micro-batches' gradients first
                  (shard_map), then one pmean: half the all-reduced bytes with
                  two micro-batches; the float sums in another order;
  sharded_update  the momentum split over the devices along its first axis,
                  each device updating its half of every parameter, then the
                  halves gathered (ZeRO stage 1);
  conv1_patches   the first convolution (one input channel) as one
                  [N*H*W, 9] x [9, 32] matmul over its 3x3 patches instead of
                  XLA's convolution (same parameters, same math up to float
                  summation order);
  conv2_matmul_grad  the second convolution's kernel gradient as one matmul
                  of its patches built channels-first ([288, N*196]); its
                  forward and input gradient stay XLA's:
                  convolutions.matmul_kernel_gradient;
  both_convs      conv1_patches and conv2_matmul_grad together (what
                  conv_lowering='matmul' was at first);
  matmul_lowering the project's own `conv_lowering='matmul'`
                  (machinery/convolutions.py): now conv2_matmul_grad's math;
  ordered         micro-batch j + 1 starts after micro-batch j's backward
                  pass (an optimization barrier; the same numbers);
  matmul_ordered  matmul_lowering, ordered so;
  *_eigen1        base, conv2_matmul_grad and matmul_lowering compiled with
                  XLA's Eigen pool off (`xla_cpu_multi_thread_eigen`: each
                  device's dots on its own thread).
"""

import functools
import statistics
import sys
import time

DEVICES = int(sys.argv[3]) if len(sys.argv) > 3 else 1
import jax  # pylint: disable=g-import-not-at-top,wrong-import-position

jax.config.update('jax_num_cpu_devices', DEVICES)
from flax import linen as nn  # pylint: disable=g-import-not-at-top,wrong-import-position
import jax.numpy as jnp  # pylint: disable=g-import-not-at-top,wrong-import-position
from jax import lax  # pylint: disable=g-import-not-at-top,wrong-import-position
from jax.sharding import NamedSharding, PartitionSpec as P  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

sys.path.insert(0, __file__.rsplit('/docs/', 1)[0])
import input_pipeline  # pylint: disable=g-import-not-at-top,wrong-import-position
import models  # pylint: disable=g-import-not-at-top,wrong-import-position
import train  # pylint: disable=g-import-not-at-top,wrong-import-position
from configs import default  # pylint: disable=g-import-not-at-top,wrong-import-position
from machinery import convolutions  # pylint: disable=g-import-not-at-top,wrong-import-position
from machinery import parallel  # pylint: disable=g-import-not-at-top,wrong-import-position

MESH = parallel.create_mesh()
AXIS = parallel.DATA_AXIS
SCHEDULER = {'xla_cpu_enable_concurrency_optimized_scheduler': True}
ONE_THREAD = {'xla_cpu_multi_thread_eigen': False}


def _split_first_axis(x):
  if x.ndim and x.shape[0] % MESH.size == 0:
    return NamedSharding(MESH, P(AXIS))
  return NamedSharding(MESH, P())


def _constrain(tree, sharding_of):
  return jax.tree.map(
      lambda x: lax.with_sharding_constraint(x, sharding_of(x)), tree)


def _presum_grads(state, batch, num_micro_batches):
  """Each device's own micro-batches summed, then one mean over devices."""

  def local(state, batch):
    # Varying parameters: each device's own gradient (an unvarying input's
    # gradient would be summed over the devices by autodiff itself).
    state = state.replace(params=jax.tree.map(
        lambda p: lax.pcast(p, AXIS, to='varying'), state.params))
    grads, loss, correct = train._accumulated_grads(  # pylint: disable=protected-access
        state, batch, num_micro_batches)
    return (lax.pmean(grads, AXIS), lax.pmean(loss, AXIS),
            lax.psum(correct, AXIS))

  return jax.shard_map(local, mesh=MESH, in_specs=(P(), P(AXIS)),
                       out_specs=(P(), P(), P()))(state, batch)


def _ordered_grads(state, batch, num_micro_batches):
  """train._accumulated_grads with each micro-batch's input tied to the
  previous micro-batch's gradient by an optimization barrier: XLA cannot
  start micro-batch j + 1 before micro-batch j's backward pass is done (the
  project's step leaves that order to XLA's scheduler)."""
  previous = []

  def grads_and_metrics(state, part):
    if previous:
      _, part = lax.optimization_barrier((previous[-1], part))
    grads, loss, correct = train._grads_and_metrics(state, part)  # pylint: disable=protected-access
    previous.append(grads)
    return grads, loss, correct

  return train._accumulated_grads(  # pylint: disable=protected-access
      state, batch, num_micro_batches, grads_and_metrics)


def _variant_step(state, train_ds, epoch_indices, learning_rate_fn,
                  num_micro_batches, batch_sharding, kind):
  """train._step_on_device with the gradients combined the `kind` way."""
  row = state.step % epoch_indices.shape[0]
  indices = lax.dynamic_index_in_dim(epoch_indices, row, keepdims=False)
  batch = train._local_gather(train_ds, indices, batch_sharding.mesh)  # pylint: disable=protected-access
  if kind == 'presum':
    grads, loss, correct = _presum_grads(state, batch, num_micro_batches)
  elif kind == 'ordered':
    grads, loss, correct = _ordered_grads(state, batch, num_micro_batches)
  else:
    grads, loss, correct = train._accumulated_grads(  # pylint: disable=protected-access
        state, batch, num_micro_batches)
  if kind == 'sharded_update':
    grads = _constrain(grads, _split_first_axis)
    state = state.replace(opt_state=_constrain(state.opt_state,
                                               _split_first_axis))
  new_state = state.apply_gradients(grads=grads)
  if kind == 'sharded_update':
    new_state = new_state.replace(
        params=_constrain(new_state.params,
                          lambda _: NamedSharding(MESH, P())),
        opt_state=_constrain(new_state.opt_state, _split_first_axis))
  return new_state, {'learning_rate': learning_rate_fn(state.step),
                     'loss': loss,
                     'accuracy': correct / batch['label'].shape[0]}


def _only_for(layer_input_channels, lowering):
  """A conv_general_dilated that computes `lowering` for the layer whose
  input has `layer_input_channels` channels and leaves the other to XLA."""

  def conv(lhs, rhs, *args, **kwargs):
    if rhs.shape[2] == layer_input_channels:
      return lowering(lhs, rhs)
    return lax.conv_general_dilated(lhs, rhs, *args, **kwargs)
  return conv


def _one_channel_as_matmul(x, kernel):
  """A 'SAME' 3x3 convolution of a one-channel NHWC batch as one matmul of
  its patches, [N, H, W, 9] x [9, F] (the first form of
  conv_lowering='matmul', dropped: see docs/performance.md)."""
  padded = jnp.pad(x[..., 0], ((0, 0), (1, 1), (1, 1)))
  h, w = x.shape[1], x.shape[2]
  patches = jnp.stack([padded[:, i:i + h, j:j + w]
                       for i in range(3) for j in range(3)], axis=-1)
  return patches @ kernel.reshape(9, kernel.shape[3])


_conv1_patches = _only_for(1, _one_channel_as_matmul)
_conv2_matmul_grad = _only_for(32, convolutions.matmul_kernel_gradient)


class VariantCNN(nn.Module):
  """models.CNN, its convolutions computed by `conv1` and `conv2`."""
  conv1: object = lax.conv_general_dilated
  conv2: object = lax.conv_general_dilated
  num_classes: int = 10

  @nn.compact
  def __call__(self, x):
    x = models.avg_pool_2x2(nn.relu(
        nn.Conv(32, (3, 3), conv_general_dilated=self.conv1)(x)))
    x = models.avg_pool_2x2(nn.relu(
        nn.Conv(64, (3, 3), conv_general_dilated=self.conv2)(x)))
    x = nn.relu(nn.Dense(256)(x.reshape((x.shape[0], -1))))
    return nn.Dense(self.num_classes)(x)


STATIC = ('learning_rate_fn', 'num_micro_batches', 'batch_sharding')


def _jit(fn, **options):
  return jax.jit(fn, static_argnames=STATIC, donate_argnames=('state',),
                 **options)


def variants():
  """name -> (jitted step, the model's apply or None for models.CNN's)."""
  grads_step = lambda kind: _jit(functools.partial(_variant_step, kind=kind))
  step = _jit(train._step_on_device)  # pylint: disable=protected-access
  one_thread = _jit(train._step_on_device, compiler_options=ONE_THREAD)  # pylint: disable=protected-access
  return {
      'base': (step, None),
      'sched': (_jit(train._step_on_device, compiler_options=SCHEDULER),  # pylint: disable=protected-access
                None),
      'presum': (grads_step('presum'), None),
      'sharded_update': (grads_step('sharded_update'), None),
      'conv1_patches': (step, VariantCNN(conv1=_conv1_patches).apply),
      'conv2_matmul_grad': (step, VariantCNN(conv2=_conv2_matmul_grad).apply),
      'both_convs': (step, VariantCNN(conv1=_conv1_patches,
                                      conv2=_conv2_matmul_grad).apply),
      'matmul_lowering': (step, models.CNN(conv_lowering='matmul').apply),
      'ordered': (grads_step('ordered'), None),
      'matmul_ordered': (grads_step('ordered'),
                         models.CNN(conv_lowering='matmul').apply),
      'base_eigen1': (one_thread, None),
      'conv2_matmul_grad_eigen1': (one_thread,
                                   VariantCNN(conv2=_conv2_matmul_grad).apply),
      'matmul_lowering_eigen1': (one_thread,
                                 models.CNN(conv_lowering='matmul').apply),
  }


def main():
  batch, micro = int(sys.argv[1]), int(sys.argv[2])
  rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 15
  steps = int(sys.argv[5]) if len(sys.argv) > 5 else 20
  table = variants()
  names = sys.argv[6:] or list(table)
  size = 12800
  data = input_pipeline.synthetic_datasets(size, 'step_variants').train
  config = default.get_config()
  config.batch_size = batch
  rate = train.create_learning_rate_fn(config, 0.1, size // batch)
  initial = train.create_train_state(jax.random.key(0), config, rate)
  train_ds = parallel.put_replicated(data, MESH)
  indices = train.epoch_indices(jax.random.key(1), size, batch,
                                parallel.replicated(MESH))
  sharding = parallel.batch_sharded(MESH)
  states = {}
  for name in names:
    apply = table[name][1]
    state = initial.replace(apply_fn=apply) if apply else initial
    states[name] = parallel.put_replicated(state, MESH)

  def run(name, count):
    step = table[name][0]
    state, in_flight = states[name], parallel.InFlightLimit(MESH)
    for _ in range(count):
      state, metrics = step(state, train_ds, indices, rate, micro, sharding)
      in_flight.add(metrics['loss'])
    states[name] = jax.block_until_ready(state)

  for name in names:  # compile, and a few steps to warm up
    run(name, 3)
  seconds = {name: [] for name in names}
  for r in range(rounds):
    order = names[r % len(names):] + names[:r % len(names)]
    for name in order:
      start = time.perf_counter()
      run(name, steps)
      seconds[name].append((time.perf_counter() - start) / steps)
  print(f'batch {batch}, {micro} micro-batch(es), {DEVICES} device(s); '
        f'{rounds} rounds of {steps} steps per variant, interleaved')
  print('| variant | ms/step (median) | images/s (median) | ratio to base '
        'per round: median (min-max) | parameters vs base |')
  print('|---|---|---|---|---|')
  base_params = jax.device_get(states[names[0]].params)
  for name in names:
    ms = statistics.median(seconds[name]) * 1e3
    ratios = [b / s for b, s in zip(seconds[names[0]], seconds[name])]
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(
        jax.tree.leaves(base_params),
        jax.tree.leaves(jax.device_get(states[name].params))))
    same = 'identical' if diff == 0 else f'max diff {diff:.1e}'
    print(f'| {name} | {ms:.1f} | {batch / ms * 1e3:,.0f} | '
          f'{statistics.median(ratios):.3f} ({min(ratios):.3f}-'
          f'{max(ratios):.3f}) | {same} |')


if __name__ == '__main__':
  main()
