"""Studies: the grid, and members trained one by one or stacked with vmap
(the studies package)."""

import json
import os
import re
import signal
import pathlib
import subprocess

import jax
import numpy as np
import pytest

from conftest import PROJECT_DIR
from conftest import small_config
import input_pipeline
from machinery import bookkeeping
from machinery import cli
from machinery import checkpoints
from machinery import errors
from machinery import run_logs
from machinery import validation
from machinery import workdir as workdir_lib
import studies
import train


def test_vary_values_take_the_fields_types():
  config = small_config('x')
  assert studies.parse_vary('schedule=constant,sgdr', config) == (
      'schedule', ['constant', 'sgdr'])
  assert studies.parse_vary('warmup_epochs=0,1.5', config) == (
      'warmup_epochs', [0.0, 1.5])
  assert studies.parse_vary('batch_size=32,64', config) == (
      'batch_size', [32, 64])
  assert studies.parse_vary('tensorboard=false', config) == (
      'tensorboard', [False])


@pytest.mark.parametrize('text,message', [
    ('schedul=sgdr', "config has no field 'schedul'"),
    ('batch_size=big', "batch_size='big' is not a int"),
    ('seed=1,2', 'use --seeds=N'),
    ('schedule', 'write FIELD=VALUE1,VALUE2'),
])
def test_bad_vary_is_one_line(text, message):
  with pytest.raises(errors.ConfigError, match=message):
    studies.parse_vary(text, small_config('x'))


@pytest.mark.parametrize('finished, diverged, counts', [
    ('1', '0', True), ('1', '', True), ('0', '0', False), ('1', '1', False)])
def test_only_finished_members_that_did_not_diverge_are_pooled(
    finished, diverged, counts):
  assert studies.counts({'finished': finished, 'diverged': diverged}) is counts
  assert studies.counts({'finished': finished}) is (finished == '1')


def test_grid_is_the_cross_product_in_flag_order():
  points = studies.grid([('schedule', ['constant', 'sgdr']),
                         ('warmup_epochs', [0.0, 1.0])])
  assert [studies.label(p) for p in points] == [
      'schedule=constant, warmup_epochs=0', 'schedule=constant, warmup_epochs=1',
      'schedule=sgdr, warmup_epochs=0', 'schedule=sgdr, warmup_epochs=1']


def test_every_member_is_validated_before_anything_runs(tmp_path):
  points = studies.grid([('warmup_epochs', [1.0, 50.0])])
  with pytest.raises(errors.ConfigError, match='config.warmup_epochs=50.0'):
    studies.members(small_config('x'), points, 2, tmp_path)


def stacked_config(idx_dir, **fields):
  return small_config(idx_dir, **{'num_epochs': 2, 'log_every_steps': 4,
                                  **fields})


def assert_follows_single_run(member, single, loss_atol=1e-7, rate_rtol=1e-6):
  """A stacked member's records equal its single run's to float rounding:
  the same steps and rates, every step's loss and every epoch's train and
  test loss within 1e-5 (relative; `loss_atol` absolute, for losses near
  0). Losses, not accuracies: on the generated data accuracy reaches 100%
  within an epoch, where equal accuracies would say nothing; the loss
  moves at every step (checked, so the comparison cannot be vacuous)."""
  got, want = run_logs.read_steps(member.workdir), run_logs.read_steps(single)
  np.testing.assert_array_equal(got['step'], want['step'])
  np.testing.assert_allclose(got['learning_rate'], want['learning_rate'],
                             rtol=rate_rtol, atol=1e-9)
  assert len(np.unique(want['loss'])) > len(want['loss']) // 2 > 0
  np.testing.assert_allclose(got['loss'], want['loss'], rtol=1e-5,
                             atol=loss_atol)
  got_epochs = run_logs.read_epochs(member.workdir)
  want_epochs = run_logs.read_epochs(single)
  for field in ('train_loss', 'test_loss'):
    np.testing.assert_allclose(got_epochs[field], want_epochs[field],
                               rtol=1e-5, atol=max(loss_atol, 1e-7))


def test_stacked_members_follow_their_single_runs(idx_dir, tmp_path):
  """vmap over members = each member's own run, to float rounding, with
  another schedule, peak and momentum per member (measured: losses agree
  to 1e-6 relative)."""
  points = [{'schedule': 'constant', 'momentum': 0.8, 'learning_rate': 0.05},
            {'schedule': 'wsd', 'momentum': 0.9, 'learning_rate': 0.1}]
  group = studies.members(stacked_config(idx_dir, decay_epochs=1.0,
                                         warmup_epochs=0.5), points, 1,
                          tmp_path / 'study')
  studies.train_stacked(group)
  for member in group:
    single = tmp_path / 'single' / member.name
    train.train_and_evaluate(member.config, str(single))
    assert_follows_single_run(member, single)


