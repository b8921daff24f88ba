"""Nothing the project writes follows a symlink (machinery/files.py)."""

import pytest

from conftest import small_config
from machinery import errors
from machinery import files
from machinery import run_logs
from machinery import workdir as workdir_lib
from runs import run_tool
import train

OUTSIDE = 'a file of the user, outside the workdir\n'


def plant_link(workdir, name, tmp_path):
  """workdir/name -> a user's file outside it; returns that file."""
  target = tmp_path / f'outside_{name.strip(".")}'
  target.write_text(OUTSIDE)
  workdir.mkdir(parents=True, exist_ok=True)
  (workdir / name).symlink_to(target)
  return target


def test_writing_over_a_link_replaces_the_link_not_its_target(tmp_path):
  target = plant_link(tmp_path / 'w', 'config.json', tmp_path)
  files.write_text(tmp_path / 'w' / 'config.json', '{}')
  assert target.read_text() == OUTSIDE
  assert not (tmp_path / 'w' / 'config.json').is_symlink()
  assert (tmp_path / 'w' / 'config.json').read_text() == '{}'
  assert [p.name for p in (tmp_path / 'w').iterdir()] == ['config.json']


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
  path = tmp_path / 'study.md'
  path.write_text('old')
  with pytest.raises(RuntimeError):
    with files.replacing(path) as f:
      f.write('half')
      raise RuntimeError('disk trouble')
  assert path.read_text() == 'old'
  assert [p.name for p in tmp_path.iterdir()] == ['study.md']


def test_appending_through_a_link_is_refused(tmp_path):
  target = plant_link(tmp_path / 'w', 'train_steps.csv', tmp_path)
  with pytest.raises(errors.WorkdirError, match='is a symbolic link'):
    files.open_append(tmp_path / 'w' / 'train_steps.csv')
  assert target.read_text() == OUTSIDE


@pytest.mark.parametrize('names', [
    ('config.json', 'curves.png', 'train_steps.csv', 'epochs.csv',
     'diverged.txt'),
])
def test_a_run_never_writes_through_links_in_its_workdir(idx_dir, tmp_path,
                                                          names):
  workdir = tmp_path / 'run'
  targets = [plant_link(workdir, name, tmp_path) for name in names]
  train.train_and_evaluate(small_config(idx_dir, num_epochs=1), str(workdir))
  for target in targets:
    assert target.read_text() == OUTSIDE
  for name in names[:4]:
    assert not (workdir / name).is_symlink()
  assert len(run_logs.read_epochs(workdir)['epoch']) == 1


def test_a_lock_file_that_is_a_link_is_one_line(tmp_path):
  target = plant_link(tmp_path / 'w', workdir_lib.LOCK_FILE, tmp_path)
  with pytest.raises(errors.WorkdirError, match='is a symbolic link'):
    with workdir_lib.locked(tmp_path / 'w'):
      pass
  assert target.read_text() == OUTSIDE


@pytest.mark.parametrize('folder', ['checkpoints', 'tensorboard', 'members'])
def test_a_written_folder_that_is_a_link_is_refused(tmp_path, folder):
  elsewhere = tmp_path / 'elsewhere'
  elsewhere.mkdir()
  (tmp_path / 'w').mkdir()
  (tmp_path / 'w' / folder).symlink_to(elsewhere)
  with pytest.raises(errors.WorkdirError, match='never through a link'):
    workdir_lib.check_usable(tmp_path / 'w')
  assert not list(elsewhere.iterdir())


def test_tool_outputs_replace_links(tmp_path):
  target = tmp_path / 'user.png'
  target.write_bytes(b'mine')
  link = tmp_path / 'schedule.png'
  link.symlink_to(target)
  result = run_tool('tools/plot_schedule.py', f'--output={link}')
  assert result.returncode == 0, result.stderr[-2000:]
  assert target.read_bytes() == b'mine'
  assert link.read_bytes()[:4] == b'\x89PNG' and not link.is_symlink()


def test_an_output_that_is_a_folder_is_one_line(tmp_path):
  folder = tmp_path / 'pic.png'
  folder.mkdir()
  for tool, extra in (('tools/plot_schedule.py', ()),
                      ('tools/plot_run.py', (f'--workdir={tmp_path}',))):
    result = run_tool(tool, f'--output={folder}', *extra,
                      config='default.py' if 'schedule' in tool else None)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f'Error: --output={folder} is a folder: name a picture file in it.')
