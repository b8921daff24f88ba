"""tools/laws_benchmark.py and prediction_benchmark.py: the benchmark's
measures on runs written from a known Multi-Power Law (test_predict's
synthetic records), where the truth is known: MPL must predict within a
few seed sigmas, cover the measured means and rank the separable pairs."""

import json

import numpy as np
import pytest

from configs import laws_benchmark
from configs import recorded
from conftest import PROJECT_DIR
from machinery import errors
import prediction_benchmark
from test_predict import STEPS_PER_EPOCH
from test_predict import write_run

HELD_OUT = ('wsd_1sqrt_20', 'linear_to_zero', 'step_two_drops', 'cosine_2x')
SEEDS = (0, 1, 2, 3, 4)


def expected(task, name):
  """The benchmark's LM config, at 50 steps an epoch (200 a length)."""
  config = laws_benchmark.get_config(f'{task}:{name}')
  config.steps_per_epoch = STEPS_PER_EPOCH
  return config


@pytest.fixture(scope='module')
def study(tmp_path_factory):
  """A carry-like folder of the fit set and 4 held-out schedules, 5 seeds
  each; one fit run unfinished, in a second folder with its finished twin."""
  root = tmp_path_factory.mktemp('laws')
  names = ('constant', 'cosine_to_zero', 'two_stage_drop') + HELD_OUT
  for i, name in enumerate(names):
    for seed in SEEDS:
      config = expected('language_model', name)
      config.seed = seed
      # Noise of its own per run: schedules are not paired by their noise.
      write_run(root / 'members' / f'{name}_seed{seed}', noise=0.003,
                config=config, noise_seed=100 * i + seed)
  return root


def test_mpl_predicts_its_own_truth_and_ranks_it(study, tmp_path):
  results = prediction_benchmark.benchmark({'language_model': [str(study)]},
                           ('multi_power', 'step_power'), expected)
  result = results['language_model']
  assert result['held_out'] == list(HELD_OUT)
  assert 'wsd_linear_10' in result['missing']
  mpl, blind = result['laws']['multi_power'], result['laws']['step_power']
  assert mpl['error_in_std_median'] < 2 and mpl['coverage'] >= 0.75
  # Linear to zero ends clearly lowest of the three of the fit length; WSD
  # and the two-drop step end within 0.001 of each other (not separable).
  assert mpl['separable_pairs'] == 2 and mpl['ranking_accuracy'] == 1.0
  assert mpl['pick'] == 'linear_to_zero' and mpl['regret'] == 0.0
  # The schedule-blind baseline cannot tell schedules of one length apart:
  # its pick (the first of equal predictions) is detectably worse than the
  # best, paired by seed.
  assert blind['error_in_std_median'] > mpl['error_in_std_median']
  assert mpl['regret_test'] is None and blind['pick'] == 'wsd_1sqrt_20'
  assert blind['regret_test']['mean'] == pytest.approx(blind['regret'])
  assert blind['regret_test']['p_holm'] < 0.05
  assert result['verdict'] == {'answer': 'yes', 'reasons': [
      'it picks linear_to_zero, the measured best',
      'it orders 2 of the 2 separable pairs right (at least 80%)',
      'against `step_power` it is better on ranking accuracy and median '
      'error']}
  text = prediction_benchmark.write(results, tmp_path / 'out')
  assert '| `multi_power` |' in text and '| `step_power` |' in text
  assert ('by `multi_power`? **yes**: it picks linear_to_zero, the measured '
          'best; ') in text
  written = tmp_path / 'out' / 'language_model_results.json'
  assert (tmp_path / 'out' / 'language_model_results.md').read_text() == text
  assert json.loads(written.read_text())['language_model']['fit'] == [
      'constant', 'cosine_to_zero', 'two_stage_drop']
  for picture in ('predicted', 'curves'):
    png = tmp_path / 'out' / f'language_model_{picture}.png'
    assert png.read_bytes()[:4] == b'\x89PNG'
  # Each held-out schedule's curve: the seeds' mean per bin after the
  # warmup, whose last bin is the measured final level; MPL's curve follows
  # it within the noise, the schedule-blind baseline's does not.
  for name in HELD_OUT:
    curve = mpl['schedules'][name]['curve']
    assert len(curve['steps']) == len(curve['measured']) == 100
    assert curve['measured'][-1] == pytest.approx(
        mpl['schedules'][name]['measured_mean'], abs=1e-12)
    gap = lambda law, c=curve: np.abs(
        np.log(np.array(result['laws'][law]['schedules'][name]['curve'][
            'predicted']) / c['measured'])).max()
    assert gap('multi_power') < 0.01 < gap('step_power'), name
  # MPL's --optimize schedule from cosine to zero: non-increasing from the
  # peak, predicted no worse than cosine, written as a config to train.
  found = result['optimized']
  knots = found['knots']
  assert knots[0] == 1.0 and all(a >= b for a, b in zip(knots, knots[1:]))
  assert found['reference']['name'] == 'cosine_to_zero'
  assert (found['predicted']['final_loss']
          <= found['reference']['predicted'] + 1e-6)
  assert found['predicted']['interval'] is not None
  schedule = tmp_path / 'out' / 'language_model_optimized.schedule.json'
  assert schedule.name in text
  config = recorded.get_config(str(schedule))
  cosine = expected('language_model', 'cosine_to_zero')
  assert config.schedule == 'piecewise_linear' and config.knots == tuple(knots)
  for field in ('num_epochs', 'learning_rate', 'warmup_epochs',
                'steps_per_epoch', 'task'):
    assert config[field] == cosine[field], field


