"""The training code: applied learning rate, loss, and a whole small run."""

import csv

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import small_config, TRAIN_SIZE, TEST_SIZE
from machinery import run_logs
import input_pipeline
import train


@pytest.fixture(scope='module')
def data(idx_dir):
  return input_pipeline.load_idx_dir(idx_dir)


def fixed_batch(data, size=64):
  return {key: value[:size] for key, value in data.train.items()}


def loss_on(state, batch):
  return float(batch_loss_fn(state, batch)(state.params))


def batch_loss_fn(state, batch):
  """params -> loss on `batch`, with `state`'s model."""
  def loss_fn(params):
    logits = state.apply_fn({'params': params},
                            train.normalize_images(batch['image']))
    return train.cross_entropy_loss(logits, batch['label'])
  return loss_fn


def test_logged_learning_rate_is_the_one_applied(idx_dir, data):
  """With plain SGD, new_params == params - lr * grad for the logged lr."""
  config = small_config(idx_dir, momentum=0.0, warmup_epochs=2.0,
                        num_epochs=2)
  lr_fn = train.create_learning_rate_fn(config, 0.3, steps_per_epoch=4)
  state = train.create_train_state(jax.random.key(0), config, lr_fn)
  batch = fixed_batch(data)
  for step in range(3):  # inside the warmup: lr = 0, 0.0375, 0.075
    grads = jax.grad(batch_loss_fn(state, batch))(state.params)
    new_state, metrics = train.train_step(state, batch, lr_fn)
    lr = float(metrics['learning_rate'])
    assert lr == pytest.approx(0.3 * step / 8, rel=1e-6, abs=1e-12)
    applied = jax.tree.map(lambda p, g: p - lr * g, state.params, grads)
    for got, want in zip(jax.tree.leaves(new_state.params),
                         jax.tree.leaves(applied)):
      np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    moved = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(
        jax.tree.leaves(new_state.params), jax.tree.leaves(state.params)))
    assert (moved > 1e-6) == (step > 0)  # lr 0 at step 0: nothing moves
    state = new_state


def test_train_step_lowers_the_loss_on_a_fixed_batch(idx_dir, data):
  config = small_config(idx_dir, warmup_epochs=0.0)
  lr_fn = train.create_learning_rate_fn(config, 0.05, steps_per_epoch=10)
  state = train.create_train_state(jax.random.key(1), config, lr_fn)
  batch = fixed_batch(data)
  before = loss_on(state, batch)
  new_state, metrics = train.train_step(state, batch, lr_fn)
  assert float(metrics['loss']) == pytest.approx(before, rel=1e-5)
  assert loss_on(new_state, batch) < before
  assert int(new_state.step) == 1


def test_train_step_metrics_have_the_documented_keys(idx_dir, data):
  config = small_config(idx_dir)
  lr_fn = train.create_learning_rate_fn(config, 0.1, steps_per_epoch=10)
  state = train.create_train_state(jax.random.key(0), config, lr_fn)
  _, metrics = train.train_step(state, fixed_batch(data, 8), lr_fn)
  assert set(metrics) == {'learning_rate', 'loss', 'accuracy'}
  assert 0.0 <= float(metrics['accuracy']) <= 1.0


def test_eval_model_counts_every_example_once(idx_dir, data):
  """Batches that do not divide the split must not drop or repeat examples."""
  config = small_config(idx_dir)
  lr_fn = train.create_learning_rate_fn(config, 0.1, steps_per_epoch=10)
  state = train.create_train_state(jax.random.key(0), config, lr_fn)
  whole = train.eval_model(state, data.test, batch_size=TEST_SIZE)
  ragged = train.eval_model(state, data.test, batch_size=64)
  np.testing.assert_allclose(ragged, whole, rtol=1e-5)


def read_csv(path):
  with open(path, newline='') as f:
    return list(csv.DictReader(f))


def test_train_and_evaluate_end_to_end_on_idx_data(idx_dir, tmp_path):
  config = small_config(idx_dir, num_epochs=3, warmup_epochs=1.0)
  state = train.train_and_evaluate(config, str(tmp_path))
  steps_per_epoch = TRAIN_SIZE // config.batch_size
  assert int(state.step) == 3 * steps_per_epoch

  steps = read_csv(tmp_path / run_logs.STEP_LOG)
  assert [int(r['step']) for r in steps] == list(range(3 * steps_per_epoch))
  assert [int(r['epoch']) for r in steps] == [
      1 + i // steps_per_epoch for i in range(3 * steps_per_epoch)]
  lr_fn = train.create_learning_rate_fn(config, config.learning_rate,
                                        steps_per_epoch)
  logged = np.array([float(r['learning_rate']) for r in steps])
  expected = np.array([float(lr_fn(s)) for s in range(len(steps))])
  # Logged with repr, so the float32 survives; jit vs eager may differ in
  # the last bit, hence a tolerance of a few ulps.
  np.testing.assert_allclose(logged, expected, rtol=1e-6, atol=1e-12)

  losses = np.array([float(r['loss']) for r in steps])
  assert losses[-steps_per_epoch:].mean() < 0.5 * losses[:4].mean()

  epochs = read_csv(tmp_path / run_logs.EPOCH_LOG)
  assert [int(r['epoch']) for r in epochs] == [1, 2, 3]
  assert float(epochs[-1]['test_accuracy']) > 0.9  # chance is 0.1
  assert (tmp_path / 'config.json').exists()


def test_train_and_evaluate_drops_the_ragged_last_batch(idx_dir, tmp_path):
  config = small_config(idx_dir, num_epochs=1, warmup_epochs=0.0,
                        batch_size=100)
  state = train.train_and_evaluate(config, str(tmp_path))
  assert int(state.step) == TRAIN_SIZE // 100

