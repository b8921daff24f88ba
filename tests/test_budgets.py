"""tools/budgets.py: WSD cooldown branches of one trunk (budgets.py)."""

import json
import shutil

import numpy as np
import pytest

from conftest import PROJECT_DIR
from conftest import small_config
import budgets as budgets_lib
from machinery import errors
from machinery import plots
from machinery import run_logs
from runs import assert_same_params
from runs import final_params
from runs import run_tool
from runs import STEPS_PER_EPOCH
from runs import step_log
import train

# 16 steps per epoch; with 30% cooldowns budget 2 starts its cooldown at
# step 32 - round(9.6) = 22 and budget 3 at 48 - round(14.4) = 34: both in
# the middle of an epoch.
BUDGETS = (2, 3)
FRACTION = 0.3
STARTS = (22, 34)


def wsd_config(idx_dir, **overrides):
  fields = dict(schedule='wsd', decay_shape='1-sqrt', warmup_epochs=0.5,
                log_every_steps=5)
  return small_config(idx_dir, **{**fields, **overrides})


@pytest.fixture(scope='module')
def trained(idx_dir, tmp_path_factory):
  """One seed's trunk and branches, and the separate run of each budget."""
  config = wsd_config(idx_dir)
  workdir = tmp_path_factory.mktemp('budgets')
  budgets_lib.train_seed(config, BUDGETS, FRACTION, 0, workdir,
                         budgets_lib.Cost(workdir), STEPS_PER_EPOCH)
  separate = {}
  for budget in BUDGETS:
    folder = tmp_path_factory.mktemp(f'separate{budget}')
    train.train_and_evaluate(budgets_lib.budget_config(
        config, budget, FRACTION, 0), str(folder))
    separate[budget] = folder
  return config, workdir, separate


def test_cooldowns_start_inside_epochs(idx_dir):
  config = wsd_config(idx_dir)
  assert tuple(budgets_lib.cooldown_start(
      budgets_lib.budget_config(config, b, FRACTION, 0), STEPS_PER_EPOCH)
               for b in BUDGETS) == STARTS
  assert all(s % STEPS_PER_EPOCH for s in STARTS)


@pytest.mark.parametrize('budget', BUDGETS)
def test_every_branch_is_the_run_of_its_budget(trained, budget):
  """Byte for byte: the per-step log, the final parameters, and every
  epoch's numbers but its timings."""
  config, workdir, separate = trained
  branch = budgets_lib.branch_dir(workdir, 0, budget)
  assert step_log(branch) == step_log(separate[budget])
  budget_config = budgets_lib.budget_config(config, budget, FRACTION, 0)
  assert_same_params(final_params(branch, budget_config),
                     final_params(separate[budget], budget_config))
  mine = run_logs.read_epochs(branch)
  theirs = run_logs.read_epochs(separate[budget])
  for field in ('epoch', 'step', 'learning_rate_first', 'learning_rate_last',
                'train_loss', 'train_accuracy', 'test_loss', 'test_accuracy'):
    np.testing.assert_array_equal(mine[field], theirs[field])
  assert (run_logs.read_config(branch)['num_epochs'],
          run_logs.read_config(branch)['decay_fraction']) == (budget, FRACTION)


def test_the_trunk_stops_at_the_last_cooldown_start(trained):
  _, workdir, _ = trained
  trunk = budgets_lib.seed_dir(workdir, 0) / budgets_lib.TRUNK
  steps = run_logs.read_steps(trunk)['step']
  assert steps[-1] == STARTS[-1] - 1  # trained steps 0 .. S_max - 1 only
  rates = run_logs.read_steps(trunk)['learning_rate']
  assert rates[-1] == np.float32(0.1)  # still at the peak
  seconds = json.loads((workdir / budgets_lib.COST_JSON).read_text())
  assert set(seconds) == {'seed0/trunk', 'seed0/budget2', 'seed0/budget3'}


def test_a_second_call_trains_nothing(trained, monkeypatch):
  config, workdir, _ = trained

  def no_training(*args, **kwargs):
    raise AssertionError('trained again')
  monkeypatch.setattr(train, 'train_and_evaluate', no_training)
  budgets_lib.train_seed(config, BUDGETS, FRACTION, 0, workdir,
                         budgets_lib.Cost(workdir), STEPS_PER_EPOCH)


def test_a_finished_branch_of_another_config_is_refused(trained):
  config, workdir, _ = trained
  with pytest.raises(errors.ResumeError, match='different config'):
    budgets_lib.train_seed(config, BUDGETS, 0.25, 0, workdir,
                           budgets_lib.Cost(workdir), STEPS_PER_EPOCH)


