"""The training code: applied learning rate, loss, and a whole small run."""

import csv

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import small_config
from conftest import TEST_SIZE
from conftest import TRAIN_SIZE
import input_pipeline
from machinery import run_logs
import tasks
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
  inputs, labels = tasks.inputs_and_targets(batch)

  def loss_fn(params):
    return train.cross_entropy_loss(state.apply_fn({'params': params},
                                                   inputs), labels)
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


def test_nesterov_applies_the_look_ahead_update(idx_dir, data):
  """nesterov=True: t = g + m t_prev, update = -lr (g + m t), rate as logged."""
  config = small_config(idx_dir, momentum=0.5, nesterov=True,
                        schedule='constant', warmup_epochs=0.0)
  lr_fn = train.create_learning_rate_fn(config, 0.2, steps_per_epoch=4)
  state = train.create_train_state(jax.random.key(0), config, lr_fn)
  batch = fixed_batch(data)
  trace = jax.tree.map(jnp.zeros_like, state.params)
  for _ in range(2):
    grads = jax.grad(batch_loss_fn(state, batch))(state.params)
    new_state, metrics = train.train_step(state, batch, lr_fn)
    lr = float(metrics['learning_rate'])
    assert lr == pytest.approx(0.2)
    trace = jax.tree.map(lambda g, t: g + 0.5 * t, grads, trace)
    applied = jax.tree.map(lambda p, g, t: p - lr * (g + 0.5 * t),
                           state.params, grads, trace)
    for got, want in zip(jax.tree.leaves(new_state.params),
                         jax.tree.leaves(applied)):
      np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    state = new_state


def test_wsd_logged_rate_is_the_one_applied_across_the_decay(idx_dir, data):
  """Plain SGD under wsd: the logged rate moves the params, step by step."""
  config = small_config(idx_dir, momentum=0.0, schedule='wsd',
                        warmup_epochs=0.0, num_epochs=2, decay_epochs=1.0)
  lr_fn = train.create_learning_rate_fn(config, 0.2, steps_per_epoch=3)
  state = train.create_train_state(jax.random.key(0), config, lr_fn)
  batch = fixed_batch(data)
  for step in range(6):  # stable 0..3 (S = 3 is the peak), decay 4, 5
    grads = jax.grad(batch_loss_fn(state, batch))(state.params)
    new_state, metrics = train.train_step(state, batch, lr_fn)
    lr = float(metrics['learning_rate'])
    assert lr == pytest.approx(0.2 * (1 - max(step - 3, 0) / 3), rel=1e-6)
    applied = jax.tree.map(lambda p, g: p - lr * g, state.params, grads)
    for got, want in zip(jax.tree.leaves(new_state.params),
                         jax.tree.leaves(applied)):
      np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    state = new_state


def test_schedule_free_logged_rate_is_the_one_applied(idx_dir, data):
  """Schedule-free SGD steps its z sequence by -lr * grad(y), y = params."""
  config = small_config(idx_dir, optimizer='schedule_free_sgd',
                        schedule='constant', warmup_epochs=1.0,
                        momentum=0.9, num_epochs=2)
  lr_fn = train.create_learning_rate_fn(config, 0.5, steps_per_epoch=4)
  state = train.create_train_state(jax.random.key(0), config, lr_fn)
  batch = fixed_batch(data)
  for step in range(6):  # warmup 0, 0.125, 0.25, 0.375, then 0.5
    grads = jax.grad(batch_loss_fn(state, batch))(state.params)
    new_state, metrics = train.train_step(state, batch, lr_fn)
    lr = float(metrics['learning_rate'])
    assert lr == pytest.approx(0.5 * min(step, 4) / 4, rel=1e-6, abs=1e-12)
    applied = jax.tree.map(lambda z, g: z - lr * g, state.opt_state.z, grads)
    for got, want in zip(jax.tree.leaves(new_state.opt_state.z),
                         jax.tree.leaves(applied)):
      np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    state = new_state


def test_schedule_free_run_evaluates_the_averaged_params(idx_dir, tmp_path,
                                                         data):
  config = small_config(idx_dir, optimizer='schedule_free_sgd',
                        schedule='constant', num_epochs=2, warmup_epochs=0.5,
                        learning_rate=0.5)
  state = train.train_and_evaluate(config, str(tmp_path))
  averaged = optax.contrib.schedule_free_eval_params(state.opt_state,
                                                     state.params)
  want = train.eval_model(state.replace(params=averaged), data.test, 100)
  trained_point = train.eval_model(state, data.test, 100)
  assert want[0] != trained_point[0]  # the two points differ
  last = read_csv(tmp_path / run_logs.EPOCH_LOG)[-1]
  assert float(last['test_loss']) == pytest.approx(want[0], rel=1e-6)
  assert float(last['test_accuracy']) == pytest.approx(want[1])


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