def test_a_fit_set_without_every_seed_is_refused(study, tmp_path):
  partial = tmp_path / 'partial'
  (partial / 'members').mkdir(parents=True)
  config = expected('language_model', 'constant')
  write_run(partial / 'members' / 'constant_seed0', config=config)
  found = prediction_benchmark.find_runs(
      [partial], lambda name: expected('language_model', name),
      ['constant'], SEEDS)
  assert set(found['constant']) == {0}
  with pytest.raises(errors.ConfigError, match="the fit schedule 'constant' "
                     'has no finished run of seed'):
    prediction_benchmark.run_task(found, ['constant'], {}, SEEDS, ('s1_power',))


def test_bad_runs_flag_is_one_line(tmp_path):
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  for value, message in (('nothing=x', '--runs=nothing=x is invalid'),
                         (f'language_model={tmp_path}', 'holds no runs')):
    result = subprocess.run(
        [sys.executable, str(PROJECT_DIR / 'tools' / 'laws_benchmark.py'),
         f'--runs={value}', f'--output={tmp_path / "out"}'],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
  assert not (tmp_path / 'out').exists()


def test_a_budget_sweeps_branch_is_found_as_its_run(tmp_path):
  """tools/budgets.py's branches (seed<S>/budget<B>_<shape>_<fraction>)
  are runs of their own configs: the benchmark takes them."""
  config = expected('language_model', 'wsd_linear_10')
  config.seed = 3
  write_run(tmp_path / 'seed3' / 'budget4_linear_0.1', config=config)
  found = prediction_benchmark.find_runs(
      [tmp_path], lambda name: expected('language_model', name),
      ['wsd_linear_10', 'wsd_linear_20'], SEEDS)
  assert list(found) == ['wsd_linear_10'] and list(found['wsd_linear_10']) == [3]


def test_a_shorter_constant_run_is_found_as_the_first_steps_of_a_longer(
    tmp_path):
  """Only the constant rate at 3x is trained: the constant runs of 1x and
  2x are its first steps (their rates are its), no run of cosine at 2x is
  found in cosine at 3x (a decay depends on the length), and a standalone
  run is taken before a longer one's steps."""
  for name in ('constant_3x', 'cosine_3x'):
    config = expected('language_model', name)
    config.seed = 1
    write_run(tmp_path / 'members' / f'{name}_seed1', config=config)
  names = ['constant', 'constant_2x', 'constant_3x', 'cosine_2x']
  find = lambda: prediction_benchmark.find_runs(
      [tmp_path], lambda name: expected('language_model', name), names,
      SEEDS)
  found = find()
  assert sorted(found) == ['constant', 'constant_2x', 'constant_3x']
  whole = found['constant_3x'][1]
  for name, length in (('constant', 1), ('constant_2x', 2)):
    part = found[name][1]
    steps = whole.steps * length // 3
    assert part.steps == steps and part.path.endswith(
        f'(its first {steps} steps)')
    assert part.config['num_epochs'] == expected('language_model',
                                                 name).num_epochs
    assert part.steps_per_epoch == whole.steps_per_epoch == STEPS_PER_EPOCH
    assert (part.rates == whole.rates[:steps]).all()
    assert (part.losses == whole.losses[:steps]).all()
  config = expected('language_model', 'constant_2x')
  config.seed = 1
  standalone = write_run(tmp_path / 'members' / 'constant_2x_seed1',
                         config=config, noise_seed=7)
  assert find()['constant_2x'][1].path == str(standalone)


@pytest.mark.parametrize('task,steps_per_epoch', [
    ('language_model', 250), ('fashion_mnist', 468)])
def test_the_benchmarks_constant_is_found_in_its_run_at_3x(tmp_path, task,
                                                           steps_per_epoch):
  """At the real steps per epoch, where the rates train.py records (a
  jitted schedule's float32) differ in their last bits from the same
  schedule run eagerly: the constant rate at 1x and 2x is still found in
  the run at 3x (its warmup alike), and cosine at 2x still not in 3x."""
  def config_of(name):
    config = laws_benchmark.get_config(f'{task}:{name}')
    config.steps_per_epoch = steps_per_epoch
    config.seed = 0
    return config
  for name in ('constant_3x', 'cosine_3x'):
    write_run(tmp_path / 'members' / name, config=config_of(name))
  found = prediction_benchmark.find_runs(
      [tmp_path], config_of, ['constant', 'constant_2x', 'cosine_2x'], [0])
  assert sorted(found) == ['constant', 'constant_2x']
  assert found['constant'][0].steps == config_of('constant').num_epochs * (
      steps_per_epoch)


@pytest.mark.parametrize('task', ['image', 'language_model'])
def test_the_first_steps_of_a_longer_constant_run_are_the_shorter_run(
    task, idx_dir, text_dir, tmp_path):
  """Trained, not written: a constant rate's run at 2 lengths; the
  benchmark's view of the shorter one taken from the longer one's first
  steps is the standalone shorter run, rate for rate and loss for loss."""
  import conftest  # pylint: disable=g-import-not-at-top
  import prediction  # pylint: disable=g-import-not-at-top
  import train  # pylint: disable=g-import-not-at-top
  # The generated images are easy: at the default peak the loss reaches
  # 0.0 in float32, which no law is fitted on; a lower one keeps it above.
  make, folder, epochs, peak = (
      (conftest.small_config, idx_dir, 2, 0.005) if task == 'image' else
      (conftest.small_lm_config, text_dir, 3, 1e-2))
  config_of = lambda num_epochs: make(folder, schedule='constant',
                                      num_epochs=num_epochs,
                                      learning_rate=peak)
  train.train_and_evaluate(config_of(epochs), str(tmp_path / 'shorter'))
  train.train_and_evaluate(config_of(epochs + 1),
                           str(tmp_path / 'longer' / 'members' / 'run'))
  found = prediction_benchmark.find_runs(
      [tmp_path / 'longer'], lambda name: config_of(epochs), ['constant'],
      [0])
  part = found['constant'][0]
  alone = prediction.load_run(tmp_path / 'shorter')
  assert part.steps == alone.steps and part.path.endswith(
      f'(its first {alone.steps} steps)')
  assert (part.rates == alone.rates).all()
  assert (part.losses == alone.losses).all()


def _scored(pick, best, regret_p=None, pairs=4, accuracy=1.0, median=0.5,
            inside=True):
  """A law's row of run_task's result, as `verdict` reads it."""
  test = None if regret_p is None else {
      'mean': 0.02, 'ci95_low': 0.01, 'ci95_high': 0.03, 'p_holm': regret_p,
      'detectable': 0.015}
  return {'pick': pick, 'best': best, 'regret_test': test,
          'separable_pairs': pairs, 'ranking_accuracy': accuracy,
          'error_in_std_median': median,
          'schedules': {'sgdr': {'interval': [1.0, 1.1], 'inside': inside}}}


@pytest.mark.parametrize('mpl,answer,reason', [
    (_scored('wsd', 'linear', regret_p=0.2), 'yes',
     'it picks wsd, not detectably worse than the measured best, linear '
     '(+0.0200 [+0.0100, +0.0300], Holm p=0.200; could detect ±0.0150)'),
    (_scored('wsd', 'linear', regret_p=0.01), 'no',
     'it picks wsd, worse than the measured best, linear (+0.0200 '
     '[+0.0100, +0.0300], Holm p=0.010)'),
    (_scored('linear', 'linear', pairs=5, accuracy=0.6), 'no',
     'it orders 3 of the 5 separable pairs right (below 80%)'),
    (_scored('linear', 'linear', pairs=0, accuracy=None), 'yes',
     'no two schedules of the fit length are separable by their seeds: '
     'nothing to rank'),
    (_scored('linear', 'linear', inside=False), 'yes',
     'measured means outside its interval: sgdr'),
])
def test_the_verdicts_rule_is_the_one_fixed_before_the_numbers(mpl, answer,
                                                              reason):
  """A user can pick by the law where its pick is the best or not
  detectably worse and it orders 80% of the separable pairs right; a miss
  of its interval is said, and does not decide."""
  blind = _scored('wsd', 'linear', regret_p=0.001, accuracy=0.0, median=9.0)
  found = prediction_benchmark.verdict(
      {'laws': {'multi_power': mpl, 'step_power': blind}})
  assert found['answer'] == answer
  assert reason in found['reasons']
