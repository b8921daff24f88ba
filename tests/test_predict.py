"""tools/predict.py and prediction.py: a law fitted on a few runs' records
predicts another schedule, with an interval from the seeds; bad input is
one line.

The runs here are records written from a known Multi-Power Law (with
noise) through the very schedules training builds: the tool must find the
truth it was given. tests/test_laws.py checks the laws themselves."""

import dataclasses
import json
import subprocess
import sys

import jax
import numpy as np
import pytest

from configs import lm
from conftest import PROJECT_DIR
from machinery import run_logs
import laws
import prediction
import schedules

# One worker runs this module, so that a law fitted on the fit set (its module
# fixture) is built once, not once per worker (pytest.ini: loadgroup).
pytestmark = pytest.mark.xdist_group('test_predict')

STEPS_PER_EPOCH = 50
EPOCHS = 4
TRUTH = {'L0': 1.2, 'A': 2.0, 'alpha': 0.45, 'B': 0.4, 'C': 0.05,
         'beta': 0.55, 'gamma': 0.6}
FIT_SET = {'constant': {'schedule': 'constant'},
           'cosine': {'schedule': 'warmup_cosine'},
           'step': {'schedule': 'step', 'step_epochs': (2.4,),
                    'step_decay': 0.1}}
WSD = {'schedule': 'wsd', 'decay_fraction': 0.2, 'decay_shape': '1-sqrt'}


def config_of(**fields):
  config = lm.get_config()
  config.steps_per_epoch = STEPS_PER_EPOCH
  config.num_epochs = EPOCHS
  config.update(fields)
  return config


def rates_of(config):
  """The rate at every step as train.py records it: float32, from a jitted
  schedule (whose last bits differ from the same schedule run eagerly)."""
  fn = schedules.create_learning_rate_fn(config, config.learning_rate,
                                         config.steps_per_epoch)
  steps = np.arange(config.num_epochs * config.steps_per_epoch)
  return np.asarray(jax.jit(fn)(steps), np.float32).astype(np.float64)


def true_final(config):
  """The truth's loss after the last update."""
  rates = rates_of(config) / config.learning_rate
  return float(laws.predict('multi_power', TRUTH, rates, [len(rates)])[0])


def write_run(folder, noise=0.005, finished=True, config=None,
              noise_seed=None, **fields):
  """A finished run's records as train.py writes them: at step s the loss
  after s updates (the truth's), with multiplicative noise."""
  config = config or config_of(**fields)
  rates = rates_of(config)
  losses = np.empty(len(rates))
  losses[0] = 5.5
  losses[1:] = laws.predict('multi_power', TRUTH,
                            rates[:-1] / config.learning_rate)
  rng = np.random.default_rng(1000 + config.seed if noise_seed is None
                              else noise_seed)
  losses *= np.exp(noise * rng.standard_normal(len(losses)))
  folder.mkdir(parents=True)
  recorded = json.loads(config.to_json_best_effort())
  recorded['run_environment'] = {'data_fingerprint': 'synthetic'}
  (folder / 'config.json').write_text(json.dumps(recorded))
  with open(folder / run_logs.STEP_LOG, 'w') as f:
    f.write(','.join(run_logs.STEP_FIELDS) + '\n')
    for step, (rate, loss) in enumerate(zip(rates, losses)):
      epoch = step // config.steps_per_epoch + 1
      f.write(f'{step},{epoch},{float(rate)!r},{float(loss)!r},0.5\n')
  epochs = config.num_epochs if finished else config.num_epochs - 1
  with open(folder / run_logs.EPOCH_LOG, 'w') as f:
    f.write(','.join(run_logs.EPOCH_FIELDS) + '\n')
    for epoch in range(1, epochs + 1):
      step = epoch * config.steps_per_epoch
      f.write(f'{epoch},{step},0,0,2,0.5,2,0.5,1,1,1\n')
  return folder


@pytest.fixture(scope='module')
def fit_runs(tmp_path_factory):
  """The fit set (constant, cosine, a drop) for seeds 0 and 1."""
  root = tmp_path_factory.mktemp('fit')
  return [str(write_run(root / f'{name}_{seed}', seed=seed, **fields))
          for name, fields in FIT_SET.items() for seed in (0, 1)]