def test_a_stacked_nesterov_member_follows_its_single_run(idx_dir, tmp_path):
  points = studies.grid([('nesterov', [True])])
  group = studies.members(stacked_config(idx_dir, num_epochs=1), points, 1,
                          tmp_path / 'study')
  studies.train_stacked(group)
  single = tmp_path / 'single'
  train.train_and_evaluate(group[0].config, str(single))
  assert_follows_single_run(group[0], single)


def test_an_interrupted_stacked_group_resumes_exactly(idx_dir, tmp_path,
                                                      monkeypatch):
  points = studies.grid([('schedule', ['constant', 'warmup_cosine'])])
  config = stacked_config(idx_dir, num_epochs=2)
  clean = studies.members(config, points, 1, tmp_path / 'clean')
  studies.train_stacked(clean)
  real_write = run_logs.MetricsWriter.write_epoch
  written = []

  def crash_after_epoch_1(self, summary):
    real_write(self, summary)
    written.append(summary['epoch'])
    if written.count(1) == len(points):  # every member wrote epoch 1
      raise SystemExit('simulated crash')

  monkeypatch.setattr(run_logs.MetricsWriter, 'write_epoch',
                      crash_after_epoch_1)
  resumed = studies.members(config, points, 1, tmp_path / 'resumed')
  with pytest.raises(SystemExit):
    studies.train_stacked(resumed)
  monkeypatch.undo()
  assert not all(studies.is_finished(m) for m in resumed)
  studies.train_stacked(resumed)
  for a, b in zip(clean, resumed):
    assert studies.is_finished(b)
    assert ((b.workdir / run_logs.STEP_LOG).read_text() ==
            (a.workdir / run_logs.STEP_LOG).read_text())


def test_auto_mode_is_sequential_on_cpu():
  assert jax.default_backend() == 'cpu'
  assert studies.choose_mode('auto') == 'sequential'
  assert studies.choose_mode('stacked') == 'stacked'


# --------------------------------------------------------------- hardening


@pytest.mark.parametrize('value', [
    'x/../../../../ESCAPED', '/etc/absolute', '..', '.hidden', 'a' * 500,
    'zürich-日本', 'a b\tc\nd'])
def test_member_folders_stay_inside_the_study(tmp_path, value):
  config = small_config('x')
  points = studies.grid([('data_dir', [value, 'plain'])])
  found = studies.members(config, points, 2, tmp_path / 'study')
  root = (tmp_path / 'study' / 'members').resolve()
  for member in found:
    assert member.workdir.parent.resolve() == root
    assert member.workdir.resolve().parent == root
    assert len(member.name) <= studies.MAX_NAME_CHARS + 11
    assert not member.name.startswith('.')
  assert len({m.name for m in found}) == len(found)


def test_values_that_print_alike_stay_apart():
  field, values = studies.parse_vary('learning_rate=0.05,0.05000001',
                                     small_config('x'))
  points = studies.grid([(field, values)])
  assert [studies.label(p) for p in points] == [
      'learning_rate=0.05', 'learning_rate=0.05000001']
  assert (studies.member_folder_name(points[0], 0) !=
          studies.member_folder_name(points[1], 0))
  with pytest.raises(errors.ConfigError, match='takes the value 0.05 twice'):
    studies.parse_vary('learning_rate=0.05,0.050', small_config('x'))


def test_a_huge_grid_is_refused_before_it_is_built():
  varied = [('learning_rate', list(range(1000))),
            ('momentum', list(range(1000)))]
  assert studies.grid_size(varied, 5) == 5_000_000
  with pytest.raises(errors.ConfigError, match='5,000,000 members'):
    studies.check_grid_size(studies.grid_size(varied, 5), allow_large=False)
  studies.check_grid_size(5_000_000, allow_large=True)


def no_nan_constants(text):
  def refuse(name):
    raise AssertionError(f'{name} is not JSON')
  return json.loads(text, parse_constant=refuse)


