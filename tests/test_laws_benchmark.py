"""docs/laws/benchmark.json, issue 36's benchmark, frozen before any law is
fitted: its contents are pinned here, so that changing the held-out list
after seeing numbers takes a visible edit of this test."""

import hashlib
import json
import re
import subprocess

import pytest

from conftest import PROJECT_DIR
import schedules

BENCHMARK = PROJECT_DIR / 'docs' / 'laws' / 'benchmark.json'
FROZEN_SHA256 = (
    '2a7f9422c6b75506ea696ef638f246743ddb6d348f0eef07ffcac80ddeb6d8d2')


def test_the_benchmark_is_the_frozen_one():
  assert hashlib.sha256(BENCHMARK.read_bytes()).hexdigest() == FROZEN_SHA256


def test_the_benchmark_holds_what_the_issue_asks():
  benchmark = json.loads(BENCHMARK.read_text())
  held_out = benchmark['held_out']
  names = [entry['name'] for entry in benchmark['fit'] + held_out]
  assert len(held_out) >= 10 and len(set(names)) == len(names)
  kinds = {entry['schedule'] for entry in benchmark['fit'] + held_out}
  assert kinds <= set(schedules.SCHEDULES)
  shapes = {(e['decay_shape'], e['decay_fraction']) for e in held_out
            if e['schedule'] == 'wsd'}
  assert shapes == {(shape, fraction) for shape in ('linear', '1-sqrt',
                                                    'cosine')
                    for fraction in (0.1, 0.2)}
  lengths = {(e['schedule'], e['length']) for e in held_out}
  assert {('warmup_cosine', 2.0), ('warmup_cosine', 3.0), ('constant', 2.0),
          ('constant', 3.0), ('sgdr', 1.0), ('linear', 1.0), ('step', 1.0),
          ('onecycle', 1.0)} <= lengths
  assert all(task['seeds'] == [0, 1, 2, 3, 4]
             for task in benchmark['tasks'].values())


def test_every_benchmark_schedule_is_a_valid_config_of_its_length():
  from configs import laws_benchmark  # pylint: disable=g-import-not-at-top
  from machinery import validation  # pylint: disable=g-import-not-at-top
  for task, default_epochs in (('language_model', 4), ('fashion_mnist', 10)):
    for name, entry in laws_benchmark.entries().items():
      config = laws_benchmark.get_config(f'{task}:{name}')
      validation.validate_config(config)
      assert config.num_epochs == entry['length'] * default_epochs
      assert config.schedule == entry['schedule']
  wsd = laws_benchmark.get_config('fashion_mnist:wsd_cosine_10')
  assert (wsd.decay_fraction, wsd.decay_shape, wsd.dataset) == (
      0.1, 'cosine', 'fashion_mnist')
  drop = laws_benchmark.get_config('language_model:two_stage_drop')
  assert drop.step_epochs == (2.4,) and drop.step_decay == 0.1


@pytest.mark.parametrize('name,method', [
    ('cosine_to_zero', 'lm'), ('linear_to_zero', 'lm_linear'),
    ('cosine_to_10pct', 'lm_cosine_10'), ('step_two_drops', 'lm_step'),
    ('one_cycle', 'lm_onecycle'), ('sgdr', 'lm_sgdr'),
    ('wsd_1sqrt_20', 'lm_wsd')])
def test_the_lm_benchmark_reuses_the_methods_studys_runs(name, method):
  """Field for field methods_lm's recorded runs of that method (at the
  reference peak 2e-3, the default's then): --reuse takes them."""
  from configs import laws_benchmark  # pylint: disable=g-import-not-at-top
  import studies  # pylint: disable=g-import-not-at-top
  from studies import records  # pylint: disable=g-import-not-at-top
  mine = laws_benchmark.get_config(f'language_model:{name}')
  assert mine.learning_rate == 2e-3
  for seed in range(5):
    folder = studies.member_folder_name({'config': f'configs/{method}.py'},
                                        seed)
    recorded = json.loads((PROJECT_DIR / 'docs' / 'studies' / 'methods_lm' /
                           'members' / folder / 'config.json').read_text())
    mine.seed = seed
    assert records.is_same_run(recorded, mine), (name, seed)


def test_the_lm_benchmark_reuses_the_cosine_budget_studys_8_epoch_runs():
  """cosine_2x is cosine_budgets_lm's num_epochs=8 member field for field
  where that study trains at x1 the reference peak (docs/laws/
  run_benchmark.sh takes it with --reuse; run_lm.sh says when it does
  not)."""
  from configs import laws_benchmark  # pylint: disable=g-import-not-at-top
  from configs import lm_variant  # pylint: disable=g-import-not-at-top
  theirs = lm_variant.get_config('lm:peak=1')
  theirs.num_epochs = 8
  mine = laws_benchmark.get_config('language_model:cosine_2x')
  assert mine.to_dict() == theirs.to_dict()
  script = (PROJECT_DIR / 'docs' / 'laws' / 'run_benchmark.sh').read_text()
  assert ('$(reuse methods_lm cosine_budgets_lm)\nmeasure language_model'
          in script)
  assert 'study cosine_budgets_lm --vary=num_epochs=1,2,4,8' in (
      PROJECT_DIR / 'docs' / 'studies' / 'run_lm.sh').read_text()


