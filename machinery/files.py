"""Writing files so that a symlink is never written through.

A link in a workdir (planted, or left by a copy tool) could point anywhere:
opening `workdir/config.json` for writing would truncate the file it names.
So every file the project writes is written whole into a new temporary file
beside it (created with O_EXCL | O_NOFOLLOW) and renamed over the name:
rename replaces a link itself, never its target. Files kept open for
appending (the CSV records) are opened with O_NOFOLLOW, after being
rewritten this way, so they are regular files of the workdir.
"""

import contextlib
import hashlib
import os
import pathlib
import shutil
import tempfile

from absl import logging

from machinery.errors import WorkdirError


def _temporary_name(path: pathlib.Path) -> pathlib.Path:
  return path.with_name(f'.{path.name}.{os.getpid()}.tmp')


def link_error(path) -> WorkdirError:
  """The one line for a symlink where the project would write."""
  return WorkdirError(f'{path} is a symbolic link; the project does not write '
                      'through links: remove it.')


def check_no_links_below(root, path) -> pathlib.Path:
  """Refuses (one line) a symlink at `path` or at any folder between `root`
  and it: a folder the project makes or writes into under a workdir
  (a study's member, a budget sweep's seed or branch, a carry folder's
  member) is its own, never a link to somewhere else. `root` itself is the
  folder the user named, and may be one. Returns `path`."""
  root, path = pathlib.Path(root), pathlib.Path(path)
  current = root
  for part in path.relative_to(root).parts:
    current = current / part
    if current.is_symlink():
      raise link_error(current)
  return path


def make_folder_below(root, path) -> pathlib.Path:
  """mkdir -p `path` under `root`, through no symlink (check_no_links_below
  before and after: a link planted meanwhile is refused, not written
  into)."""
  check_no_links_below(root, path)
  try:
    pathlib.Path(path).mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise WorkdirError(f'Cannot create {path}: {e.strerror or e}.') from None
  return check_no_links_below(root, path)


def read_bytes(path) -> bytes:
  """The bytes of a regular file, never read through a link (one line)."""
  path = pathlib.Path(path)
  if path.is_symlink():
    raise link_error(path)
  return path.read_bytes()


def check_not_directory(path) -> None:
  path = pathlib.Path(path)
  if path.is_dir() and not path.is_symlink():
    raise WorkdirError(f'{path} is a folder; a file is written there: move '
                       'it away or name another path.')


@contextlib.contextmanager
def replacing(path, mode='w', newline=None):
  """Yields a new file object whose contents replace `path` on success.

  On an error nothing at `path` changes and the temporary file is removed.
  """
  path = pathlib.Path(path)
  check_not_directory(path)
  partial = _temporary_name(path)
  if partial.is_symlink() or partial.exists():
    partial.unlink()  # our own leftover from a process with this PID
  flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
  try:
    fd = os.open(partial, flags, 0o644)
  except OSError as e:
    raise WorkdirError(f'Cannot write {path}: {e.strerror or e}.') from None
  try:
    with open(fd, mode, newline=newline) as f:
      yield f
    os.replace(partial, path)
  except BaseException:
    with contextlib.suppress(OSError):
      partial.unlink()
    raise


def write_text(path, text: str) -> None:
  with replacing(path) as f:
    f.write(text)


def write_bytes(path, data: bytes) -> None:
  with replacing(path, 'wb') as f:
    f.write(data)


def open_append(path, newline=''):
  """`path` opened for appending; refuses a symlink (one line)."""
  path = pathlib.Path(path)
  try:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW,
                 0o644)
  except OSError as e:
    if path.is_symlink():
      raise link_error(path) from None
    raise WorkdirError(f'Cannot write {path}: {e.strerror or e}.') from None
  return open(fd, 'a', newline=newline)


def save_figure(fig, path, dpi) -> None:
  """matplotlib's savefig, through `replacing` (the type from the suffix)."""
  path = pathlib.Path(path)
  with replacing(path, 'wb') as f:
    fig.savefig(f, dpi=dpi, format=path.suffix.lower().lstrip('.'))


def sha256(path) -> str:
  """The SHA-256 of a file, read in 1 MiB blocks."""
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


def unverified(directory, checksums: dict) -> list:
  """The names in `checksums` ({name: SHA-256}) whose file in `directory`
  is missing or has another SHA-256."""
  directory = pathlib.Path(directory)
  return [name for name, digest in checksums.items()
          if not (directory / name).is_file()
          or sha256(directory / name) != digest]


def cache_as_new_folder(source, destination, names, what) -> bool:
  """Copies the (already verified) files `names` of `source` into a new
  folder `destination`, for next time; False, with a log line, where it
  exists already (a folder the user has is never touched) or cannot be
  made. The files are staged in a new folder beside it and renamed into
  place, so a failed copy leaves nothing half-written."""
  destination = pathlib.Path(destination)
  if destination.exists() or destination.is_symlink():
    logging.info('Not caching %s in %s: it already exists (its files are '
                 'left as they are).', what, destination)
    return False
  try:
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f'.{destination.name}.',
                                            dir=destination.parent))
  except OSError as e:
    logging.info('Not caching %s in %s: %s', what, destination, e)
    return False
  try:
    for name in names:
      shutil.copyfile(pathlib.Path(source) / name, staging / name)
    os.rename(staging, destination)  # fails if destination appeared meanwhile
    return True
  except OSError as e:
    logging.info('Not caching %s in %s: %s', what, destination, e)
    shutil.rmtree(staging, ignore_errors=True)  # our own staging folder only
    return False
