"""One run per workdir, and one line for a workdir that cannot be used
(machinery/workdir.py)."""

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import PROJECT_DIR
from machinery import errors
from machinery import workdir
from runs import cli_args


def test_a_second_run_on_a_locked_workdir_is_refused(idx_dir, tmp_path):
  with workdir.locked(tmp_path):
    result = subprocess.run(cli_args(idx_dir, tmp_path), capture_output=True,
                            text=True, timeout=300)
  assert result.returncode == 1
  assert 'Traceback' not in result.stderr
  assert result.stderr.strip().splitlines()[-1] == (
      f'Error: {tmp_path} is in use by another run (PID {os.getpid()}); wait '
      'for it to finish, or pass another --workdir.')
  assert not (tmp_path / 'config.json').exists()  # it changed nothing


def test_kill_9_leaves_no_stale_lock(tmp_path):
  holder = subprocess.Popen(
      [sys.executable, '-c',
       'import sys, time; sys.path.insert(0, sys.argv[1]); '
       'from machinery import workdir; '
       'lock = workdir.locked(sys.argv[2]); lock.__enter__(); '
       'print("locked", flush=True); time.sleep(600)',
       str(PROJECT_DIR), str(tmp_path)], stdout=subprocess.PIPE, text=True)
  assert holder.stdout.readline().strip() == 'locked'
  with pytest.raises(errors.WorkdirError, match=f'PID {holder.pid}'):
    with workdir.locked(tmp_path):
      pass
  holder.send_signal(signal.SIGKILL)
  holder.wait()
  time.sleep(0.1)
  with workdir.locked(tmp_path):  # the kernel released it
    pass


@pytest.mark.parametrize('make,message', [
    (lambda p: '', '--workdir is empty'),
    (lambda p: (p / 'file').write_text('x') and p / 'file', 'is a file, not a '
     'folder'),
    (lambda p: ((p / 'run').mkdir(), (p / 'run' / 'checkpoints').write_text(
        'x')) and p / 'run', 'checkpoints is a file'),
])
def test_unusable_workdirs_are_one_line_errors(tmp_path, make, message):
  with pytest.raises(errors.WorkdirError, match=message) as error:
    workdir.check_usable(make(tmp_path))
  assert '\n' not in str(error.value)