def test_diverged_members_count_nowhere_in_either_mode(idx_dir, tmp_path):
  """One rule: a diverged member is marked, never finished, in no mean;
  a point with none finished has n=0 and no verdict, in both modes."""
  config = stacked_config(idx_dir, num_epochs=1, warmup_epochs=0.0)
  points = studies.grid([('learning_rate', [0.05, 1e30])])
  seq = studies.members(config, points, 1, tmp_path / 'sequential')
  studies.train_members(seq, 'sequential', studies.load_data(seq))
  stacked = studies.members(config, points, 1, tmp_path / 'stacked')
  studies.train_stacked(stacked)
  for found in (seq, stacked):
    assert all(studies.is_finished(m) for m in found)  # none retrained
    rows = [studies.member_result(m, 0.9) for m in found]
    assert [(r['finished'], r['diverged']) for r in rows] == [(1, 0), (0, 1)]
    assert run_logs.read_diverged(found[1].workdir).startswith('Loss is ')
    steps = run_logs.read_steps(found[1].workdir)
    assert not np.isfinite(steps['loss'][-1])  # its rows end at the NaN
    assert np.all(np.isfinite(steps['loss'][:-1]))
    text = studies.write_report(found[0].workdir.parent.parent, found, {
        'vary': [('learning_rate', [0.05, 1e30])], 'seeds': 1,
        'baseline': {'learning_rate': 1e30}, 'target_accuracy': 0.9})
    summary = no_nan_constants(
        (found[0].workdir.parent.parent / 'study.json').read_text())
    bad = summary['points']['learning_rate=1e+30']
    assert bad['n'] == 0 and bad['mean'] is None and bad['diverged'] == 1
    assert (bad['members'], bad['trained']) == (1, 0)
    # Trained against diverged: counted (1 of 1 against 0 of 1), no mean.
    versus = summary['points']['learning_rate=0.05']['vs_baseline']
    assert (versus['trained'], versus['baseline_trained'], versus['n']) == (
        1, 0, 1)
    assert versus['verdict'] == 'no detectable difference'
    assert 'nan' not in text
    assert '| 0 / 1 (1 diverged) | none trained |' in text
    assert '1 of 1 seeds trained against 0 of 1 (exact McNemar test' in text


def test_a_finished_member_without_its_epochs_is_not_dropped(idx_dir,
                                                             tmp_path):
  config = stacked_config(idx_dir, num_epochs=1)
  found = studies.members(config, studies.grid([]), 2, tmp_path)
  studies.train_members(found, 'sequential', studies.load_data(found))
  (found[1].workdir / run_logs.EPOCH_LOG).unlink()
  todo = [m for m in found if not studies.is_finished(m)]
  assert todo == [found[1]]
  studies.train_members(todo, 'sequential', studies.load_data(found))
  with pytest.raises(errors.WorkdirError,
                     match=r"1 member\(s\) trained to the end but their "
                     'epochs.csv lacks the last epoch'):
    studies.check_all_done(found)


@pytest.mark.parametrize('content,message', [
    ('epoch,step\nx,y\n', 'lacks learning_rate_first'),
    ('', 'lacks epoch'),
])
def test_damaged_member_records_are_one_line(idx_dir, tmp_path, content,
                                             message):
  found = studies.members(stacked_config(idx_dir), studies.grid([]), 1,
                          tmp_path)
  found[0].workdir.mkdir(parents=True)
  (found[0].workdir / run_logs.EPOCH_LOG).write_text(content)
  with pytest.raises(errors.WorkdirError, match=message):
    studies.is_finished(found[0])
  (found[0].workdir / run_logs.CONFIG_JSON).write_text('{not json')
  with pytest.raises(errors.WorkdirError, match='config.json is damaged'):
    studies.is_finished(found[0])


def test_members_of_other_data_are_never_pooled(idx_dir, tmp_path):
  from conftest import write_idx_dataset  # pylint: disable=g-import-not-at-top
  config = stacked_config(idx_dir, num_epochs=1)
  found = studies.members(config, studies.grid([]), 1, tmp_path / 's')
  studies.train_members(found, 'sequential', studies.load_data(found))
  studies.check_same_data(found[0], input_pipeline.load_idx_dir(idx_dir))
  other = tmp_path / 'other'  # the same files' folder, after an edit
  write_idx_dataset(other, seed=3)
  with pytest.raises(errors.ResumeError, match='trained on other data'):
    studies.check_same_data(found[0], input_pipeline.load_idx_dir(other))
  rows = [{'member': 'a', 'seed': 0, 'finished': 1, 'schedule': 'sgdr',
           'final_test_accuracy': 0.9, 'data_fingerprint': 'aaa'},
          {'member': 'b', 'seed': 1, 'finished': 1, 'schedule': 'sgdr',
           'final_test_accuracy': 0.9, 'data_fingerprint': 'bbb'}]
  with pytest.raises(errors.DataError, match='trained on different data'):
    studies.summarize(rows, [{'schedule': 'sgdr'}], {'schedule': 'sgdr'}, 2)