def test_a_bad_benchmark_name_is_one_line():
  from machinery import cli  # pylint: disable=g-import-not-at-top
  from machinery import errors  # pylint: disable=g-import-not-at-top
  with pytest.raises(errors.ConfigError, match='name a task'):
    cli.load_config_file(str(PROJECT_DIR / 'configs' / 'laws_benchmark.py')
                         + ':language_model:nothing')


def test_the_benchmark_reads_runs_from_workdirs_and_carried_records(
    tmp_path):
  """On a new machine the workdirs of earlier ones are gone: runs_of names
  a study's workdir where it exists and its carried records where they
  do, so the benchmark finds the runs either way."""
  script = (PROJECT_DIR / 'docs' / 'laws' / 'run_benchmark.sh').read_text()
  [function] = re.findall(r'\nruns_of\(\) \{\n.*?\n\}\n', script, re.S)
  out = tmp_path / 'studies'
  (out / 'laws_lm').mkdir(parents=True)
  (tmp_path / 'docs' / 'studies' / 'progress' / 'laws_lm').mkdir(parents=True)
  (tmp_path / 'docs' / 'studies' / 'progress' / 'methods_lm').mkdir()
  written = subprocess.run(
      ['bash', '-c', f'set -euo pipefail\n{function}out={out}\n'
       'runs_of laws_lm budgets_wsd_cooldowns_lm methods_lm'],
      cwd=tmp_path, capture_output=True, text=True, check=True).stdout
  assert written.strip().split(',') == [
      f'{out}/laws_lm', 'docs/studies/progress/laws_lm',
      'docs/studies/progress/methods_lm']
  assert re.search(r'^measure language_model laws_lm budgets_wsd_cooldowns_lm '
                   'methods_lm ', script, re.M)
  assert '--runs="$task=$(runs_of "$@")"' in script


def test_the_lm_ground_truth_study_trains_the_benchmarks_configs():
  """docs/laws/run_benchmark.sh's laws_lm: each member, built on the
  study's --config as tools/study.py builds it, is its benchmark config at
  the reference peak 2e-3, whatever configs/lm.py's default peak."""
  from configs import laws_benchmark  # pylint: disable=g-import-not-at-top
  from machinery import cli  # pylint: disable=g-import-not-at-top
  import studies  # pylint: disable=g-import-not-at-top
  script = (PROJECT_DIR / 'docs' / 'laws' / 'run_benchmark.sh').read_text()
  [base] = re.findall(r'^study laws_lm (\S+) language_model', script, re.M)
  names = [n for n in laws_benchmark.entries() if not n.startswith('wsd_')]
  points = [{'config': f'configs/laws_benchmark.py:language_model:{n}'}
            for n in names]
  config = cli.load_config_file(str(PROJECT_DIR / base))
  members = studies.members(config, points, 1, '/nowhere', reference=config)
  for name, member in zip(names, members):
    mine = laws_benchmark.get_config(f'language_model:{name}')
    mine.seed, mine.progress_bar = 0, 'never'
    assert member.config.to_dict() == mine.to_dict(), name
    assert member.config.learning_rate == 2e-3


def test_the_ground_truth_studies_train_a_constant_rate_once_per_task(
    tmp_path):
  """run_benchmark.sh's two studies skip the constant rate at 1x and 2x
  (its run at 3x holds them: prediction_benchmark._prefix_run) and the
  LM's WSD runs (the cooldown study's branches); every other schedule is
  trained or taken from a study. A skip pattern is never matched against
  files (a file wsd_x lies where the script runs)."""
  from configs import laws_benchmark  # pylint: disable=g-import-not-at-top
  script = (PROJECT_DIR / 'docs' / 'laws' / 'run_benchmark.sh').read_text()
  [function] = re.findall(r'\nsettings\(\) \{.*?\n\}\n', script, re.S)
  skips = dict(re.findall(r"^study (laws_\w+) \S+ \w+ '([^']*)'", script,
                          re.M))
  assert skips == {'laws_lm': 'wsd_* constant constant_2x',
                   'laws_fashion': 'constant constant_2x'}
  (tmp_path / 'wsd_x').write_text('')
  names = ' '.join(laws_benchmark.entries())
  trained = {}
  for study, skip in skips.items():
    written = subprocess.run(
        ['bash', '-c', f'set -euo pipefail\n{function}names="{names}"\n'
         f'settings TASK "{skip}"'], cwd=tmp_path, capture_output=True,
        text=True, check=True).stdout.strip()
    assert written.startswith('config=')
    trained[study] = [point.rpartition(':')[2]
                      for point in written[len('config='):].split(',')]
  everything = list(laws_benchmark.entries())
  assert trained['laws_fashion'] == [
      n for n in everything if n not in ('constant', 'constant_2x')]
  assert trained['laws_lm'] == [
      n for n in everything
      if not n.startswith('wsd_') and n not in ('constant', 'constant_2x')]
  assert 'constant_3x' in trained['laws_lm']
