"""Extras on the real MNIST files in ../shared/data/mnist, where present.

They are skipped, saying why, on a machine without that folder (a user's
clone, a fresh machine): the rest of the suite makes its own data.
"""

import numpy as np
import pytest

from conftest import SHARED_MNIST
from conftest import small_config
import input_pipeline

pytestmark = pytest.mark.skipif(
    not SHARED_MNIST.is_dir(),
    reason=f'real MNIST not found at {SHARED_MNIST} (only on this project\'s '
           'machines; the other tests use generated data)')

# Per-class counts published with the files (../shared/data/README.md).
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_real_mnist_idx_files_parse_with_published_counts():
  data = input_pipeline.load_idx_dir(SHARED_MNIST)
  assert data.train['image'].shape == (60000, 28, 28, 1)
  assert data.test['image'].shape == (10000, 28, 28, 1)
  assert np.bincount(data.train['label']).tolist() == TRAIN_COUNTS
  assert np.bincount(data.test['label']).tolist() == TEST_COUNTS


def test_real_mnist_has_the_readme_fingerprint_in_canonical_order():
  """The README's fingerprint; TFDS's copy of these files gives the same."""
  data = input_pipeline.load_idx_dir(SHARED_MNIST)
  assert data.fingerprint == 'fdcb6123cc55b282'
  assert data.train['label'][:10].tolist() == [0, 0, 2, 3, 1, 8, 3, 1, 6, 7]


def test_real_mnist_files_match_tfds_checksums(tmp_path):
  config = small_config(SHARED_MNIST, data_dir=str(tmp_path))
  assert input_pipeline.has_official_files(SHARED_MNIST, 'mnist', config)


def test_real_mnist_loss_falls_in_a_few_steps():
  import jax  # pylint: disable=g-import-not-at-top

  import train  # pylint: disable=g-import-not-at-top
  data = input_pipeline.load_idx_dir(SHARED_MNIST)
  config = small_config(SHARED_MNIST, warmup_epochs=0.0)
  lr_fn = train.create_learning_rate_fn(config, 0.1, steps_per_epoch=30)
  state = train.create_train_state(jax.random.key(0), config, lr_fn)
  losses = []
  for step in range(60):  # the whole 2-epoch schedule of 30-step epochs
    batch = {k: v[step * 128:(step + 1) * 128] for k, v in data.train.items()}
    state, metrics = train.train_step(state, batch, lr_fn)
    losses.append(float(metrics['loss']))
  assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