@pytest.fixture(scope='module')
def law_fit(fit_runs):
  """MPL fitted on the fit set (pooled, and per seed), once."""
  return prediction.fit_runs('multi_power', [prediction.load_run(p)
                                             for p in fit_runs])


def run_tool(*args):
  return subprocess.run([sys.executable, str(PROJECT_DIR / 'tools' /
                                             'predict.py'), *args],
                        capture_output=True, text=True, timeout=600)


def test_a_fit_on_three_schedules_predicts_wsd_with_an_interval(
    fit_runs, tmp_path):
  """Fitted on constant, cosine and a step drop of 2 seeds, the tool
  predicts WSD 1-sqrt 20%'s final loss within 1% of the truth, inside its
  interval, and writes the curve per step and the one line."""
  measured = write_run(tmp_path / 'wsd_measured', seed=7, **WSD)
  output, png = tmp_path / 'wsd.json', tmp_path / 'wsd.png'
  result = run_tool(f'--fit={",".join(fit_runs)}',
                    f'--config={PROJECT_DIR / "configs" / "lm.py"}',
                    f'--config.steps_per_epoch={STEPS_PER_EPOCH}',
                    f'--config.num_epochs={EPOCHS}', '--config.schedule=wsd',
                    '--config.decay_fraction=0.2',
                    '--config.decay_shape=1-sqrt', f'--measured={measured}',
                    f'--output={output}', f'--plot={png}')
  assert result.returncode == 0, result.stderr[-3000:]
  got = json.loads(output.read_text())
  truth = true_final(config_of(**WSD))
  assert got['final_loss'] == pytest.approx(truth, rel=0.01)
  low, high = got['interval']
  assert low < got['final_loss'] < high
  assert len(got['per_seed_final_loss']) == 2
  assert len(got['curve']) == EPOCHS * STEPS_PER_EPOCH
  assert got['curve'][-1] == pytest.approx(got['final_loss'], abs=1e-6)
  assert got['law'] == 'multi_power' and got['fit_seeds'] == [0, 1]
  assert got['measured']['predicted_last_bin'] == pytest.approx(
      got['measured']['final_loss_last_bin'][0], rel=0.01)
  assert png.read_bytes().startswith(b'\x89PNG')
  line, = result.stdout.strip().splitlines()
  assert line.startswith(f'multi_power predicts a final training loss of '
                         f'{got["final_loss"]:.4f} [')
  assert got['cautions'] == [] and 'caution' not in line  # the fit's length


def test_the_pairing_of_losses_and_rates_is_the_records_own(fit_runs,
                                                            law_fit):
  """The loss at step s follows s updates: the fit's curve pairs losses[1:]
  with rates[:-1]. Shifted by one step, the curve would not be the truth's
  at a drop (the step schedule's, where one step matters most)."""
  run = prediction.load_run(fit_runs[4])  # step, seed 0
  curve = run.curve()
  assert len(curve.rates) == run.steps - 1
  np.testing.assert_allclose(curve.rates * run.rates.max(), run.rates[:-1],
                             rtol=1e-12)
  # Its first bin starts at the first step at the peak, W = 20: the loss
  # recorded at step W + 1, after the update at the peak.
  first, last = curve.steps[0][0], curve.steps[0][-1]
  assert first == 21
  assert curve.losses[0] == pytest.approx(run.losses[first:last + 1].mean(),
                                          rel=1e-12)
  for name, value in TRUTH.items():
    if name in ('L0', 'A', 'alpha'):
      assert law_fit.pooled.params[name] == pytest.approx(value, rel=0.1)


