"""tools/laws_benchmark.py and prediction_benchmark.py: the benchmark's
measures on runs written from a known Multi-Power Law (test_predict's
synthetic records), where the truth is known: MPL must predict within a
few seed sigmas, cover the measured means and rank the separable pairs."""

import json

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
  # The schedule-blind baseline cannot tell schedules of one length apart.
  assert blind['error_in_std_median'] > mpl['error_in_std_median']
  text = prediction_benchmark.write(results, tmp_path / 'out')
  assert '| `multi_power` |' in text and '| `step_power` |' in text
  assert json.loads((tmp_path / 'out' / 'results.json').read_text())[
      'language_model']['fit'] == ['constant', 'cosine_to_zero',
                                   'two_stage_drop']
  png = tmp_path / 'out' / 'language_model_predicted.png'
  assert png.read_bytes()[:4] == b'\x89PNG'
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
