"""The optimizer table (optimizers.py): AdamW and schedule-free AdamW with
their weight-decay mask, gradient clipping, and what SGD keeps."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import small_config
import models
import optimizers
import train

CONSTANT = optax.constant_schedule(0.01)


def transformer_shapes():
  """The transformer's parameter tree, shapes only (no computation)."""
  model = models.Transformer(num_layers=1, width=16, num_heads=2,
                             context_length=8)
  return jax.eval_shape(model.init, jax.random.key(0),
                        jnp.zeros((1, 8), jnp.int32))['params']


def small_params():
  """A kernel, a bias, a LayerNorm scale and an embedding, as the models
  name them."""
  rng = np.random.default_rng(0)
  return {'dense': {'kernel': jnp.asarray(rng.normal(size=(4, 3)),
                                          jnp.float32),
                    'bias': jnp.asarray(rng.normal(size=3), jnp.float32)},
          'norm': {'scale': jnp.asarray(rng.normal(size=3), jnp.float32)},
          'embed': {'embedding': jnp.asarray(rng.normal(size=(5, 3)),
                                             jnp.float32)}}


def test_the_decay_mask_decays_weight_matrices_only():
  mask = optimizers.decay_mask(transformer_shapes())
  block = mask['block_0']
  assert block['mlp_in']['kernel'] and not block['mlp_in']['bias']
  assert block['attention']['query']['kernel']
  assert not block['attention_norm']['scale']
  assert not block['attention_norm']['bias']
  assert not mask['token_embedding']['embedding']
  assert not mask['position_embedding']['embedding']
  assert mask['output']['kernel'] and not mask['final_norm']['scale']


def test_adamw_with_no_gradient_shrinks_kernels_and_nothing_else():
  """Zero gradient: Adam's step is 0, so only the decoupled decay moves
  parameters: every kernel by the factor 1 - rate x weight_decay, every
  embedding, bias and LayerNorm scale not at all."""
  params = small_params()
  config = small_config('unused', optimizer='adamw', weight_decay=0.5)
  tx = optimizers.create_optimizer(config, CONSTANT)
  zeros = jax.tree.map(jnp.zeros_like, params)
  updates, _ = jax.jit(tx.update)(zeros, tx.init(params), params)
  moved = optax.apply_updates(params, updates)
  mask = optimizers.decay_mask(params)
  for decayed, before, after in zip(jax.tree.leaves(mask),
                                    jax.tree.leaves(params),
                                    jax.tree.leaves(moved)):
    want = before * (1 - 0.01 * 0.5) if decayed else before
    np.testing.assert_allclose(after, want, rtol=1e-6)


def test_schedule_free_adamw_is_optaxs_where_the_mask_does_not_matter():
  """Without weight decay the mask changes nothing: the composition here is
  optax.contrib.schedule_free_adamw, update for update (to the last float
  bit: a masked add of a zero decay is not the same sum), eval params too."""
  params = small_params()
  config = small_config('unused', optimizer='schedule_free_adamw',
                        schedule='constant', weight_decay=0.0)
  ours = optimizers.create_optimizer(config, CONSTANT)
  theirs = optax.contrib.schedule_free_adamw(CONSTANT, b1=0.9, b2=0.999,
                                             eps=1e-8, weight_decay=0.0)
  states = [ours.init(params), theirs.init(params)]
  values = [params, params]
  rng = jax.random.key(1)
  for _ in range(3):
    rng, key = jax.random.split(rng)
    leaves = jax.tree.leaves(params)
    grads = jax.tree.unflatten(jax.tree.structure(params), [
        jax.random.normal(jax.random.fold_in(key, i), leaf.shape)
        for i, leaf in enumerate(leaves)])
    for i, tx in enumerate((ours, theirs)):
      updates, states[i] = jax.jit(tx.update)(grads, states[i], values[i])
      values[i] = optax.apply_updates(values[i], updates)
  for a, b in zip(jax.tree.leaves(values[0]), jax.tree.leaves(values[1])):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)  # last float bit
  state = train.create_train_state(jax.random.key(0), config, CONSTANT)
  evaluated = optimizers.eval_params(config, state)
  assert jax.tree.structure(evaluated) == jax.tree.structure(state.params)


def test_clipping_bounds_the_step_and_is_absent_at_zero():
  """SGD without momentum, clipped at norm 1: a gradient of norm 10 moves
  the parameters by rate x 1. At grad_clip_norm=0 the transformation is
  optax.sgd itself (the same state), so SGD runs stay what they were."""
  params = {'w': jnp.zeros(4)}
  grads = {'w': jnp.full(4, 5.0)}  # global norm 10
  config = small_config('unused', momentum=0.0, grad_clip_norm=1.0)
  tx = optimizers.create_optimizer(config, CONSTANT)
  updates, _ = tx.update(grads, tx.init(params), params)
  assert float(optax.tree.norm(updates)) == pytest.approx(0.01)
  plain = optimizers.create_optimizer(small_config('unused'), CONSTANT)
  reference = optax.sgd(CONSTANT, 0.9)
  assert (jax.tree.structure(plain.init(params)) ==
          jax.tree.structure(reference.init(params)))


def test_schedule_free_eval_params_find_their_state_behind_a_clip():
  config = small_config('unused', optimizer='schedule_free_sgd',
                        schedule='constant', grad_clip_norm=1.0)
  state = train.create_train_state(jax.random.key(0), config, CONSTANT)
  assert isinstance(state.opt_state, tuple)
  evaluated = optimizers.eval_params(config, state)
  for a, b in zip(jax.tree.leaves(evaluated), jax.tree.leaves(state.params)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)  # x = y at first


def test_the_cnn_trains_with_adamw(idx_dir, tmp_path):
  """AdamW on the CNN through main.py's loop: the loss falls, and the rate
  recorded at every step is the schedule's (to float rounding: here it is
  evaluated outside the jitted step)."""
  from machinery import run_logs  # pylint: disable=g-import-not-at-top
  config = small_config(idx_dir, optimizer='adamw', learning_rate=1e-3,
                        weight_decay=1e-2, grad_clip_norm=1.0)
  train.train_and_evaluate(config, str(tmp_path))
  steps = run_logs.read_steps(tmp_path)
  assert steps['loss'][-8:].mean() < 0.5 * steps['loss'][:8].mean()
  lr_fn = train.create_learning_rate_fn(config, config.learning_rate,
                                        len(steps['step']) // 2)
  np.testing.assert_allclose(  # the schedule, evaluated outside the step
      steps['learning_rate'],
      np.asarray([lr_fn(s) for s in steps['step']], np.float32), rtol=1e-6)
  assert run_logs.read_config(tmp_path)['optimizer'] == 'adamw'