def test_a_study_resumed_in_another_mode_names_the_mode(idx_dir, tmp_path,
                                                        monkeypatch):
  config = stacked_config(idx_dir, num_epochs=2)
  found = studies.members(config, studies.grid([]), 2, tmp_path)
  crash_after_first_epoch(monkeypatch)
  with pytest.raises(SystemExit):
    studies.train_stacked(found)
  monkeypatch.undo()
  with pytest.raises(errors.ResumeError,
                     match=r'was started in --mode=stacked .* resume the '
                     r'study with --mode=stacked'):
    studies.train_members(found, 'sequential', studies.load_data(found))


def crash_after_first_epoch(monkeypatch):
  real_save = checkpoints.CheckpointStore.save

  def save_then_crash(self, state, *args):
    real_save(self, state, *args)
    raise SystemExit('simulated crash')
  monkeypatch.setattr(checkpoints.CheckpointStore, 'save', save_then_crash)


def test_a_stacked_group_holds_every_members_lock(idx_dir, tmp_path):
  found = studies.members(stacked_config(idx_dir), studies.grid([]), 2,
                          tmp_path)
  with workdir_lib.locked(found[1].workdir):
    with pytest.raises(errors.WorkdirError, match='is in use by another run'):
      studies.train_stacked(found)
  assert not (found[0].workdir / run_logs.STEP_LOG).exists()


def test_a_stacked_group_saves_on_a_signal_and_resumes_exactly(
    idx_dir, tmp_path, monkeypatch):
  config = stacked_config(idx_dir, num_epochs=2, log_every_steps=1)
  points = studies.grid([('learning_rate', [0.05, 0.1])])
  clean = studies.members(config, points, 1, tmp_path / 'clean')
  studies.train_stacked(clean)
  real_record = bookkeeping.record_steps

  def signal_at_step_5(book, epoch, first_step, metrics):
    real_record(book, epoch, first_step, metrics)
    if first_step == 5 and book.workdir == stopped[1].workdir:
      os.kill(os.getpid(), signal.SIGTERM)

  monkeypatch.setattr(bookkeeping, 'record_steps', signal_at_step_5)
  stopped = studies.members(config, points, 1, tmp_path / 'stopped')
  with pytest.raises(errors.Interrupted,
                     match=r'SIGTERM at step 7 \(epoch 1\); saved 2 '
                     'checkpoints'):
    studies.train_stacked(stopped)
  monkeypatch.undo()
  for member in stopped:
    assert (member.workdir / 'checkpoints' / '7').is_dir()
  studies.train_stacked(stopped)
  for a, b in zip(clean, stopped):
    assert ((b.workdir / run_logs.STEP_LOG).read_text() ==
            (a.workdir / run_logs.STEP_LOG).read_text())


def test_a_refused_stacked_group_closes_every_store_and_lock(idx_dir,
                                                             tmp_path,
                                                             monkeypatch):
  found = studies.members(stacked_config(idx_dir, num_epochs=1),
                          studies.grid([]), 2, tmp_path)
  other = found[1].config.copy_and_resolve_references()
  with other.unlocked():
    other.learning_rate = 0.3
  train.train_and_evaluate(other, str(found[1].workdir))  # another config
  (found[1].workdir / run_logs.CONFIG_JSON).unlink()  # only the checkpoint
  opened, closed = [], []
  real_init = checkpoints.CheckpointStore.__init__
  real_close = checkpoints.CheckpointStore.close
  monkeypatch.setattr(checkpoints.CheckpointStore, '__init__',
                      lambda self, *a, **k: opened.append(self) or
                      real_init(self, *a, **k))
  monkeypatch.setattr(checkpoints.CheckpointStore, 'close',
                      lambda self: closed.append(self) or real_close(self))
  with pytest.raises(errors.ResumeError, match='learning_rate=0.3 there'):
    studies.train_stacked(found)
  assert len(opened) == 2 and set(map(id, closed)) == set(map(id, opened))
  for member in found:
    with workdir_lib.locked(member.workdir):  # released
      pass


# ------------------------------------------------------ methods as an axis

CONFIGS = pathlib.Path(__file__).resolve().parent.parent / 'configs'


