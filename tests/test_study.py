"""tools/study.py: a grid x seeds, its statistics and its reports."""

import csv
import gzip
import json
import pathlib
import shutil
import subprocess
import sys

import jax
import pytest

from conftest import PROJECT_DIR
from configs import default
from machinery import errors
from machinery import plots
from machinery import run_logs
from runs import png_size
from runs import rerun_recorded
from runs import run_tool
import studies

# One worker runs this module, so that a trained small study (its module
# fixture) is built once, not once per worker (pytest.ini: loadgroup).
pytestmark = pytest.mark.xdist_group('test_study')

DATA = ('--config.data_source=idx', '--config.allow_download=false',
        '--config.num_epochs=2', '--config.batch_size=32',
        '--config.eval_batch_size=100', '--config.cpu_devices=1',
        '--config.tensorboard=false')


def small_study_args(workdir, idx_dir, *extra):
  return (f'--workdir={workdir}', '--seeds=2',
          '--vary=schedule=constant,warmup_cosine', '--vary=warmup_epochs=0,1',
          '--baseline=schedule=constant', '--target_accuracy=0.9',
          f'--config.idx_dir={idx_dir}', *DATA, *extra)


@pytest.fixture(scope='module')
def small_study(idx_dir, tmp_path_factory):
  workdir = tmp_path_factory.mktemp('study')
  args = small_study_args(workdir, idx_dir)
  first = run_tool('tools/study.py', *args)
  assert first.returncode == 0, first.stderr[-3000:]
  again = run_tool('tools/study.py', *args)
  return workdir, first, again


def test_study_writes_every_file(small_study):
  workdir, first, _ = small_study
  rows = list(csv.DictReader(open(workdir / 'study.csv')))
  assert len(rows) == 8  # 2 x 2 grid points x 2 seeds
  assert list(rows[0]) == [
      'member', 'seed', 'schedule', 'warmup_epochs', 'final_test_accuracy',
      'best_test_accuracy', 'best_epoch', 'epochs_to_target',
      'final_test_loss', 'wall_s', 'finished', 'diverged', 'data_fingerprint']
  assert len({r['data_fingerprint'] for r in rows}) == 1  # one dataset
  assert len(rows[0]['data_fingerprint']) == 16
  assert {r['seed'] for r in rows} == {'0', '1'}
  epochs = list(csv.DictReader(open(workdir / 'study_epochs.csv')))
  assert len(epochs) == 16 and list(epochs[0]) == [
      'member', 'epoch', 'test_accuracy', 'test_loss', 'train_loss']
  summary = json.loads((workdir / 'study.json').read_text())
  point = summary['points']['schedule=warmup_cosine, warmup_epochs=1']
  assert point['n'] == 2 and point['ci95_low'] <= point['mean']
  assert point['baseline'] == 'schedule=constant, warmup_epochs=1'
  assert set(point['vs_baseline']) >= {'mean', 'ci95_low', 'ci95_high',
                                       'p_value', 'p_holm', 'family_size',
                                       'detectable', 'verdict'}
  assert point['vs_baseline']['family_size'] == 2  # 2 points vs baselines
  text = (workdir / 'study.md').read_text()
  assert ('| rank | grid point | trained / n | final test acc. | 95% CI |'
          in text)
  assert ('- `schedule=warmup_cosine, warmup_epochs=1` vs `schedule=constant, '
          'warmup_epochs=1`: ') in text
  assert png_size(workdir / 'study.png') == (800, 500)  # one text field
  assert text in first.stdout


def test_a_study_run_again_trains_nothing(small_study):
  _, _, again = small_study
  assert again.returncode == 0, again.stderr[-2000:]
  assert '8 members, 0 to train (sequential)' in again.stderr


def test_a_study_run_again_with_another_config_is_refused(small_study,
                                                          idx_dir):
  """Finished members of another config are never counted as this one's."""
  workdir, _, _ = small_study
  before = (workdir / 'study.csv').read_text()
  result = run_tool('tools/study.py', f'--workdir={workdir}', '--seeds=2',
                    '--vary=schedule=constant,warmup_cosine',
                    '--vary=warmup_epochs=0,1', f'--config.idx_dir={idx_dir}',
                    *DATA, '--config.learning_rate=0.2')
  assert result.returncode == 1
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith(f'Error: The study member in {workdir}/members/')
  assert 'learning_rate=0.1 there, 0.2 now' in last
  assert (workdir / 'study.csv').read_text() == before