def test_rows_and_cost(trained):
  config, workdir, separate = trained
  rows = budgets_lib.branch_rows(config, BUDGETS, FRACTION, 1, workdir,
                                 STEPS_PER_EPOCH)
  final = run_logs.read_epochs(separate[3])['test_accuracy'][-1]
  assert rows[1]['budget'] == 3 and rows[1]['final_test_accuracy'] == final
  assert [r['cooldown_epochs_trained'] for r in rows] == [
      round(2 - 22 / 16, 4), round(3 - 34 / 16, 4)]
  cost = budgets_lib.cost_summary(rows, BUDGETS, 1, {'a': 1.0})
  assert cost['trunk_epochs_per_seed'] == round(34 / 16, 4)
  assert cost['epochs_trained_per_seed'] == round(
      34 / 16 + (2 - 22 / 16) + (3 - 34 / 16), 4)
  assert cost['separate_runs_epochs_per_seed'] == 5


def test_a_finished_seed_is_carried_to_another_machine(trained, tmp_path,
                                                      monkeypatch):
  config, workdir, _ = trained
  carry, elsewhere = tmp_path / 'carry', tmp_path / 'elsewhere'
  plan = (config, BUDGETS, FRACTION, 0)
  assert budgets_lib.carry_out(carry, *plan, workdir,
                               budgets_lib.Cost(workdir))
  assert not list(carry.rglob('*checkpoint*'))  # records only

  def no_training(*args, **kwargs):
    raise AssertionError('trained again')
  monkeypatch.setattr(train, 'train_and_evaluate', no_training)
  cost = budgets_lib.Cost(elsewhere)
  assert budgets_lib.carry_in(carry, *plan, elsewhere, cost)
  budgets_lib.train_seed(*plan, elsewhere, cost, STEPS_PER_EPOCH)
  rows = budgets_lib.branch_rows(config, BUDGETS, FRACTION, 1, workdir,
                                 STEPS_PER_EPOCH)
  assert budgets_lib.branch_rows(config, BUDGETS, FRACTION, 1, elsewhere,
                                 STEPS_PER_EPOCH) == rows
  assert cost.seconds == budgets_lib.Cost(workdir).seconds
  assert budgets_lib.trained_on(BUDGETS, 1, elsewhere) == [
      json.loads((carry / 'seed0' / 'budget2' / 'machine.json').read_text())]
  # Taken once: a seed with a folder here is this machine's.
  assert not budgets_lib.carry_in(carry, *plan, elsewhere, cost)


def test_only_whole_seeds_of_this_sweep_are_carried(trained, tmp_path):
  config, workdir, _ = trained
  carry = tmp_path / 'carry'
  cost = budgets_lib.Cost(workdir)
  # A budget this seed has not trained: the seed is not finished.
  assert not budgets_lib.carry_out(carry, config, (2, 3, 4), FRACTION, 0,
                                   workdir, cost)
  assert not carry.exists()
  budgets_lib.carry_out(carry, config, BUDGETS, FRACTION, 0, workdir, cost)
  assert not budgets_lib.carry_in(carry, config, (2, 3, 4), FRACTION, 0,
                                  tmp_path / 'a', cost)
  assert not (tmp_path / 'a').exists()
  with pytest.raises(errors.ResumeError, match='different config'):
    budgets_lib.carry_in(carry, config, BUDGETS, 0.25, 0, tmp_path / 'b',
                         cost)


def test_an_unfinished_branch_of_ours_is_made_again(idx_dir, tmp_path):
  config = wsd_config(idx_dir)
  partial = budgets_lib.branch_dir(tmp_path, 0, 2).with_name(
      'budget2' + budgets_lib.PARTIAL)
  partial.mkdir(parents=True)
  (partial / budgets_lib.MARKER).write_text('')
  (partial / 'half-written').write_text('')
  budgets_lib.train_seed(config, (2,), FRACTION, 0, tmp_path,
                         budgets_lib.Cost(tmp_path), STEPS_PER_EPOCH)
  assert not partial.exists()
  assert budgets_lib.is_finished(budgets_lib.branch_dir(tmp_path, 0, 2),
                                 budgets_lib.budget_config(config, 2,
                                                           FRACTION, 0))