@pytest.mark.parametrize('micro_batches', [1, 2])
def test_train_step_metrics_are_the_batchs_own(idx_dir, data, micro_batches):
  """loss, accuracy and rate equal a by-hand computation on the batch."""
  config = small_config(idx_dir, warmup_epochs=0.5)
  lr_fn = train.create_learning_rate_fn(config, 0.1, steps_per_epoch=10)
  state = train.create_train_state(jax.random.key(0), config, lr_fn)
  state = state.replace(step=jnp.asarray(3, jnp.int32))
  batch = fixed_batch(data, 16)
  logits = np.asarray(state.apply_fn(
      {'params': state.params}, batch['image'].astype(np.float32) / 255.0),
                      np.float64)
  log_probs = logits - logits.max(-1, keepdims=True)
  log_probs -= np.log(np.exp(log_probs).sum(-1, keepdims=True))
  labels = batch['label']
  want_loss = -log_probs[np.arange(len(labels)), labels].mean()
  want_accuracy = np.mean(logits.argmax(-1) == labels)
  _, metrics = train.train_step(state, batch, lr_fn, micro_batches)
  assert set(metrics) == {'learning_rate', 'loss', 'accuracy'}
  assert float(metrics['loss']) == pytest.approx(want_loss, rel=1e-5)
  assert float(metrics['accuracy']) == want_accuracy
  assert float(metrics['learning_rate']) == pytest.approx(0.1 * 3 / 5,
                                                          rel=1e-6)


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


def test_train_epoch_resumes_mid_epoch_and_reports_every_n_steps(idx_dir):
  config = small_config(idx_dir, batch_size=32)
  data = train.input_pipeline.load_datasets(config)
  lr_fn = train.create_learning_rate_fn(config, 0.1, TRAIN_SIZE // 32)
  state = train.create_train_state(train.jax.random.key(0), config, lr_fn)
  state = state.replace(step=state.step + 3)  # as if resumed at step 3
  reports = []
  state, stopped = train.train_epoch(
      state, data.train, 32, train.jax.random.key(1), lr_fn,
      report=lambda first, m: reports.append((first, len(m['loss']))),
      report_every=5)
  assert not stopped
  assert reports == [(3, 5), (8, 5), (13, 3)]  # steps 3..15 of 16
  assert int(state.step) == 16


def epoch_run(config, data, state, steps_per_call, stop_after_calls=None,
              batch_size=48):
  """train_epoch of one epoch; its per-step metrics; the final state."""
  lr_fn = train.create_learning_rate_fn(config, 0.1, TRAIN_SIZE // batch_size)
  rows = {}
  calls = []

  def report(first_step, metrics):
    for key, values in metrics.items():
      rows.setdefault(key, []).extend(values.tolist())

  def stop():
    calls.append(1)
    return stop_after_calls is not None and len(calls) == stop_after_calls

  state, stopped = train.train_epoch(
      state, data.train, batch_size, jax.random.key(1), lr_fn,
      report=report, report_every=3, stop=stop, steps_per_call=steps_per_call)
  return state, stopped, rows


def fresh_state(config, batch_size=48):
  lr_fn = train.create_learning_rate_fn(config, 0.1, TRAIN_SIZE // batch_size)
  return train.create_train_state(jax.random.key(0), config, lr_fn)


def test_several_steps_per_call_are_the_same_steps(idx_dir, data):
  """10 steps (batch 48) with 4 per call: calls of 4, 4, then 1, 1."""
  config = small_config(idx_dir, warmup_epochs=1.0, num_epochs=2)
  one, _, rows_one = epoch_run(config, data, fresh_state(config), 1)
  four, _, rows_four = epoch_run(config, data, fresh_state(config), 4)
  assert int(four.step) == int(one.step) == 10
  np.testing.assert_array_equal(rows_four['learning_rate'],
                                rows_one['learning_rate'])
  np.testing.assert_allclose(rows_four['loss'], rows_one['loss'], rtol=1e-5)
  for a, b in zip(jax.tree.leaves(four.params), jax.tree.leaves(one.params)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_a_stop_between_calls_resumes_exactly(idx_dir, data):
  config = small_config(idx_dir, warmup_epochs=1.0, num_epochs=2)
  whole, _, rows_whole = epoch_run(config, data, fresh_state(config), 4)
  part, stopped, rows_part = epoch_run(config, data, fresh_state(config), 4,
                                       stop_after_calls=1)
  assert stopped and int(part.step) == 4  # after one call of 4 steps
  rest, _, rows_rest = epoch_run(config, data, part, 4)
  for a, b in zip(jax.tree.leaves(rest.params), jax.tree.leaves(whole.params)):
    np.testing.assert_array_equal(a, b)
  for key in ('learning_rate', 'loss'):
    np.testing.assert_array_equal(rows_part[key] + rows_rest[key],
                                  rows_whole[key])