def test_a_member_is_exactly_the_single_run_of_its_seed(small_study, idx_dir,
                                                         tmp_path):
  workdir, _, _ = small_study
  single = tmp_path / 'single'
  result = subprocess.run(
      [sys.executable, str(PROJECT_DIR / 'main.py'),
       f'--config={PROJECT_DIR / "configs" / "default.py"}',
       f'--workdir={single}', f'--config.idx_dir={idx_dir}', *DATA,
       '--config.schedule=warmup_cosine', '--config.warmup_epochs=1',
       '--config.seed=1'], capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  [member] = (workdir / 'members').glob(
      'schedule-warmup_cosine_warmup_epochs-1_seed1-*')
  assert ((member / 'train_steps.csv').read_text() ==
          (single / 'train_steps.csv').read_text())


def rows_for(accuracies):
  return [{'member': f'{p}{s}', 'seed': s, 'schedule': p, 'finished': 1,
           'final_test_accuracy': a, 'epochs_to_target': ''}
          for p, values in accuracies.items() for s, a in enumerate(values)]


def test_one_seed_gives_no_interval_and_no_verdict():
  points = [{'schedule': 'constant'}, {'schedule': 'sgdr'}]
  rows = rows_for({'constant': [0.990], 'sgdr': [0.995]})
  summary = studies.summarize(rows, points, {'schedule': 'constant'}, 1)
  text = studies.markdown(summary, rows, 0.99)
  assert 'nan' not in text
  assert '| 1 | `schedule=sgdr` | 1 / 1 | 99.50% | n/a |' in text
  assert ('- `schedule=sgdr` vs `schedule=constant`: +0.50 pp on 1 seed: no '
          'interval, no verdict') in text


def test_verdicts_follow_the_holm_adjusted_paired_test():
  points = [{'schedule': 'constant'}, {'schedule': 'sgdr'},
            {'schedule': 'step'}]
  rows = rows_for({'constant': [0.990, 0.993, 0.989, 0.992, 0.991],
                   'sgdr': [0.9921, 0.9949, 0.9911, 0.9942, 0.9928],  # ~+0.2
                   'step': [0.991, 0.992, 0.990, 0.991, 0.992]})  # noise
  summary = studies.summarize(rows, points, {'schedule': 'constant'}, 5)
  sgdr = summary['points']['schedule=sgdr']['vs_baseline']
  assert sgdr['verdict'] == 'better'
  assert sgdr['p_holm'] == pytest.approx(min(1.0, 2 * sgdr['p_value']))
  assert summary['points']['schedule=step']['vs_baseline']['verdict'] == (
      'no detectable difference')
  text = studies.markdown(summary, rows, 0.99)
  assert ('- `schedule=sgdr` vs `schedule=constant`: better (+0.20 pp '
          '[+0.18, +0.22] over 5 paired seeds, Holm-adjusted p<0.001).') in text
  assert ('- `schedule=step` vs `schedule=constant`: no detectable difference '
          '(+0.02 pp [-0.12, +0.16] over 5 paired seeds, Holm-adjusted '
          'p=0.704; with 5 seeds it could detect ±0.22 pp at 80% power).'
          ) in text
  assert 'with 5 seeds it could detect ±' in text
  assert 'The 2 comparison(s) with the baseline are one family' in text
  ranks = [line.split('|')[2].strip() for line in text.splitlines()
           if line.startswith('| 1 ') or line.startswith('| 2 ')]
  assert ranks == ['`schedule=sgdr`', '`schedule=step`']


@pytest.mark.parametrize('args,message', [
    (['--vary=schedule=constant', '--vary=schedule=sgdr'], 'names a field '
     'twice'),
    (['--vary=schedule=constant,sgdr', '--baseline=schedule=step'],
     "'step' is not among the values of schedule"),
    (['--vary=num_epochs=0,1'], 'config.num_epochs=0 is invalid'),
    (['--vary=batch_size=32,4096'], 'config.batch_size=4096 is invalid: '
     'must lie in [1, 512] (the size of the training split)'),
    (['--vary=learning_rate=' + ','.join(f'{(i + 1) / 1000}'
                                         for i in range(100)),
      '--vary=momentum=' + ','.join(f'{(i + 1) / 100}' for i in range(30))],
     'The study has 15,000 members (grid points x seeds), more than 10,000'),
    (['--vary=learning_rate=0.05,0.05000'], 'takes the value 0.05 twice'),
])
def test_bad_studies_stop_in_one_line_before_training(tmp_path, args,
                                                       message, idx_dir):
  result = run_tool('tools/study.py', f'--workdir={tmp_path}', *args,
                    f'--config.idx_dir={idx_dir}', *DATA)
  assert result.returncode == 1
  assert 'Traceback' not in result.stderr
  assert message in result.stderr.strip().splitlines()[-1]
  assert not (tmp_path / 'members').exists()


def test_two_numeric_fields_get_a_heatmap(tmp_path):
  varied = [('warmup_epochs', [0.0, 1.0]), ('learning_rate', [0.05, 0.1])]
  summary = {'points': {
      f'warmup_epochs={w:g}, learning_rate={lr:g}': {
          'mean': 0.99 + w / 1000, 'ci95_low': 0.98, 'ci95_high': 0.996,
          **({'vs_baseline': {'verdict': 'better' if lr == 0.1 else
                              'no detectable difference'}} if w else {})}
      for w in (0.0, 1.0) for lr in (0.05, 0.1)}}
  x, xs, y, ys, cells = studies.heatmap(varied, summary)
  assert (x, xs, y, ys) == ('learning_rate', [0.05, 0.1], 'warmup_epochs',
                            [0.0, 1.0])
  assert [[c[0] for c in row] for row in cells] == [[0.99, 0.99],
                                                    [0.991, 0.991]]
  assert cells[0][0][1] == pytest.approx(0.008)   # half the interval
  assert [[c[2] for c in row] for row in cells] == [[False, False],
                                                    [False, True]]
  output = tmp_path / 'heatmap.png'
  plots.plot_study({}, 0.99, output, (x, xs, y, ys, cells))
  assert png_size(output)[0] > 0
  assert studies.heatmap([('schedule', ['a', 'b']), ('seed', [1])], {}) is None


def test_a_study_workdir_that_is_a_file_is_one_line(tmp_path):
  afile = tmp_path / 'afile'
  afile.write_text('x')
  result = run_tool('tools/study.py', f'--workdir={afile}',
                    '--vary=schedule=constant,sgdr')
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1] == (
      f'Error: --workdir={afile} is a file, not a folder.')