def test_a_folder_in_the_way_that_is_not_ours_is_kept(idx_dir, tmp_path):
  config = wsd_config(idx_dir)
  partial = budgets_lib.seed_dir(tmp_path, 0) / ('budget2'
                                                 + budgets_lib.PARTIAL)
  partial.mkdir(parents=True)
  (partial / 'mine.txt').write_text('a user file')
  with pytest.raises(errors.WorkdirError, match='not made by tools/budgets'):
    budgets_lib.train_seed(config, (2,), FRACTION, 0, tmp_path,
                           budgets_lib.Cost(tmp_path), STEPS_PER_EPOCH)
  assert (partial / 'mine.txt').read_text() == 'a user file'


@pytest.mark.parametrize('text,message', [
    ('3,2', 'increasing'), ('2,2', 'increasing'), ('0,2', '>= 1'),
    ('2,x', 'whole epochs'), ('2.5', 'whole epochs'), ('', 'whole epochs')])
def test_bad_budgets_are_one_line(text, message):
  with pytest.raises(errors.ConfigError, match=message):
    budgets_lib.parse_budgets(text)


@pytest.mark.parametrize('overrides,budgets,fraction,message', [
    ({'schedule': 'warmup_cosine'}, (2, 3), 0.2, "schedule='warmup_cosine' "
     'is invalid for tools/budgets.py'),
    ({}, (2, 3), 0.0, r'--decay_fraction=0.0 is invalid: must lie in \(0, 1\)'),
    ({}, (2, 3), 1.0, r'--decay_fraction=1.0 is invalid: .* leaves no trunk'),
    ({}, (2, 3), 1.5, r'--decay_fraction=1.5 is invalid'),
    ({'warmup_epochs': 1.0}, (1, 3), 0.2, 'a budget of 1 epoch'),
])
def test_bad_plans_are_refused_before_training(idx_dir, overrides, budgets,
                                               fraction, message):
  config = wsd_config(idx_dir, **overrides)
  with pytest.raises(errors.ConfigError, match=message):
    budgets_lib.check_plan(config, budgets, fraction, 1)


def test_steps_per_call_across_a_branch_point_is_refused(idx_dir):
  config = wsd_config(idx_dir, steps_per_call=4)
  with pytest.raises(errors.ConfigError, match='inside a call of 4 steps'):
    budgets_lib.check_call_grouping(config, STARTS, STEPS_PER_EPOCH)
  budgets_lib.check_call_grouping(config, (20, 36), STEPS_PER_EPOCH)


def test_a_damaged_cost_record_is_one_line(tmp_path):
  (tmp_path / budgets_lib.COST_JSON).write_text('{"seed0/trunk": 1.')
  with pytest.raises(errors.WorkdirError, match='cost.json is damaged'):
    budgets_lib.Cost(tmp_path)


def test_budgets_against_a_separate_schedule_are_paired_by_seed():
  accuracies = (0.90, 0.91, 0.92)
  rows = [{'budget': 2, 'seed': s, 'final_test_accuracy': a}
          for s, a in enumerate(accuracies)]
  ahead = {(2, s): a - 0.01 for s, a in enumerate(accuracies)}
  summary = budgets_lib.summarize(rows, (2,), 3, ahead)['2']
  assert summary['paired_difference']['mean'] == pytest.approx(0.01)
  assert summary['verdict'] == 'better'  # +0.01 on every seed
  mixed = {(2, 0): 0.89, (2, 1): 0.92, (2, 2): 0.915}  # +0.01, -0.01, +0.005
  summary = budgets_lib.summarize(rows, (2,), 3, mixed)['2']
  assert summary['paired_difference']['n'] == 3
  assert summary['verdict'] == 'no detectable difference'
  del mixed[(2, 0)]  # a seed missing: no pairing, no verdict
  assert 'verdict' not in budgets_lib.summarize(rows, (2,), 3, mixed)['2']