def test_optimize_writes_a_trainable_schedule_no_worse_than_cosine(
    fit_runs, law_fit, tmp_path):
  """--optimize: knots from the peak, never rising, the config trainable
  through configs/recorded.py; its predicted final loss is at most the
  cosine's (one of its starting shapes is close to it)."""
  config = config_of(schedule='warmup_cosine')
  runs = [prediction.load_run(p) for p in fit_runs]
  knots, found = prediction.optimize(law_fit, config, runs)
  assert knots[0] == 1.0 and all(b <= a for a, b in zip(knots, knots[1:]))
  assert len(knots) == prediction.OPTIMIZE_SEGMENTS + 1
  found_rates = prediction.schedule_rates(found, runs)
  cosine_rates = prediction.schedule_rates(config, runs)
  assert found_rates[:20].tolist() == cosine_rates[:20].tolist()  # warmup
  cosine = law_fit.final(cosine_rates)
  assert law_fit.final(found_rates)['final_loss'] <= cosine['final_loss']
  # From one-cycle (its rise is no linear warmup), the config found warms
  # up linearly from one-cycle's first rate, as it was optimised to.
  onecycle = config_of(schedule='onecycle', warmup_epochs=1.2)
  _, rising = prediction.optimize(law_fit, onecycle, runs)
  assert rising.warmup_init_lr == pytest.approx(onecycle.learning_rate / 25)
  assert prediction.schedule_rates(rising, runs)[0] == pytest.approx(
      onecycle.learning_rate / 25, rel=1e-5)
  path = tmp_path / 'found.json'
  path.write_text(found.to_json_best_effort())
  from configs import recorded  # pylint: disable=g-import-not-at-top
  again = recorded.get_config(str(path))
  assert again.schedule == 'piecewise_linear' and again.knots == knots


def test_a_schedule_longer_than_every_fitted_run_comes_with_a_caution(
    law_fit, fit_runs, tmp_path):
  """docs/laws.md's benchmark: every law missed runs 2x and 3x their
  fitted length by far, too low on the LM and too high on Fashion-MNIST.
  The tool says so where it is asked for one, and why where the fit puts
  the floor at zero; not at the fitted length."""
  runs = [prediction.load_run(p) for p in fit_runs]
  cosine = lambda epochs: prediction.schedule_rates(
      config_of(schedule='warmup_cosine', num_epochs=epochs), runs)
  assert not prediction.cautions(law_fit, runs, cosine(EPOCHS))
  [caution] = prediction.cautions(law_fit, runs, cosine(2 * EPOCHS))
  assert caution == ('the schedule is 2.0x the longest fitted run, and on '
                     'docs/laws.md\'s benchmark every law missed runs 2x '
                     'and 3x their fitted length by far (too low on the '
                     'language model, too high on Fashion-MNIST)')
  at_zero = dataclasses.replace(law_fit, pooled=dataclasses.replace(
      law_fit.pooled, params={**law_fit.pooled.params, 'L0': 3e-11}))
  [why] = prediction.cautions(at_zero, runs, cosine(2 * EPOCHS))
  assert why == caution + ('; its floor L0 fits at 3e-11: these runs do not '
                           'show where the loss levels off')
  output = tmp_path / 'long.json'
  result = run_tool(f'--fit={",".join(fit_runs)}',
                    f'--config={PROJECT_DIR / "configs" / "lm.py"}',
                    f'--config.steps_per_epoch={STEPS_PER_EPOCH}',
                    f'--config.num_epochs={2 * EPOCHS}',
                    '--config.schedule=warmup_cosine', f'--output={output}')
  assert result.returncode == 0, result.stderr[-3000:]
  assert json.loads(output.read_text())['cautions'] == [caution]
  assert f' (caution: {caution}). Wrote {output}.' in result.stdout


def test_one_seed_gives_a_prediction_without_an_interval(fit_runs):
  runs = [prediction.load_run(p) for p in fit_runs[::2]]  # seed 0 only
  law_fit = prediction.fit_runs('s1_power', runs)
  out = law_fit.final(prediction.schedule_rates(config_of(**WSD), runs))
  assert out['interval'] is None and 'one seed' in out['interval_note']


def test_a_failed_refit_gives_no_interval_rather_than_a_nan_one(fit_runs):
  runs = [prediction.load_run(p) for p in fit_runs]
  law_fit = prediction.fit_runs('s1_power', runs)
  broken = laws.Fit('s1_power', {**law_fit.pooled.params, 'L0': np.nan},
                    1.0)
  law_fit = prediction.LawFit(law_fit.pooled, {**law_fit.per_seed, 1: broken},
                              law_fit.peak)
  out = law_fit.final(prediction.schedule_rates(config_of(**WSD), runs))
  assert np.isfinite(out['final_loss']) and out['interval'] is None
  assert 'the refit on 1 of 2 seeds' in out['interval_note']


