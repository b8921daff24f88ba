"""Shared fixtures: small, real-shaped MNIST-like data in the IDX format.

The suite makes its own data so it runs on a machine with no internet and no
copy of MNIST. The images are 28x28 uint8 with a class-dependent bright patch
on noise: learnable in a few dozen SGD steps, so a falling loss is a real
signal, yet nothing like the real digits.
"""

import atexit
import gzip
import os
import pathlib
import shutil
import struct
import tempfile

# One persistent XLA compilation cache for the whole test session, this
# process and every run, tool and worker it starts (they inherit the
# variables): the suite compiles the same small programs in dozens of
# processes, and a cached one starts in half the time. Only the tests do
# this; a user's runs compile as they always did. The cache holds the very
# executables XLA would build, so no number changes.
if 'JAX_COMPILATION_CACHE_DIR' not in os.environ:
  os.environ['JAX_COMPILATION_CACHE_DIR'] = tempfile.mkdtemp(
      prefix='jax-cache-')
  atexit.register(shutil.rmtree, os.environ['JAX_COMPILATION_CACHE_DIR'],
                  ignore_errors=True)
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '0')

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np
import optax
import pytest

PROJECT_DIR = pathlib.Path(__file__).resolve().parent.parent

# In-process tests run on one CPU device whatever the test order (the first
# train_and_evaluate would otherwise split the CPU for the whole session,
# see parallel.set_cpu_devices). Several devices are tested in subprocesses.
if 'xla_force_host_platform_device_count' not in os.environ.get('XLA_FLAGS',
                                                                 ''):
  jax.config.update('jax_num_cpu_devices', 1)

from configs import default  # pylint: disable=g-import-not-at-top,wrong-import-position
import input_pipeline  # pylint: disable=wrong-import-position

SHARED_MNIST = PROJECT_DIR.parent / 'shared' / 'data' / 'mnist'
TRAIN_SIZE = 512
TEST_SIZE = 200


def make_images(labels, rng):
  """One 6x6 bright patch per class, at a class-specific place, on noise."""
  images = rng.integers(0, 60, size=(len(labels), 28, 28), dtype=np.uint8)
  for i, label in enumerate(labels):
    row, col = 3 + (label // 5) * 12, 1 + (label % 5) * 5
    images[i, row:row + 6, col:col + 6] = rng.integers(200, 256, size=(6, 6))
  return images


def write_idx(path, array, compress=True):
  """Writes `array` (uint8) as an IDX file, gzip-compressed if `compress`."""
  magic = 0x800 | array.ndim
  payload = (struct.pack('>I', magic) +
             struct.pack(f'>{array.ndim}I', *array.shape) +
             np.ascontiguousarray(array, np.uint8).tobytes())
  opener = gzip.open if compress else open
  with opener(path, 'wb') as f:
    f.write(payload)


def write_idx_dataset(directory, train_size=TRAIN_SIZE, test_size=TEST_SIZE,
                      compress=True, seed=0):
  """Writes the four standard files into `directory`; returns the arrays."""
  directory = pathlib.Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  rng = np.random.default_rng(seed)
  suffix = '.gz' if compress else ''
  arrays = {}
  for split, size in (('train', train_size), ('test', test_size)):
    labels = rng.integers(0, 10, size=size).astype(np.uint8)
    images = make_images(labels, rng)
    images_stem, labels_stem = input_pipeline.SPLIT_FILES[split]
    write_idx(directory / (images_stem + suffix), images, compress)
    write_idx(directory / (labels_stem + suffix), labels, compress)
    arrays[split] = (images, labels)
  return arrays


@pytest.fixture(scope='session')
def idx_dir(tmp_path_factory):
  """A folder of the four gzip IDX files of a small generated dataset."""
  directory = tmp_path_factory.mktemp('idx')
  write_idx_dataset(directory)
  return directory


def small_config(idx_folder, **overrides):
  """The default config, shrunk to seconds of CPU on the generated data."""
  config = default.get_config()
  config.data_source = 'idx'
  config.idx_dir = str(idx_folder)
  config.allow_download = False
  config.num_epochs = 2
  config.warmup_epochs = 1.0
  config.batch_size = 32
  config.eval_batch_size = 100
  config.cpu_devices = 1
  config.update(overrides)
  return config


@pytest.fixture(scope='session')
def reference(idx_dir, tmp_path_factory):
  """An uninterrupted run, in a subprocess like the interrupted ones."""
  import subprocess  # pylint: disable=g-import-not-at-top

  from runs import cli_args  # pylint: disable=g-import-not-at-top
  from runs import EPOCHS  # pylint: disable=g-import-not-at-top
  workdir = tmp_path_factory.mktemp('reference')
  result = subprocess.run(cli_args(idx_dir, workdir, epochs=EPOCHS),
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  return workdir


def cnn_loss_and_grads(module, params, images, labels):
  """The mean cross-entropy of `module` on a batch and its gradient in the
  parameters, under jit: to compare two CNNs' math."""

  def loss(params):
    logits = module.apply({'params': params}, images)
    return optax.softmax_cross_entropy_with_integer_labels(
        logits, labels).mean()
  return jax.jit(jax.value_and_grad(loss))(params)


WORDS = ('the', 'nation', 'people', 'congress', 'law', 'year', 'war', 'peace',
         'trade', 'we', 'our', 'shall', 'must', 'will', 'new', 'great', 'and',
         'of', 'to', 'in', 'for', 'is', 'states', 'union', 'government')


def write_text_corpus(folder, documents=12, size=2500, seed=0):
  """`documents` .txt files of lowercase sentences from a small vocabulary:
  real-shaped text (words, spaces, full stops, newlines) that a tiny
  transformer learns in a few dozen steps. Returns the folder."""
  folder = pathlib.Path(folder)
  folder.mkdir(parents=True, exist_ok=True)
  rng = np.random.default_rng(seed)
  for i in range(documents):
    sentences, length = [], 0
    while length < size:
      words = rng.choice(WORDS, size=rng.integers(4, 10))
      sentence = ' '.join(words).capitalize() + '.'
      sentences.append(sentence)
      length += len(sentence) + 1
    (folder / f'address_{i:02d}.txt').write_text(
        '\n'.join(sentences) + '\n', encoding='utf-8')
  return folder


@pytest.fixture(scope='session')
def text_dir(tmp_path_factory):
  """A folder of small generated .txt documents for the language model."""
  return write_text_corpus(tmp_path_factory.mktemp('text'))


def small_lm_config(text_folder, **overrides):
  """configs/lm.py shrunk to seconds of CPU on the generated text."""
  from configs import lm  # pylint: disable=g-import-not-at-top
  config = lm.get_config()
  config.text_path = str(text_folder)
  config.allow_download = False
  config.context_length = 16
  config.num_layers = 1
  config.width = 32
  config.num_heads = 2
  config.batch_size = 16
  config.eval_batch_size = 64
  config.eval_examples = 0
  config.steps_per_epoch = 8
  config.num_epochs = 3
  config.warmup_epochs = 0.5
  config.learning_rate = 1e-2
  config.log_every_steps = 4
  config.cpu_devices = 1
  config.update(overrides)
  return config