def test_each_budget_is_paired_with_the_previous_one_by_seed():
  """How many epochs are worth it: budget 3 gains 0.01 on every seed (the
  rows out of seed order), budget 5 gains nothing detectable."""
  rows = [{'budget': 2, 'seed': 1, 'final_test_accuracy': 0.92},
          {'budget': 2, 'seed': 0, 'final_test_accuracy': 0.90},
          {'budget': 3, 'seed': 0, 'final_test_accuracy': 0.91},
          {'budget': 3, 'seed': 1, 'final_test_accuracy': 0.93},
          {'budget': 5, 'seed': 0, 'final_test_accuracy': 0.92},
          {'budget': 5, 'seed': 1, 'final_test_accuracy': 0.92}]
  summary = budgets_lib.summarize(rows, (2, 3, 5), 2)
  assert 'gain_over_previous' not in summary['2']
  gain = summary['3']['gain_over_previous']
  assert (gain['previous_budget'], gain['n']) == (2, 2)
  assert gain['mean'] == pytest.approx(0.01) and gain['std'] < 1e-12
  assert summary['3']['gain_verdict'] == 'better'
  assert summary['5']['gain_over_previous']['mean'] == pytest.approx(0.0)
  assert summary['5']['gain_verdict'] == 'no detectable difference'
  cost = budgets_lib.cost_summary(
      [{'budget': b, 'cooldown_epochs_trained': 0.2 * b} for b in (2, 3, 5)],
      (2, 3, 5), 2, {})
  text = budgets_lib.markdown(summary, cost, 0.2, None)
  # The interval stops at 100%; the gain's p is Holm-adjusted over the
  # table's 2 comparisons.
  assert '| 3 | 2 | 92.00% [79.29, 100.00] | +1.00 [+1.00, +1.00] over 2, ' \
      'p<0.001 (better) |' in text
  assert summary['3']['gain_over_previous']['family_size'] == 2
  assert 'over the previous one (paired by seed, Holm-adjusted p below ' \
      '0.05): 3.' in text
  # A seed missing at one budget: no pairing with it.
  assert 'gain_over_previous' not in budgets_lib.summarize(
      rows[:-1], (2, 3, 5), 2)['5']


def test_the_comparison_is_read_from_a_study_over_num_epochs(tmp_path):
  (tmp_path / 'study.csv').write_text(
      'member,seed,num_epochs,final_test_accuracy,finished,diverged\n'
      'a,0,2,0.91,1,0\n'
      'b,1,2,0.92,1,0\n'
      'c,0,3,0.5,0,0\n'     # unfinished: left out
      'd,1,3,0.1,1,1\n')    # diverged: left out
  assert budgets_lib.read_comparison(tmp_path) == {(2, 0): 0.91,
                                                   (2, 1): 0.92}
  (tmp_path / 'study.csv').write_text('member,seed,schedule\n')
  with pytest.raises(errors.ConfigError, match='varies schedule: it must '
                     'vary num_epochs alone'):
    budgets_lib.read_comparison(tmp_path)
  with pytest.raises(errors.WorkdirError, match='has no study.csv'):
    budgets_lib.read_comparison(tmp_path / 'nothing')


def test_a_comparison_study_of_another_kind_is_refused(tmp_path):
  """A study that varies more than num_epochs would give two rows per
  (budget, seed), the last silently winning; one of other data pairs runs
  of different datasets."""
  header = ('member,seed,num_epochs,warmup_epochs,final_test_accuracy,'
            'finished,diverged,data_fingerprint\n')
  (tmp_path / 'study.csv').write_text(
      header + 'a,0,2,0.0,0.91,1,0,aaaa\nb,0,2,1.0,0.95,1,0,aaaa\n')
  with pytest.raises(errors.ConfigError,
                     match='varies num_epochs, warmup_epochs: it must vary '
                     'num_epochs alone'):
    budgets_lib.read_comparison(tmp_path, 'aaaa')
  header = ('member,seed,num_epochs,final_test_accuracy,finished,diverged,'
            'data_fingerprint\n')
  (tmp_path / 'study.csv').write_text(header + 'a,0,2,0.91,1,0,bbbb\n')
  with pytest.raises(errors.ConfigError, match='trained on other data '
                     '\\(data fingerprint bbbb there, aaaa here\\)'):
    budgets_lib.read_comparison(tmp_path, 'aaaa')
  assert budgets_lib.read_comparison(tmp_path, 'bbbb') == {(2, 0): 0.91}
  (tmp_path / 'study.csv').write_text(
      header + 'a,0,2,0.91,1,0,bbbb\nb,0,2,0.93,1,0,bbbb\n')
  with pytest.raises(errors.ConfigError, match='two rows of num_epochs=2, '
                     'seed 0'):
    budgets_lib.read_comparison(tmp_path, 'bbbb')