@pytest.mark.parametrize('fields,message', [
    ({'learning_rate': 1e-3}, '--fit runs differ in learning_rate: '),
    ({'batch_size': 64}, '--fit runs differ in batch_size: '),
    ({'task': 'image_classification', 'dataset': 'mnist'},
     '--fit runs differ in task: '),
])
def test_runs_of_another_peak_batch_or_task_are_refused(
    fit_runs, tmp_path, fields, message):
  other = write_run(tmp_path / 'other', seed=0, **fields)
  runs = [prediction.load_run(p) for p in (fit_runs[0], other)]
  with pytest.raises(prediction.errors.ConfigError, match=message):
    prediction.check_fit_set(runs)


def test_bad_input_is_one_line(fit_runs, tmp_path):
  config = f'--config={PROJECT_DIR / "configs" / "lm.py"}'
  fields = [f'--config.steps_per_epoch={STEPS_PER_EPOCH}',
            f'--config.num_epochs={EPOCHS}']
  output = f'--output={tmp_path / "out.json"}'
  unfinished = write_run(tmp_path / 'unfinished', finished=False)
  cases = [
      ([f'--fit={unfinished}', config, *fields, output],
       'is not finished (3 of 4 epochs)'),
      ([f'--fit={fit_runs[0]}', config, *fields[:1],
        '--config.num_epochs=20', output],
       'config.num_epochs=20 is invalid here: 1000 steps; the law supports '
       f'{laws.MIN_STEPS + 1} to 800 steps'),
      ([f'--fit={fit_runs[0]}', config, f'--output={tmp_path / "out.txt"}'],
       'must end in .json'),
  ]
  for args, message in cases:
    result = run_tool(*args)
    assert result.returncode == 1, (args, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], (message, lines)
  assert not (tmp_path / 'out.json').exists()


@pytest.mark.parametrize('fields,message', [
    ({'num_epochs': 1, 'steps_per_epoch': 10},
     f'has 10 steps; a law needs at least {laws.MIN_STEPS + 1}'),
    ({'optimizer': 'schedule_free_adamw', 'schedule': 'constant'},
     "trained with optimizer='schedule_free_adamw', whose averaging is not"),
])
def test_a_run_a_law_cannot_read_is_refused(tmp_path, fields, message):
  run = write_run(tmp_path / 'run', **fields)
  with pytest.raises(prediction.errors.WorkdirError, match=message):
    prediction.load_run(run)
  with pytest.raises(prediction.errors.WorkdirError, match='is not a folder'):
    prediction.load_run(tmp_path / 'nowhere')


@pytest.mark.parametrize('fields,message', [
    ({'batch_size': 64}, 'config.batch_size=64 is invalid here: the --fit '
     'runs have 32'),
    ({'optimizer': 'schedule_free_adamw', 'schedule': 'constant'},
     "config.optimizer='schedule_free_adamw' is invalid here"),
    ({'learning_rate': 1e-3}, 'config.learning_rate=0.001 is invalid here'),
])
def test_a_schedule_the_law_was_not_fitted_for_is_refused(fit_runs, fields,
                                                          message):
  runs = [prediction.load_run(fit_runs[0])]
  with pytest.raises(prediction.errors.ConfigError, match=message):
    prediction.schedule_rates(config_of(**fields), runs)


def test_a_published_run_with_compressed_records_is_read(tmp_path):
  """docs/lm_run holds train_steps.csv.gz: the default LM run, committed."""
  run = prediction.load_run(PROJECT_DIR / 'docs' / 'lm_run')
  assert run.steps == 1000 and run.steps_per_epoch == 250
  assert run.rates.max() == pytest.approx(lm.get_config().learning_rate,
                                          rel=1e-6)


def test_the_example_in_docs_laws_is_what_the_tool_says(tmp_path):
  """docs/laws.md's example line: MPL fitted on the committed default LM
  run, predicting configs/lm_wsd.py."""
  from configs import lm_wsd  # pylint: disable=g-import-not-at-top
  runs = [prediction.load_run(PROJECT_DIR / 'docs' / 'lm_run')]
  law_fit = prediction.fit_runs('multi_power', runs)
  final = law_fit.final(prediction.schedule_rates(lm_wsd.get_config(), runs))
  page = (PROJECT_DIR / 'docs' / 'laws.md').read_text()
  assert (f'multi_power predicts a final training loss of '
          f'{final["final_loss"]:.4f} (no interval: one seed) for wsd (1000 '
          'steps), fitted on 1 run of 1 seed.') in page