def test_vary_values_cannot_move_a_member_out_of_the_study(tmp_path, idx_dir):
  escape = tmp_path / 'study' / 'x' / '..' / '..' / 'ESCAPED'
  result = run_tool('tools/study.py', f'--workdir={tmp_path / "study"}',
                    '--seeds=1', f'--vary=idx_dir={idx_dir}/../{idx_dir.name}',
                    f'--vary=data_dir={escape}', *DATA,
                    '--config.num_epochs=1')
  assert result.returncode == 0, result.stderr[-2000:]
  assert not (tmp_path / 'ESCAPED').exists()
  [member] = (tmp_path / 'study' / 'members').iterdir()
  assert (member / 'epochs.csv').is_file()


def test_a_method_member_is_exactly_main_py_on_its_config_file(tmp_path,
                                                               idx_dir):
  """--vary=config=...: the wsd member is `main.py --config=configs/wsd.py`
  with the study's flags, byte for byte — on the CPU devices main.py picks
  by itself (the study used to start JAX before splitting the CPU, and
  trained every member on one device)."""
  wsd = PROJECT_DIR / 'configs' / 'wsd.py'
  default = PROJECT_DIR / 'configs' / 'default.py'
  automatic = [f for f in DATA if not f.startswith('--config.cpu_devices')]
  flags = (f'--config.idx_dir={idx_dir}', *automatic, '--config.num_epochs=2',
           '--config.decay_epochs=0.5')
  study = run_tool('tools/study.py', f'--workdir={tmp_path / "study"}',
                   '--seeds=1', f'--vary=config={default},{wsd}',
                   f'--baseline=config={default}', *flags)
  assert study.returncode == 0, study.stderr[-2000:]
  single = tmp_path / 'single'
  result = subprocess.run(
      [sys.executable, str(PROJECT_DIR / 'main.py'), f'--config={wsd}',
       f'--workdir={single}', *flags], capture_output=True, text=True,
      timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  [member] = (tmp_path / 'study' / 'members').glob('config-*wsd.py_seed0-*')
  placement = ('devices', 'micro_batches', 'steps_per_call')
  recorded = [json.loads((run / 'config.json').read_text())['run_environment']
              for run in (member, single)]
  assert [{k: r[k] for k in placement} for r in recorded] == [
      {k: recorded[1][k] for k in placement}] * 2
  assert ((member / 'train_steps.csv').read_text() ==
          (single / 'train_steps.csv').read_text())
  text = (tmp_path / 'study' / 'study.md').read_text()
  assert f'`config={wsd}` vs `config={default}`' in text


def test_a_method_is_what_its_file_sets_apart_from_the_studys_config(
    tmp_path, idx_dir):
  """A method file that sets a field back to configs/default.py's value
  (warmup_epochs 1.0) over a --config that does not (0.5) trains that
  value: it was silently dropped when a method was read against
  configs/default.py (warmup_lm_b2_0.95_4ep's 25% warmup trained 10%)."""
  header = 'from configs import default\n\ndef get_config():\n'
  base, back = tmp_path / 'half_warmup.py', tmp_path / 'default_warmup.py'
  base.write_text(header + '  c = default.get_config()\n'
                  '  c.warmup_epochs = 0.5\n  return c\n')
  back.write_text(header + '  return default.get_config()\n')
  result = run_tool('tools/study.py', f'--config={base}',
                    f'--workdir={tmp_path / "study"}', '--seeds=1',
                    f'--vary=config={base},{back}', f'--config.idx_dir={idx_dir}',
                    *DATA, config=None)
  assert result.returncode == 0, result.stderr[-2000:]
  members = tmp_path / 'study' / 'members'
  trained = {pathlib.Path(row['config']).name: json.loads(
      (members / row['member'] / 'config.json').read_text())['warmup_epochs']
             for row in csv.DictReader(open(tmp_path / 'study' / 'study.csv'))}
  assert trained == {'half_warmup.py': 0.5, 'default_warmup.py': 1.0}


def test_a_published_study_rebuilds_from_its_files_alone(small_study, idx_dir,
                                                         tmp_path):
  workdir, _, _ = small_study
  published = tmp_path / 'docs' / 'studies' / 'small'
  result = run_tool('tools/study.py', *small_study_args(
      workdir, idx_dir, f'--publish={published}'))
  assert result.returncode == 0, result.stderr[-2000:]
  assert '8 members, 0 to train' in result.stderr
  configs = sorted(published.glob('members/*/config.json'))
  assert len(configs) == 8 and not list(published.glob('members/*/check*'))
  spec = json.loads((published / 'study_spec.json').read_text())
  assert spec['seeds'] == 2 and spec['machine']['jax_version']
  assert len(spec['data_fingerprints']) == 1
  original = {name: (published / name).read_bytes()
              for name in ('study.json', 'study.md')}
  for name in ('study.json', 'study.md', 'study.png'):
    (published / name).unlink()
  rebuilt = run_tool('tools/study.py', '--rebuild', f'--workdir={published}',
                     config=None)
  assert rebuilt.returncode == 0, rebuilt.stderr[-2000:]
  for name, content in original.items():
    assert (published / name).read_bytes() == content, name
  assert png_size(published / 'study.png') == (800, 500)


@pytest.fixture(scope='module')
def carried(small_study, idx_dir, tmp_path_factory):
  """small_study's finished members, carried out to a folder by --carry."""
  workdir, _, _ = small_study
  carry = tmp_path_factory.mktemp('progress') / 'small'
  result = run_tool('tools/study.py',
                    *small_study_args(workdir, idx_dir, f'--carry={carry}'))
  assert result.returncode == 0, result.stderr[-2000:]
  return carry


def study_on_a_new_machine(tmp_path, idx_dir, carry, *extra):
  """small_study's command with --carry=`carry` in an empty workdir."""
  elsewhere = tmp_path / 'new_machine'
  return elsewhere, run_tool('tools/study.py', *small_study_args(
      elsewhere, idx_dir, f'--carry={carry}', *extra))


def test_carry_keeps_finished_members_records_not_their_checkpoints(
    carried, small_study):
  folders = sorted((carried / 'members').iterdir())
  assert len(folders) == 8
  for folder in folders:
    assert sorted(p.name for p in folder.iterdir()) == [
        'config.json', 'epochs.csv', 'machine.json', 'train_steps.csv.gz']
  machine = json.loads((folders[0] / 'machine.json').read_text())
  assert machine['jax_version'] and machine['processor'] is not None
  # The per-step records, compressed the same way every time (a law's fit
  # reads them: prediction.load_run).
  workdir, _, _ = small_study
  original = workdir / 'members' / folders[0].name / 'train_steps.csv'
  packed = (folders[0] / 'train_steps.csv.gz').read_bytes()
  assert gzip.decompress(packed) == original.read_bytes()
  assert packed == gzip.compress(original.read_bytes(), mtime=0)
  assert run_logs.read_steps(folders[0])['step'][-1] == run_logs.read_steps(
      original.parent)['step'][-1]


def test_a_study_carried_to_a_new_machine_trains_nothing_again(
    small_study, carried, idx_dir, tmp_path):
  """A new machine has no workdir: the committed --carry folder is the
  study's progress, and its members count exactly as they did."""
  workdir, _, _ = small_study
  elsewhere, result = study_on_a_new_machine(tmp_path, idx_dir, carried)
  assert result.returncode == 0, result.stderr[-2000:]
  assert '8 finished member(s) carried in' in result.stderr
  assert '8 members, 0 to train' in result.stderr
  assert ((elsewhere / 'study.csv').read_text() ==
          (workdir / 'study.csv').read_text())
  spec = json.loads((elsewhere / 'study_spec.json').read_text())
  assert len(spec['machines_of_carried_members']) == 1
  assert json.loads((elsewhere / 'study.json').read_text())[
      'members_carried_in'] == 8


def test_a_half_trained_carried_member_is_trained_again(carried, idx_dir,
                                                        tmp_path):
  carry = tmp_path / 'carry'
  shutil.copytree(carried, carry)
  [cut] = (carry / 'members').glob(
      'schedule-constant_warmup_epochs-0_seed0-*')
  lines = (cut / 'epochs.csv').read_text().splitlines(keepends=True)
  (cut / 'epochs.csv').write_text(''.join(lines[:2]))  # epoch 1 of 2
  _, result = study_on_a_new_machine(tmp_path, idx_dir, carry)
  assert result.returncode == 0, result.stderr[-2000:]
  assert '7 finished member(s) carried in' in result.stderr
  assert '8 members, 1 to train' in result.stderr

  def results(text):  # each epoch's numbers, not its timings
    return [row.split(',')[:8] for row in text]
  assert results((cut / 'epochs.csv').read_text().splitlines()) == results(
      line.rstrip() for line in lines)  # carried out again once trained here


def test_a_carried_member_of_another_config_is_refused(carried, idx_dir,
                                                       tmp_path):
  elsewhere, result = study_on_a_new_machine(
      tmp_path, idx_dir, carried, '--config.learning_rate=0.2')
  assert result.returncode == 1
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith(f'Error: The carried study member in {carried}/')
  assert 'learning_rate=0.1 there, 0.2 now' in last
  assert not (elsewhere / 'study.csv').exists()


def test_a_run_another_study_finished_is_taken_not_trained(
    small_study, carried, idx_dir, tmp_path):
  """--reuse: warmup + cosine at warmup 0 and 1 is a sub-grid of
  small_study; its members are those runs, so nothing trains and the
  numbers are theirs."""
  workdir, _, _ = small_study
  elsewhere = tmp_path / 'warmup_only'
  result = run_tool('tools/study.py', f'--workdir={elsewhere}', '--seeds=2',
                    '--config.schedule=warmup_cosine',
                    '--vary=warmup_epochs=0,1', '--target_accuracy=0.9',
                    f'--config.idx_dir={idx_dir}', *DATA, f'--reuse={carried}')
  assert result.returncode == 0, result.stderr[-2000:]
  assert f'4 member(s) taken from {carried}' in result.stderr
  assert '4 members, 0 to train' in result.stderr

  def final(folder, schedule=None):
    return {(r['warmup_epochs'], r['seed']): r['final_test_loss']
            for r in csv.DictReader(open(folder / 'study.csv'))
            if schedule in (None, r.get('schedule'))}
  assert final(elsewhere) == final(workdir, 'warmup_cosine')
  assert json.loads((elsewhere / 'study.json').read_text())[
      'members_reused'] == 4
  for member in (elsewhere / 'members').iterdir():
    assert (member / 'machine.json').is_file()
    assert not (member / 'checkpoints').exists()


def _member_like(folder, workdir, **changes):
  """A study member whose config is the run in `folder`'s, changed."""
  recorded = json.loads((folder / 'config.json').read_text())
  recorded.pop('run_environment')
  config = default.get_config()
  for key, value in {**recorded, **changes}.items():
    config[key] = tuple(value) if isinstance(value, list) else value
  return studies.Member({}, config.seed, config, workdir / 'members' / 'm')


@pytest.mark.parametrize('changes,fingerprint_same,taken', [
    ({}, True, True),
    ({'log_every_steps': 7, 'idx_dir': '/elsewhere'}, True, True),
    ({}, False, False),                      # other data
    ({'eval_batch_size': 50}, True, False),  # other last digits
    ({'cpu_devices': 2}, True, False),       # another CPU split
    ({'seed': 5}, True, False),              # no such run there
])
def test_only_the_same_run_on_the_same_data_is_taken(
    carried, tmp_path, changes, fingerprint_same, taken):
  [source] = (carried / 'members').glob('schedule-constant_warmup_epochs-0_'
                                        'seed0-*')
  fingerprint = json.loads((source / 'config.json').read_text())[
      'run_environment']['data_fingerprint']
  member = _member_like(source, tmp_path, **changes)
  data = {studies.data_key(member.config): type('Data', (), {
      'fingerprint': fingerprint if fingerprint_same else 'other'})}
  assert studies.reuse_in([carried], [member], data) == (
      {str(carried): 1} if taken else {})
  assert member.workdir.exists() == taken
  if taken:
    assert ((member.workdir / 'epochs.csv').read_bytes() ==
            (source / 'epochs.csv').read_bytes())


@pytest.mark.parametrize('where,message', [
    ('nowhere', "has no members/ folder"), ('study', "this study's own")])
def test_a_bad_reuse_folder_is_one_line(tmp_path, idx_dir, where, message):
  (tmp_path / 'study' / 'members').mkdir(parents=True)
  result = run_tool('tools/study.py', f'--workdir={tmp_path / "study"}',
                    '--seeds=1', f'--reuse={tmp_path / where}',
                    f'--config.idx_dir={idx_dir}', *DATA)
  assert result.returncode == 1
  last = result.stderr.strip().splitlines()[-1]
  assert message in last and last.startswith('Error: --reuse=')
  assert 'Traceback' not in result.stderr


COMMITTED_STUDIES = sorted(
    path.parent.name
    for path in (PROJECT_DIR / 'docs' / 'studies').glob('*/study_spec.json'))


@pytest.mark.parametrize('name', COMMITTED_STUDIES)
def test_every_committed_study_is_what_its_files_rebuild(name, tmp_path):
  """docs/studies/NAME's tables are its CSVs' tables: a rebuild (what
  `tools/study.py --rebuild` runs; the tool itself is tested above) on a
  copy of the committed files writes the committed study.json and
  study.md."""
  copy = tmp_path / name
  shutil.copytree(PROJECT_DIR / 'docs' / 'studies' / name, copy)
  studies.rebuild(copy)
  for file in ('study.json', 'study.md'):
    assert (copy / file).read_bytes() == (
        PROJECT_DIR / 'docs' / 'studies' / name / file).read_bytes(), file


def test_a_recorded_member_config_reruns_the_member(small_study, tmp_path):
  """configs/recorded.py:config.json is the member's config, field for field:
  main.py on it writes the member's train_steps.csv byte for byte."""
  workdir, _, _ = small_study
  member = sorted((workdir / 'members').iterdir())[3]
  rerun = tmp_path / 'rerun'
  rerun_recorded(member, rerun)
  assert ((rerun / 'train_steps.csv').read_text() ==
          (member / 'train_steps.csv').read_text())


@pytest.mark.parametrize('environment,want', [
    ({'backend': 'cpu', 'processes': 1, 'devices': 2, 'micro_batches': 4,
      'steps_per_call': 1}, (2, 32, 1)),
    ({'backend': 'cpu', 'processes': 1, 'devices': 1, 'micro_batches': 1,
      'steps_per_call': 4}, (1, 128, 4)),
    ({'backend': 'gpu', 'processes': 1, 'devices': 8, 'micro_batches': 1,
      'steps_per_call': 1}, (0, 0, 0)),   # a GPU run keeps 'automatic'
])
def test_a_recorded_config_keeps_its_runs_cpu_placement(tmp_path, environment,
                                                        want):
  """The same digits on a machine with another core count: the recorded
  device count, micro-batches and steps per call replace 'automatic'."""
  from configs import default  # pylint: disable=g-import-not-at-top
  from configs import recorded  # pylint: disable=g-import-not-at-top
  path = tmp_path / 'config.json'
  path.write_text(json.dumps({**default.get_config().to_dict(),
                              'run_environment': environment}))
  config = recorded.get_config(str(path))
  assert (config.cpu_devices, config.micro_batch_size,
          config.steps_per_call) == want


def test_each_member_gets_the_cpu_split_main_py_gives_it(idx_dir, tmp_path):
  """A member trains on the devices main.py would split the CPU into for
  its own config — not those of the study's base config — and is main.py's
  run of its recorded config byte for byte; a member whose batch only one
  device divides trains there instead of stopping the study."""
  from machinery import parallel  # pylint: disable=g-import-not-at-top
  from machinery import run_logs  # pylint: disable=g-import-not-at-top
  workdir = tmp_path / 'split'
  result = run_tool('tools/study.py', f'--workdir={workdir}', '--seeds=1',
                    '--vary=cpu_devices=1,2', f'--config.idx_dir={idx_dir}',
                    *DATA)
  assert result.returncode == 0, result.stderr[-2000:]
  steps = {}
  for member in sorted((workdir / 'members').iterdir()):
    recorded = run_logs.read_config(member)
    assert recorded['run_environment']['devices'] == recorded['cpu_devices']
    steps[recorded['cpu_devices']] = member
  # The member on 1 device of the study's 2 is main.py's 1-device run.
  rerun_recorded(steps[1], tmp_path / 'rerun')
  assert ((tmp_path / 'rerun' / 'train_steps.csv').read_bytes() ==
          (steps[1] / 'train_steps.csv').read_bytes())
  assert ((steps[1] / 'train_steps.csv').read_bytes() !=
          (steps[2] / 'train_steps.csv').read_bytes())  # other last digits
  batches = tmp_path / 'batches'
  result = run_tool('tools/study.py', f'--workdir={batches}', '--seeds=1',
                    '--vary=batch_size=32,25', f'--config.idx_dir={idx_dir}',
                    *DATA, '--config.cpu_devices=0')
  assert result.returncode == 0, result.stderr[-2000:]
  for member in (batches / 'members').iterdir():
    recorded = run_logs.read_config(member)
    config = default.get_config()
    config.batch_size = recorded['batch_size']
    config.eval_batch_size = recorded['eval_batch_size']
    assert recorded['run_environment']['devices'] == (
        parallel.auto_cpu_devices(config))


def _edit_recorded(folder, **environment):
  """Changes what the run in `folder` recorded: run_environment fields,
  and cpu_devices (config) when given as `cpu_devices`."""
  path = folder / 'config.json'
  recorded = json.loads(path.read_text())
  if 'cpu_devices' in environment:
    recorded['cpu_devices'] = environment.pop('cpu_devices')
  recorded['run_environment'].update(environment)
  path.write_text(json.dumps(recorded))


@pytest.mark.parametrize('devices,taken', [(1, True), (2, False)])
def test_a_run_trained_on_other_devices_is_not_reused(carried, tmp_path,
                                                      devices, taken):
  """Both sides automatic (cpu_devices=0): the config fields agree, and
  only the recorded placement tells a run on 2 devices from this member's
  run (JAX here has 1 device)."""
  [original] = (carried / 'members').glob(
      'schedule-constant_warmup_epochs-0_seed0-*')
  source = tmp_path / 'other' / 'members' / original.name
  shutil.copytree(original, source)
  _edit_recorded(source, cpu_devices=0, devices=devices)
  member = _member_like(source, tmp_path / 'here')
  fingerprint = json.loads((source / 'config.json').read_text())[
      'run_environment']['data_fingerprint']
  data = {studies.data_key(member.config): type(
      'Data', (), {'fingerprint': fingerprint})}
  assert bool(studies.reuse_in([tmp_path / 'other'], [member], data)) == taken


def test_a_run_reused_from_a_plain_workdir_carries_its_own_machine(
    carried, tmp_path):
  """No machine.json where it was trained: the reused member's machine is
  what the run recorded (its backend, JAX, devices), never this host."""
  [original] = (carried / 'members').glob(
      'schedule-constant_warmup_epochs-0_seed0-*')
  source = tmp_path / 'plain' / 'members' / original.name
  shutil.copytree(original, source)
  (source / 'machine.json').unlink()
  _edit_recorded(source, jax_version=jax.__version__)
  member = _member_like(source, tmp_path / 'here')
  fingerprint = json.loads((source / 'config.json').read_text())[
      'run_environment']['data_fingerprint']
  data = {studies.data_key(member.config): type(
      'Data', (), {'fingerprint': fingerprint})}
  assert studies.reuse_in([tmp_path / 'plain'], [member], data)
  machine = json.loads((member.workdir / 'machine.json').read_text())
  assert machine['host'] is None
  assert machine['recorded_by_the_run_in'] == str(source)
  assert machine['backend'] == 'cpu'


def test_a_member_folder_that_is_a_link_is_never_written_through(
    idx_dir, tmp_path):
  """members/<member> a link to a user's folder: one line, and nothing of
  a run (lock, checkpoints, records) lands in that folder."""
  users = tmp_path / 'users_folder'
  users.mkdir()
  (users / 'notes.txt').write_text('mine')
  workdir = tmp_path / 'study'
  (workdir / 'members').mkdir(parents=True)
  (workdir / 'members' / studies.member_folder_name({}, 0)).symlink_to(users)
  result = run_tool('tools/study.py', f'--workdir={workdir}', '--seeds=1',
                    f'--config.idx_dir={idx_dir}', *DATA)
  assert result.returncode == 1
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith('Error: ') and 'is a symbolic link' in last, last
  assert 'Traceback' not in result.stderr
  assert sorted(p.name for p in users.iterdir()) == ['notes.txt']


def test_records_are_never_read_through_a_link(carried, tmp_path):
  """copy_records_out and publish read a run's files; a link there (to a
  file anywhere) is refused in one line, not copied into the repository."""
  [original] = (carried / 'members').glob(
      'schedule-constant_warmup_epochs-0_seed0-*')
  run_dir = tmp_path / 'run'
  shutil.copytree(original, run_dir)
  secret = tmp_path / 'secret.txt'
  secret.write_text('not a record')
  (run_dir / 'epochs.csv').unlink()
  (run_dir / 'epochs.csv').symlink_to(secret)
  with pytest.raises(errors.WorkdirError, match='symbolic link'):
    studies.copy_records_out(run_dir, tmp_path / 'carry' / 'members' / 'm',
                             tmp_path / 'carry')
  assert not (tmp_path / 'carry' / 'members' / 'm' / 'epochs.csv').exists()
  link = tmp_path / 'carry2' / 'members' / 'm'
  link.parent.mkdir(parents=True)
  link.symlink_to(tmp_path / 'elsewhere')
  with pytest.raises(errors.WorkdirError, match='symbolic link'):
    studies.copy_records_out(original, link, tmp_path / 'carry2')
  assert not (tmp_path / 'elsewhere').exists()


def test_carrying_in_is_atomic_and_idempotent(carried, tmp_path):
  """Two processes carrying the same member in: the second finds the
  first's whole copy and keeps it (no FileExistsError)."""
  [original] = (carried / 'members').glob(
      'schedule-constant_warmup_epochs-0_seed0-*')
  destination = tmp_path / 'study' / 'members' / original.name
  assert studies.copy_records_in(original, destination, tmp_path / 'study')
  assert not studies.copy_records_in(original, destination,
                                     tmp_path / 'study')
  assert sorted(p.name for p in destination.iterdir()) == sorted(
      p.name for p in original.iterdir()
      if p.name in (*studies.CARRIED_FILES, studies.MACHINE_JSON))
  assert [p.name for p in destination.parent.iterdir()] == [original.name]


@pytest.mark.parametrize('name,cut,message', [
    ('study_spec.json', 300, 'study_spec.json is damaged'),
    ('study.csv', 2000, 'study.csv is damaged at line'),
    ('study_epochs.csv', 3000, 'study_epochs.csv is damaged at line'),
])
def test_a_damaged_published_study_is_one_line(tmp_path, name, cut, message):
  copy = tmp_path / 'methods_mnist'
  shutil.copytree(PROJECT_DIR / 'docs' / 'studies' / 'methods_mnist', copy)
  (copy / name).write_bytes((copy / name).read_bytes()[:cut])
  result = run_tool('tools/study.py', '--rebuild', f'--workdir={copy}',
                    config=None)
  assert result.returncode == 1
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith('Error: ') and message in last, last
  assert 'Traceback' not in result.stderr