def test_a_removed_branch_is_made_again_as_its_own_run(trained, tmp_path):
  """budget2 removed while the trunk is further on (at budget 3's cooldown
  start): the branch made again holds only the trunk's records up to its
  own cooldown start, is not taken as finished, and trains its cooldown
  into the standalone run of budget 2, byte for byte."""
  config, workdir, separate = trained
  copy = tmp_path / 'copy'
  shutil.copytree(workdir, copy)
  shutil.rmtree(budgets_lib.branch_dir(copy, 0, 2))
  budgets_lib.train_seed(config, BUDGETS, FRACTION, 0, copy,
                         budgets_lib.Cost(copy), STEPS_PER_EPOCH)
  branch = budgets_lib.branch_dir(copy, 0, 2)
  assert step_log(branch) == step_log(separate[2])
  rows = budgets_lib.branch_rows(config, BUDGETS, FRACTION, 1, copy,
                                 STEPS_PER_EPOCH)
  final = run_logs.read_epochs(separate[2])['test_accuracy'][-1]
  assert rows[0]['final_test_accuracy'] == final


def test_a_branch_just_made_is_not_finished(trained, tmp_path):
  config, workdir, _ = trained
  trunk = budgets_lib.seed_dir(workdir, 0) / budgets_lib.TRUNK
  branch_config = budgets_lib.budget_config(config, 2, FRACTION, 0)
  destination = tmp_path / 'budget2'
  budgets_lib.make_branch(trunk, budgets_lib.budget_config(
      config, 3, FRACTION, 0), destination, branch_config, STARTS[0])
  assert not budgets_lib.is_finished(destination, branch_config)
  assert run_logs.read_steps(destination)['step'][-1] == STARTS[0] - 1
  assert run_logs.read_epochs(destination)['step'][-1] <= STARTS[0]


def test_a_carried_seed_of_other_data_is_refused(trained, tmp_path):
  config, workdir, _ = trained
  carry = tmp_path / 'carry'
  plan = (config, BUDGETS, FRACTION, 0)
  budgets_lib.carry_out(carry, *plan, workdir, budgets_lib.Cost(workdir))
  with pytest.raises(errors.ResumeError, match='trained on other data'):
    budgets_lib.carry_in(carry, *plan, tmp_path / 'here',
                         budgets_lib.Cost(tmp_path / 'here'), 'f' * 16)
  assert not (tmp_path / 'here' / 'seed0').exists()


@pytest.mark.parametrize('link', ['seed0', 'seed0/budget2'])
def test_a_seed_or_branch_folder_that_is_a_link_is_refused(idx_dir, tmp_path,
                                                           link):
  """seed0 (or a branch) a link to a user's folder: one line, nothing
  written there."""
  users = tmp_path / 'users_folder'
  users.mkdir()
  workdir = tmp_path / 'budgets'
  (workdir / link).parent.mkdir(parents=True, exist_ok=True)
  (workdir / link).symlink_to(users)
  with pytest.raises(errors.WorkdirError, match='is a symbolic link'):
    budgets_lib.train_seed(wsd_config(idx_dir), (2,), FRACTION, 0, workdir,
                           budgets_lib.Cost(workdir), STEPS_PER_EPOCH)
  assert not list(users.iterdir())


def test_the_tool_writes_its_report(idx_dir, tmp_path):
  workdir = tmp_path / 'budgets'
  args = ('tools/budgets.py', '--budgets=1,2', '--seeds=2',
          f'--decay_fraction={FRACTION}', '--config.data_source=idx',
          f'--config.idx_dir={idx_dir}', '--config.allow_download=false',
          '--config.batch_size=32', '--config.warmup_epochs=0.5',
          '--config.cpu_devices=1', f'--carry={tmp_path / "carry"}')
  result = run_tool(*args, f'--workdir={workdir}', config='wsd.py')
  assert result.returncode == 0, result.stderr[-2000:]
  rows = (workdir / 'budgets.csv').read_text().splitlines()
  assert rows[0].split(',') == list(budgets_lib.ROW_FIELDS)
  assert len(rows) == 1 + 2 * 2
  report = json.loads((workdir / 'budgets.json').read_text())
  assert set(report['budgets']) == {'1', '2'}
  assert report['budgets']['2']['final_test_accuracy']['n'] == 2
  assert report['cost']['separate_runs_epochs_per_seed'] == 3
  assert 'Epochs trained per seed' in (workdir / 'budgets.md').read_text()
  assert (workdir / 'budgets.png').read_bytes()[:4] == b'\x89PNG'
  # On another machine, the carried seeds are taken, not trained again.
  again = run_tool(*args, f'--workdir={tmp_path / "elsewhere"}',
                   config='wsd.py')
  assert again.returncode == 0, again.stderr[-2000:]
  assert 'taken from' in again.stderr and 'trunk to step' not in again.stderr
  assert (tmp_path / 'elsewhere' / 'budgets.csv').read_text() == '\n'.join(
      rows) + '\n'