def test_a_config_file_is_the_fields_it_sets_apart_from_the_defaults():
  assert studies.method_fields(CONFIGS / 'default.py') == {}
  assert studies.method_fields(CONFIGS / 'wsd.py') == {
      'schedule': 'wsd', 'decay_shape': '1-sqrt'}  # decay_epochs is default's
  assert studies.method_fields(CONFIGS / 'schedule_free.py') == {
      'optimizer': 'schedule_free_sgd', 'schedule': 'constant',
      'learning_rate': 3.0}


def test_methods_cross_with_fields_and_seeds(tmp_path):
  base = small_config('x', num_epochs=10)
  files = [str(CONFIGS / 'default.py'), str(CONFIGS / 'schedule_free.py')]
  varied = [studies.parse_vary('config=' + ','.join(files), base),
            studies.parse_vary('warmup_epochs=0,2', base)]
  found = studies.members(base, studies.grid(varied), 2, tmp_path)
  assert len(found) == 8
  by_point = {(m.point['config'], m.point['warmup_epochs'], m.seed): m.config
              for m in found}
  plain = by_point[(files[0], 0.0, 1)]
  assert plain.optimizer == 'sgd' and plain.learning_rate == 0.1
  assert plain.seed == 1 and plain.data_source == 'idx'  # the base's own
  free = by_point[(files[1], 2.0, 0)]
  assert (free.optimizer, free.schedule, free.learning_rate) == (
      'schedule_free_sgd', 'constant', 3.0)
  assert free.warmup_epochs == 2.0  # the varied field is the most specific
  assert studies.parse_baseline(f'config={files[1]}', varied, base) == {
      'config': files[1]}


@pytest.mark.parametrize('content,message', [
    (None, 'no such file'),
    ('def get_config(:\n', 'has a syntax error at line 1'),
    ('x = 1\n', 'defines no get_config() function'),
    ('from configs import default\ndef get_config():\n  c = '
     'default.get_config()\n  c.unknown = 1\n  return c\n',
     "sets 'unknown', which configs/default.py has no field for"),
])
def test_bad_config_axis_values_are_one_line(tmp_path, content, message):
  path = tmp_path / 'method.py'
  if content is not None:
    path.write_text(content)
  with pytest.raises(errors.ConfigError, match=re.escape(message)) as error:
    studies.parse_vary(f'config={CONFIGS / "default.py"},{path}',
                       small_config('x'))
  assert '\n' not in str(error.value)
  with pytest.raises(errors.ConfigError, match='takes the value'):
    studies.parse_vary(f'config={CONFIGS / "wsd.py"},{CONFIGS / "wsd.py"}',
                       small_config('x'))


def test_two_points_that_are_the_same_run_are_refused(tmp_path):
  """Two method files that resolve to the same config (here configs/
  default.py and a copy of it under another name) would compare a run with
  itself: one line naming both, before anything trains."""
  copy = tmp_path / 'also_default.py'
  copy.write_text((CONFIGS / 'default.py').read_text())
  base = small_config('x')
  varied = [studies.parse_vary(f'config={CONFIGS / "default.py"},{copy}',
                               base)]
  with pytest.raises(errors.ConfigError,
                     match='are the same run, field for field') as error:
    studies.members(base, studies.grid(varied), 2, tmp_path)
  assert 'also_default.py' in str(error.value)
  assert '\n' not in str(error.value)


@pytest.mark.parametrize('name', ['step', 'linear', 'onecycle', 'constant',
                                  'sgdr', 'wsd', 'schedule_free', 'default'])
def test_every_method_config_is_valid_and_says_why(name):
  config = cli.load_config_file(CONFIGS / f'{name}.py')
  validation.validate_config(config)
  doc = (CONFIGS / f'{name}.py').read_text().split('"""')[1]
  assert len(doc.split()) >= 10  # a docstring that explains its fields


def test_machine_names_the_code_commit_it_ran():
  """A member's last digits depend on the code: the study's machine record
  names the project's commit, as git itself reports it."""
  head = subprocess.run(['git', '-C', str(PROJECT_DIR), 'rev-parse', 'HEAD'],
                        capture_output=True, text=True, check=False)
  if head.returncode != 0:
    pytest.skip('not a git checkout')
  version = studies.machine()['code_version']
  assert version.split('+')[0] == head.stdout.strip()
  assert version in (head.stdout.strip(), head.stdout.strip() + '+changes')


def test_code_version_is_none_without_git(monkeypatch):
  def no_git(*args, **kwargs):
    raise FileNotFoundError('git')
  monkeypatch.setattr(subprocess, 'run', no_git)
  assert studies.code_version() is None
