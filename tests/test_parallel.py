"""Data parallelism: 4 CPU devices follow the 1-device trajectory.

XLA's device count is fixed when JAX starts, so the 4-device run happens in a
subprocess with XLA_FLAGS=--xla_force_host_platform_device_count=4.
"""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from conftest import PROJECT_DIR
from conftest import small_config
from conftest import TRAIN_SIZE
import input_pipeline
from machinery import parallel
from machinery import validation
import train

# One worker runs this module, so that a four-device run (its module
# fixture) is built once, not once per worker (pytest.ini: loadgroup).
pytestmark = pytest.mark.xdist_group('test_parallel')

FOUR_DEVICES = '--xla_force_host_platform_device_count=4'


@pytest.fixture(scope='module')
def four_device_run(idx_dir, tmp_path_factory):
  env = dict(os.environ, XLA_FLAGS=FOUR_DEVICES,
             PYTHONPATH=os.pathsep.join([str(PROJECT_DIR),
                                         str(PROJECT_DIR / 'tests')]))
  params = tmp_path_factory.mktemp('parallel') / 'params.npz'
  result = subprocess.run(
      [sys.executable, str(PROJECT_DIR / 'tests' / 'parallel_worker.py'),
       str(idx_dir), str(params)], capture_output=True, text=True,
      timeout=600, env=env)
  assert result.returncode == 0, result.stderr[-3000:]
  line = [l for l in result.stdout.splitlines() if l.startswith('RESULT ')]
  runs = json.loads(line[-1][len('RESULT '):])
  with np.load(params) as saved:
    for name in saved.files:
      runs[name]['params'] = saved[name]
  return runs


def test_four_devices_match_one_device(four_device_run):
  four, one = four_device_run['four'], four_device_run['one']
  assert (four['devices'], one['devices']) == (4, 1)
  steps = TRAIN_SIZE // 32
  assert len(four['loss']) == len(one['loss']) == steps
  # The schedule is a function of the step alone: identical.
  assert four['learning_rate'] == one['learning_rate']
  # Same global batch, gradients summed in another order: float tolerance.
  np.testing.assert_allclose(four['loss'], one['loss'], rtol=2e-4, atol=1e-5)
  np.testing.assert_allclose(four['accuracy'], one['accuracy'], atol=1e-6)
  # Every parameter (not a summary of them), after an epoch of updates.
  assert four['params'].size == one['params'].size > 100_000
  np.testing.assert_allclose(four['params'], one['params'], rtol=1e-4,
                             atol=1e-6)
  np.testing.assert_allclose(four['test'], one['test'], rtol=1e-4, atol=1e-6)
  assert four['replicated']  # params and momentum on all 4 devices


def test_micro_batches_follow_the_same_trajectory(four_device_run):
  one, micro = four_device_run['one'], four_device_run['one_micro']
  assert micro['learning_rate'] == one['learning_rate']
  np.testing.assert_allclose(micro['loss'], one['loss'], rtol=2e-4, atol=1e-5)
  np.testing.assert_allclose(micro['params'], one['params'], rtol=1e-4,
                             atol=1e-6)


def test_batch_not_divisible_by_devices_is_a_clear_error(four_device_run):
  assert four_device_run['error'] == (
      'config.batch_size=30 is invalid: must be a multiple of the 4 devices '
      'the batch is split over')


def test_micro_batch_gradient_equals_full_batch_gradient(idx_dir):
  config = small_config(idx_dir)
  data = input_pipeline.load_datasets(config)
  lr_fn = train.create_learning_rate_fn(config, 0.1, 16)
  state = train.create_train_state(jax.random.key(0), config, lr_fn)
  batch = {key: value[:64] for key, value in data.train.items()}
  full, micro = (train._accumulated_grads(state, batch, k)  # pylint: disable=protected-access
                 for k in (1, 4))
  for got, want in zip(jax.tree.leaves(micro[0]), jax.tree.leaves(full[0])):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
  assert float(micro[1]) == pytest.approx(float(full[1]), rel=1e-5)
  assert int(micro[2]) == int(full[2])


def test_auto_cpu_devices_divide_both_batch_sizes(monkeypatch):
  config = small_config('unused', batch_size=128, eval_batch_size=1000)
  for cores, expected in ((1, 1), (2, 2), (3, 2), (16, 8)):
    monkeypatch.setattr(parallel.os, 'cpu_count', lambda c=cores: c)
    assert parallel.auto_cpu_devices(config) == expected
  config.batch_size = 96  # gcd(96, 1000) = 8
  monkeypatch.setattr(parallel.os, 'cpu_count', lambda: 6)
  assert parallel.auto_cpu_devices(config) == 4


def test_micro_batch_size_must_divide_the_batch():
  config = small_config('unused', batch_size=128, micro_batch_size=48)
  with pytest.raises(validation.ConfigError,
                     match=r'config.micro_batch_size=48 is invalid: must be 0 '
                     r'\(automatic\) or divide batch_size=128'):
    validation.validate_config(config)


def test_num_micro_batches_auto_on_cpu():
  mesh = parallel.create_mesh(jax.devices()[:1])
  assert parallel.num_micro_batches(small_config('x', batch_size=128), mesh) == 4
  assert parallel.num_micro_batches(small_config('x', batch_size=100), mesh) == 1
  assert parallel.num_micro_batches(
      small_config('x', batch_size=128, micro_batch_size=64), mesh) == 2