def test_the_tool_refuses_bad_input_in_one_line(tmp_path):
  result = run_tool('tools/budgets.py', f'--workdir={tmp_path / "b"}',
                    '--budgets=5,3', config='wsd.py')
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1].startswith(
      'Error: --budgets=5,3 is invalid')
  assert 'Traceback' not in result.stderr
  assert not (tmp_path / 'b').exists()


# Several cooldowns from one trunk: budget 2 (32 steps) with the last 30%
# (start 22) or 50% (start 16), each linear or 1-sqrt.
COOLDOWNS = tuple(budgets_lib.Cooldown(f, shape) for f in (0.3, 0.5)
                  for shape in ('linear', '1-sqrt'))


@pytest.fixture(scope='module')
def trained_cooldowns(idx_dir, tmp_path_factory):
  config = wsd_config(idx_dir)
  workdir = tmp_path_factory.mktemp('cooldowns')
  budgets_lib.train_seed(config, (2,), COOLDOWNS, 0, workdir,
                         budgets_lib.Cost(workdir), STEPS_PER_EPOCH)
  return config, workdir


@pytest.mark.parametrize('cooldown', [COOLDOWNS[0], COOLDOWNS[3]],
                         ids=lambda c: c.name)
def test_every_cooldown_branch_is_the_run_of_its_config(
    trained_cooldowns, tmp_path, cooldown):
  """budget2_linear_0.3 and budget2_1-sqrt_0.5, both from the one trunk,
  are the standalone runs of their fraction and shape byte for byte."""
  config, workdir = trained_cooldowns
  branch = budgets_lib.Branch(2, cooldown, f'budget2_{cooldown.name}')
  run_config = budgets_lib.branch_config(config, branch, 0)
  assert (run_config.decay_fraction, run_config.decay_shape) == (
      cooldown.fraction, cooldown.shape)
  separate = tmp_path / 'separate'
  train.train_and_evaluate(run_config, str(separate))
  mine = budgets_lib.branch_dir(workdir, 0, branch)
  assert step_log(mine) == step_log(separate)
  assert_same_params(final_params(mine, run_config),
                     final_params(separate, run_config))


def test_the_trunk_is_trained_once_to_the_latest_start(trained_cooldowns):
  config, workdir = trained_cooldowns
  trunk = budgets_lib.seed_dir(workdir, 0) / budgets_lib.TRUNK
  assert run_logs.read_steps(trunk)['step'][-1] == 21  # paused at 22
  names = sorted(p.name for p in budgets_lib.seed_dir(workdir, 0).iterdir())
  assert names == ['budget2_1-sqrt_0.3', 'budget2_1-sqrt_0.5',
                   'budget2_linear_0.3', 'budget2_linear_0.5', 'trunk']
  rows = budgets_lib.branch_rows(config, (2,), COOLDOWNS, 1, workdir,
                                 STEPS_PER_EPOCH)
  assert [(r['decay_fraction'], r['decay_shape'], r['cooldown_start_step'])
          for r in rows] == [(0.3, 'linear', 22), (0.3, '1-sqrt', 22),
                             (0.5, 'linear', 16), (0.5, '1-sqrt', 16)]
  cost = budgets_lib.cost_summary(rows, (2,), 1, {'a': 1.0})
  assert cost['trunk_epochs_per_seed'] == pytest.approx(22 / 16, abs=1e-4)
  assert cost['separate_runs_epochs_per_seed'] == 8  # 4 runs of 2 epochs
  assert cost['epochs_trained_per_seed'] == pytest.approx(
      (22 + 10 + 10 + 16 + 16) / 16, abs=1e-3)


