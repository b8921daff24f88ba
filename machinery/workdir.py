"""One run per workdir: an OS-level lock, and one-line errors for bad paths.

The lock is `fcntl.flock` on `workdir/.lock`, which holds the owner's PID.
The kernel releases it when the process ends, however it ends, so a run
killed with `kill -9` leaves no stale lock behind; the file itself stays.
"""

import contextlib
import errno
import fcntl
import os
import pathlib

from machinery import checkpoints
from machinery import files
from machinery.errors import WorkdirError

LOCK_FILE = '.lock'
# Folders a run or study writes into: none of them may be a symlink.
WRITTEN_FOLDERS = (checkpoints.CHECKPOINT_DIR, checkpoints.DAMAGED_DIR,
                   'tensorboard', 'members')


def check_usable(workdir) -> pathlib.Path:
  """The workdir as a path, if it is (or can become) a folder of runs."""
  if not str(workdir).strip():
    raise WorkdirError('--workdir is empty: name a folder for the run, e.g. '
                       '--workdir=runs/default.')
  path = pathlib.Path(workdir)
  if path.exists() and not path.is_dir():
    raise WorkdirError(f'--workdir={workdir} is a file, not a folder.')
  existing = next(p for p in [path.absolute(), *path.absolute().parents]
                  if p.exists())
  if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
    raise WorkdirError(f'Cannot create --workdir={workdir}: {existing} is '
                       'not a writable folder.')
  inner = path / checkpoints.CHECKPOINT_DIR
  if inner.exists() and not inner.is_dir():
    raise WorkdirError(f'{inner} is a file; the run keeps its checkpoints '
                       'there: move it away or pass another --workdir.')
  for name in WRITTEN_FOLDERS:
    if (path / name).is_symlink():
      raise WorkdirError(f'{path / name} is a symbolic link; the project '
                         'writes only inside its workdir, never through a '
                         'link: remove it or pass another --workdir.')
  return path


def _make(path):
  try:
    path.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise WorkdirError(f'Cannot create --workdir={path}: '
                       f'{e.strerror or e}.') from None


@contextlib.contextmanager
def locked(workdir):
  """Creates `workdir` if needed and holds its lock for the `with` block."""
  path = check_usable(workdir)
  _make(path)
  try:
    fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW,
                 0o644)
  except OSError as e:
    if (path / LOCK_FILE).is_symlink():
      raise files.link_error(path / LOCK_FILE) from None
    raise WorkdirError(f'Cannot write in --workdir={path}: '
                       f'{e.strerror or e}.') from None
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
        raise
      owner = os.pread(fd, 32, 0).decode(errors='replace').strip() or '?'
      raise WorkdirError(
          f'{path} is in use by another run (PID {owner}); wait for it to '
          'finish, or pass another --workdir.') from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f'{os.getpid()}\n'.encode(), 0)
    yield path
  finally:
    os.close(fd)  # releases the lock