def test_a_table_of_cooldowns_is_one_family(tmp_path):
  """Each cooldown against the comparison, paired by seed; one Holm
  family over the table; a row per branch in budgets.md."""
  rows = []
  for i, cooldown in enumerate(COOLDOWNS):
    for seed in range(3):
      rows.append({'budget': 2, 'seed': seed, 'decay_shape': cooldown.shape,
                   'decay_fraction': cooldown.fraction,
                   'final_test_accuracy': 0.90 + 0.01 * i + 0.001 * seed,
                   'best_test_accuracy': 0.9, 'final_test_loss': 0.3,
                   'cooldown_start_step': 22,
                   'cooldown_epochs_trained': 0.6})
  comparison = {(2, s): 0.905 + 0.001 * s for s in range(3)}
  summary = budgets_lib.summarize(rows, (2,), 3, comparison)
  assert list(summary) == ['2, linear_0.3', '2, 1-sqrt_0.3',
                           '2, linear_0.5', '2, 1-sqrt_0.5']
  first = summary['2, linear_0.3']
  assert first['paired_difference']['mean'] == pytest.approx(-0.005)
  assert first['paired_difference']['family_size'] == 4
  assert summary['2, 1-sqrt_0.5']['verdict'] == 'better'
  cost = budgets_lib.cost_summary(rows, (2,), 3, {'a': 1.0})
  spec = {'decay_fraction': [[c.fraction, c.shape] for c in COOLDOWNS],
          'compare_name': 'cosine', 'budgets': [2], 'seeds': 3}
  text = budgets_lib.write_report(tmp_path, rows, summary, cost, spec)
  assert '| 2, 1-sqrt over the last 50% | 3 | 93.10% [' in text
  # One budget: nothing before it to gain over, so no such column or line.
  assert 'previous' not in text
  assert text.count('| 2, 1-sqrt over the last 50% |') == 1
  assert all(line.count('|') == 8 for line in text.splitlines()
             if line.startswith('|'))
  assert 'the last 30, 50% of each budget, each of shape linear, 1-sqrt' in text
  assert "The table's 4 paired comparisons are one family" in text
  header = (tmp_path / 'budgets.csv').read_text().splitlines()[0]
  assert header.startswith('budget,seed,decay_shape,decay_fraction,')
  # Without a comparison study, rebuilt from its own files alone.
  del spec['compare_name']
  text = budgets_lib.write_report(tmp_path, rows, budgets_lib.summarize(
      rows, (2,), 3), cost, spec)
  assert budgets_lib.rebuild(tmp_path) == text


def test_one_budgets_cooldowns_are_drawn_against_their_length(
    tmp_path, monkeypatch):
  """Several cooldowns of one budget: budgets.png is the metric against the
  cooldown's share of the run, a line per shape, the comparison a level
  (not every point stacked at one budget)."""
  drawn = {}
  monkeypatch.setattr(plots, 'plot_cooldowns',
                      lambda *args, **_: drawn.setdefault('args', args))
  monkeypatch.setattr(plots, 'plot_budgets',
                      lambda *args, **_: pytest.fail('one budget, not a curve'))
  rows = [{'budget': 2, 'seed': seed, 'decay_shape': c.shape,
           'decay_fraction': c.fraction,
           'final_test_accuracy': 0.90 + 0.01 * i + 0.001 * seed,
           'best_test_accuracy': 0.9, 'final_test_loss': 0.3,
           'cooldown_start_step': 22, 'cooldown_epochs_trained': 0.6}
          for i, c in enumerate(COOLDOWNS) for seed in range(3)]
  summary = budgets_lib.summarize(
      rows, (2,), 3, {(2, s): 0.905 + 0.001 * s for s in range(3)})
  spec = {'decay_fraction': [[c.fraction, c.shape] for c in COOLDOWNS],
          'compare_name': 'cosine', 'budgets': [2], 'seeds': 3}
  budgets_lib.write_report(tmp_path, rows, summary, budgets_lib.cost_summary(
      rows, (2,), 3, {'a': 1.0}), spec)
  shapes, comparison, name, budget = drawn['args'][:4]
  assert list(shapes) == ['linear', '1-sqrt']
  fractions, mean, _, _ = shapes['1-sqrt']
  assert fractions == [0.3, 0.5]
  assert mean == pytest.approx([0.911, 0.931])
  assert comparison[0] == pytest.approx(0.906)
  assert (name, budget) == ('cosine', 2)


def test_one_seed_is_reported_without_an_interval_or_a_verdict(tmp_path):
  """--seeds=1 leaves nothing to test: each paired difference is shown
  alone, 'not tested (one seed)', never as [+nan, +nan] or '±nan'."""
  rows = [{'budget': b, 'seed': 0, 'final_test_accuracy': 0.90 + 0.01 * b,
           'best_test_accuracy': 0.9, 'final_test_loss': 0.3,
           'cooldown_start_step': 22, 'cooldown_epochs_trained': 0.6}
          for b in (1, 2)]
  summary = budgets_lib.summarize(rows, (1, 2), 1,
                                  {(1, 0): 0.905, (2, 0): 0.915})
  cost = budgets_lib.cost_summary(rows, (1, 2), 1, {'a': 1.0})
  spec = {'decay_fraction': 0.2, 'compare_name': 'cosine', 'budgets': [1, 2],
          'seeds': 1}
  text = budgets_lib.write_report(tmp_path, rows, summary, cost, spec)
  assert 'nan' not in text
  assert '| +0.50 (one seed: no interval) | p n/a | not tested (one seed) |' in (
      text)
  assert '+1.00 (one seed: no interval) over 1, p n/a' in text


def test_the_comparison_may_be_one_setting_of_a_methods_study(tmp_path):
  """--compare_setting=config=configs/lm.py: the baseline of a study that
  varies config, its num_epochs read from each member's config.json."""
  (tmp_path / 'study.csv').write_text(
      'member,seed,config,final_test_accuracy,finished,diverged\n'
      'a,0,configs/lm.py,0.91,1,0\n'
      'b,1,configs/lm.py,0.92,1,0\n'
      'c,0,configs/lm_wsd.py,0.95,1,0\n')
  for member in 'abc':
    (tmp_path / 'members' / member).mkdir(parents=True)
    (tmp_path / 'members' / member / 'config.json').write_text(
        '{"num_epochs": 4}')
  assert budgets_lib.read_comparison(
      tmp_path, setting='config=configs/lm.py') == {(4, 0): 0.91,
                                                    (4, 1): 0.92}
  with pytest.raises(errors.ConfigError, match='varies config, not '
                     "'schedule'"):
    budgets_lib.read_comparison(tmp_path, setting='schedule=wsd')
  with pytest.raises(errors.ConfigError, match='no member of'):
    budgets_lib.read_comparison(tmp_path, setting='config=configs/x.py')
  with pytest.raises(errors.ConfigError, match='varies config: it must vary '
                     'num_epochs alone'):
    budgets_lib.read_comparison(tmp_path)


@pytest.mark.parametrize('fractions,shapes,message', [
    (['0.1', 'x'], [], '--decay_fraction=0.1,x is invalid'),
    (['0.1', '0.1'], [], 'must name each fraction once'),
    (['0.1'], ['linear', 'square'], '--decay_shapes=linear,square is invalid: '
     'each must be one of linear, cosine, 1-sqrt'),
])
def test_bad_cooldowns_are_one_line(idx_dir, fractions, shapes, message):
  with pytest.raises(errors.ConfigError, match=message):
    budgets_lib.parse_cooldowns(wsd_config(idx_dir), fractions, shapes)


def test_the_tool_branches_several_cooldowns(idx_dir, tmp_path):
  workdir = tmp_path / 'cooldowns'
  result = run_tool('tools/budgets.py', '--budgets=2', '--seeds=1',
                    '--decay_fraction=0.3,0.5', '--decay_shapes=linear,1-sqrt',
                    '--config.data_source=idx', f'--config.idx_dir={idx_dir}',
                    '--config.allow_download=false', '--config.batch_size=32',
                    '--config.warmup_epochs=0.5', '--config.cpu_devices=1',
                    f'--workdir={workdir}', config='wsd.py')
  assert result.returncode == 0, result.stderr[-2000:]
  report = json.loads((workdir / 'budgets.json').read_text())
  assert report['spec']['decay_fraction'] == [
      [0.3, 'linear'], [0.3, '1-sqrt'], [0.5, 'linear'], [0.5, '1-sqrt']]
  assert set(report['budgets']) == {'2, linear_0.3', '2, 1-sqrt_0.3',
                                    '2, linear_0.5', '2, 1-sqrt_0.5'}
  assert result.stderr.count('trunk to step') == 4  # one trunk, 4 pauses
  assert len((workdir / 'budgets.csv').read_text().splitlines()) == 5


@pytest.mark.parametrize('name', sorted(
    p.parent.name for p in (PROJECT_DIR / 'docs' / 'budgets').glob(
        '*/budgets.json')))
def test_a_committed_sweep_is_its_rebuilt_report(name, tmp_path):
  """Each published sweep's budgets.md is what `tools/budgets.py --rebuild`
  makes from its committed budgets.csv and budgets.json (and its comparison
  study): the numbers the README and docs/lm.md quote are generated."""
  folder = PROJECT_DIR / 'docs' / 'budgets' / name
  for file in ('budgets.csv', 'budgets.json'):
    shutil.copy(folder / file, tmp_path / file)
  assert budgets_lib.rebuild(tmp_path) == (folder / 'budgets.md').read_text()
