"""The language-model task end to end (tasks.py, configs/lm.py): the rate
logged is the one applied, the loss falls, resume is bit-exact, and bad
text or fields are refused in one line. The text is the tests' own
(conftest.write_text_corpus); the pipeline's own tests are in
test_text_pipeline.py."""

import json
import math
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

from conftest import PROJECT_DIR
from conftest import small_lm_config
from conftest import write_text_corpus  # noqa
from machinery import errors
from machinery import run_logs
import optimizers
from runs import assert_same_params
from runs import final_params
from runs import step_log
from runs import wait_for_checkpoint
import tasks
import text_pipeline
import train


@pytest.fixture(scope='module')
def lm_data(text_dir):
  return text_pipeline.load_datasets(small_lm_config(text_dir))


def first_batch(data, size=16):
  return {'tokens': data.train['tokens'][:size]}


@pytest.mark.parametrize('optimizer', ['adamw', 'sgd'])
def test_the_logged_rate_is_the_one_applied(text_dir, lm_data, optimizer):
  """Each step's update equals the optimizer's update at the logged rate
  (its schedule replaced by that constant), through the warmup."""
  config = small_lm_config(text_dir, optimizer=optimizer, grad_clip_norm=1.0)
  plan = train.schedules.plan(config, len(lm_data.train['tokens']))
  state = train.create_train_state(jax.random.key(0), config,
                                   plan.learning_rate_fn)
  batch = first_batch(lm_data)
  # The step's own gradient: Adam turns the float noise of a gradient
  # that is zero in exact math (attention's key bias) into full steps.
  step_grads = jax.jit(train._grads_and_metrics)  # pylint: disable=protected-access
  for step in range(4):  # warmup: 0, 1/4, 2/4, 3/4 of the peak
    new_state, metrics = train.train_step(state, batch, plan.learning_rate_fn)
    rate = float(metrics['learning_rate'])
    assert rate == pytest.approx(config.learning_rate * step / 4, rel=1e-6)
    fixed = optimizers.create_optimizer(config, lambda count, r=rate: r)
    grads, _, _ = step_grads(state, batch)
    updates, _ = fixed.update(grads, state.opt_state, state.params)
    expected = jax.tree.map(lambda p, u: p + u, state.params, updates)
    for got, want in zip(jax.tree.leaves(new_state.params),
                         jax.tree.leaves(expected)):
      np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    state = new_state


def test_a_run_learns_the_text_and_records_bits_per_byte(text_dir, tmp_path,
                                                         lm_data):
  workdir = tmp_path / 'lm'
  config = small_lm_config(text_dir, num_epochs=4)
  state = train.train_and_evaluate(config, str(workdir))
  assert int(state.step) == 4 * 8
  epochs = run_logs.read_epochs(workdir)
  losses = epochs['test_loss']
  assert losses[-1] < losses[0] < math.log(256)
  unigram_bits, _ = lm_data.ngram_bits
  assert losses[-1] / math.log(2) < unigram_bits  # learned more than counts
  # Per-token evaluation: the loss is a mean over every next byte.
  steps = run_logs.read_steps(workdir)
  assert len(steps['step']) == 32
  plan = train.schedules.plan(config, len(lm_data.train['tokens']))
  np.testing.assert_allclose(
      steps['learning_rate'],
      [float(plan.learning_rate_fn(s)) for s in range(32)], rtol=1e-5,
      atol=1e-9)  # float32 cosine, in and out of jit
  assert (workdir / run_logs.CURVES_PNG).is_file()
  recorded = run_logs.read_config(workdir)
  assert recorded['task'] == 'language_model'
  assert recorded['run_environment']['data_fingerprint'] == lm_data.fingerprint


def test_evaluation_on_a_spread_subset(lm_data):
  test = lm_data.test
  size = len(test['tokens'])
  subset = train.evaluation_split(test, 5)
  expected = [i * size // 5 for i in range(5)]
  np.testing.assert_array_equal(subset['tokens'], test['tokens'][expected])
  assert train.evaluation_split(test, 0) is test
  assert train.evaluation_split(test, size + 1) is test


def test_steps_per_epoch_draws_without_repeats():
  indices = np.asarray(train.epoch_indices(jax.random.key(3), 100, 8, None, 5))
  assert indices.shape == (5, 8)
  assert len(set(indices.ravel().tolist())) == 40


def lm_cli(text_folder, workdir, *extra):
  return [sys.executable, str(PROJECT_DIR / 'main.py'),
          f'--config={PROJECT_DIR / "configs" / "lm.py"}',
          f'--workdir={workdir}', f'--config.text_path={text_folder}',
          '--config.allow_download=false', '--config.context_length=16',
          '--config.num_layers=1', '--config.width=32',
          '--config.num_heads=2', '--config.batch_size=16',
          '--config.eval_batch_size=64', '--config.eval_examples=0',
          '--config.steps_per_epoch=8', '--config.num_epochs=3',
          '--config.warmup_epochs=0.5', '--config.learning_rate=0.01',
          '--config.log_every_steps=4', '--config.cpu_devices=1', *extra]


def test_kill_9_then_resume_is_bit_exact(text_dir, tmp_path):
  reference = tmp_path / 'reference'
  result = subprocess.run(lm_cli(text_dir, reference), capture_output=True,
                          text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  assert 'bits/byte' in result.stderr and 'tok/s' in result.stderr
  assert 'bigram' in result.stderr

  killed = tmp_path / 'killed'
  process = subprocess.Popen(lm_cli(text_dir, killed),
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
  try:
    wait_for_checkpoint(killed, 8, process)
  finally:
    process.send_signal(signal.SIGKILL)
    process.wait()
  resumed = subprocess.run(lm_cli(text_dir, killed), capture_output=True,
                           text=True, timeout=300)
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  assert 'Resuming from the checkpoint at step' in resumed.stderr
  assert step_log(killed) == step_log(reference)
  config = small_lm_config(text_dir)
  assert_same_params(final_params(killed, config),
                     final_params(reference, config))


def one_line_failure(command, tmp_path):
  result = subprocess.run(command, capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
  assert result.returncode != 0
  assert 'Traceback' not in result.stderr, result.stderr[-3000:]
  return result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize('make, extra, message', [
    (lambda p: (p / 'empty.txt').write_bytes(b'') and None or p / 'empty.txt',
     (), 'holds no text'),
    (lambda p: (p / 'none').mkdir() or p / 'none', (), 'no .txt file'),
    (lambda p: (p / 'short.txt').write_text('Too short.') and None
     or p / 'short.txt', (), 'fewer than one window'),
    (lambda p: write_text_corpus(p / 'c', documents=6, size=2500),
     ('--config.context_length=9000',), 'context_length'),
    (lambda p: write_text_corpus(p / 'c', documents=6, size=2500),
     ('--config.width=30', '--config.num_heads=4'), 'multiple of num_heads'),
    (lambda p: write_text_corpus(p / 'c', documents=6, size=2500),
     ('--config.steps_per_epoch=100000',), 'steps_per_epoch'),
    (lambda p: write_text_corpus(p / 'c', documents=6, size=2500),
     ('--config.dataset=mnist',), "must be one of ('sotu',)"),
])
def test_bad_text_or_fields_are_one_line_and_leave_nothing(tmp_path, make,
                                                           extra, message):
  text = make(tmp_path)
  workdir = tmp_path / 'run'
  line = one_line_failure(lm_cli(text, workdir, *extra), tmp_path)
  assert message in line
  assert not workdir.exists()


def test_a_validation_split_without_a_whole_window_is_refused(tmp_path):
  """Six documents, the held-out one shorter than a window."""
  folder = write_text_corpus(tmp_path / 'text', documents=6, size=2500)
  (folder / 'address_05.txt').write_text('Brief.\n')
  line = one_line_failure(lm_cli(folder, tmp_path / 'run'), tmp_path)
  assert 'validation split' in line and 'fewer than one window' in line
  assert not (tmp_path / 'run').exists()


def test_text_path_is_for_the_language_model_only(idx_dir, tmp_path, text_dir):
  command = [sys.executable, str(PROJECT_DIR / 'main.py'),
             f'--config={PROJECT_DIR / "configs" / "default.py"}',
             f'--workdir={tmp_path / "run"}', f'--config.text_path={text_dir}']
  line = one_line_failure(command, tmp_path)
  assert 'config.text_path' in line and 'language_model' in line


@pytest.mark.parametrize('optimizer, points', [
    ('sgd', [{'schedule': 'constant', 'learning_rate': 0.05},
             {'schedule': 'warmup_cosine', 'learning_rate': 0.1}]),
    ('adamw', [{'schedule': 'constant', 'b2': 0.95},
               {'schedule': 'warmup_cosine', 'b2': 0.999}]),
])
def test_a_stacked_lm_member_follows_its_single_run(text_dir, tmp_path,
                                                    optimizer, points):
  """The stacked program (vmap over members) trains the transformer with
  SGD or clipped AdamW (each member's rate injected at every step, its own
  b2 set once), each member its own run."""
  import studies  # pylint: disable=g-import-not-at-top
  from test_studies import assert_follows_single_run  # pylint: disable=g-import-not-at-top
  group = studies.members(small_lm_config(
      text_dir, optimizer=optimizer, num_epochs=2), points, 1,
                          tmp_path / 'study')
  assert group[0].config.grad_clip_norm == 1.0  # configs/lm.py clips
  studies.train_stacked(group)
  for member in group:
    single = tmp_path / 'single' / member.name
    train.train_and_evaluate(member.config, str(single))
    # The stacked rates come from a table of the whole run: float32
    # cosine, in and out of jit, differs in the 6th digit at the end.
    assert_follows_single_run(member, single, rate_rtol=1e-5)


def test_a_schedule_free_member_is_refused_by_the_stacked_program(
    text_dir, tmp_path):
  import studies  # pylint: disable=g-import-not-at-top
  group = studies.members(small_lm_config(text_dir),
                          [{'optimizer': 'schedule_free_adamw',
                            'schedule': 'constant'}], 1, tmp_path)
  with pytest.raises(errors.ConfigError, match='cannot train stacked'):
    studies.train_stacked(group)


def test_an_lm_study_ranks_by_validation_loss_lower_is_better(text_dir,
                                                              tmp_path):
  """study.md ranks by the primary metric in its direction, and calls the
  point with the lower loss better."""
  import studies  # pylint: disable=g-import-not-at-top
  rows = [{'member': f'{s}{seed}', 'seed': seed, 'schedule': s,
           'finished': 1, 'diverged': 0, 'data_fingerprint': 'f',
           'final_test_loss': loss + 0.01 * seed, 'final_test_accuracy': 0.5}
          for s, loss in (('constant', 1.40), ('warmup_cosine', 1.30))
          for seed in range(5)]
  rows[0]['final_test_loss'] = 1.41
  points = [{'schedule': 'constant'}, {'schedule': 'warmup_cosine'}]
  metric = tasks.TASKS['language_model'].primary
  summary = studies.summarize(rows, points, {'schedule': 'constant'}, 5,
                              metric)
  versus = summary['points']['schedule=warmup_cosine']['vs_baseline']
  assert versus['verdict'] == 'better' and versus['mean'] < 0
  text = studies.markdown(summary, rows, 0.99, metric)
  table = [line for line in text.splitlines() if line.startswith('| 1 ')]
  assert 'warmup_cosine' in table[0]
  assert f'{1.30 / math.log(2) + 0.02 / math.log(2):.3f}' in table[0]
  assert 'bits per byte' in text and 'lower is better' in text
  # A run above 4 bits per byte stayed at chance: counted, not averaged.
  rows[1]['final_test_loss'] = 5.0 * math.log(2)
  summary = studies.summarize(rows, points, {'schedule': 'constant'}, 5,
                              metric)
  assert summary['points']['schedule=constant']['trained'] == 4
  assert '1 at chance: 5.000 bits per byte' in studies.markdown(
      summary, rows, 0.99, metric)


def test_a_study_of_two_tasks_is_refused(text_dir, idx_dir, tmp_path):
  import studies  # pylint: disable=g-import-not-at-top
  config = small_lm_config(text_dir)
  points = [{'task': 'language_model'}, {'task': 'image_classification',
                                         'dataset': 'mnist', 'text_path': ''}]
  with pytest.raises(errors.ConfigError, match='mixes tasks'):
    studies.members(config, points, 1, tmp_path)


def test_an_lm_budget_branch_is_its_standalone_run(text_dir, tmp_path):
  """tools/budgets.py on the language model: budget 2's branch (its
  cooldown starting mid-epoch, from the trunk) is byte for byte the run of
  its own config, and the report reads in bits per byte."""
  import budgets as budgets_lib  # pylint: disable=g-import-not-at-top
  from runs import run_tool  # pylint: disable=g-import-not-at-top
  workdir = tmp_path / 'budgets'
  args = [arg for arg in lm_cli(text_dir, workdir)[3:]
          if not arg.startswith('--config.num_epochs')]
  result = run_tool('tools/budgets.py', *args, '--budgets=1,2', '--seeds=1',
                    '--decay_fraction=0.3', '--config.schedule=wsd',
                    '--config.decay_shape=1-sqrt', config='lm.py')
  assert result.returncode == 0, result.stderr[-2000:]
  report = json.loads((workdir / 'budgets.json').read_text())
  assert report['spec']['task'] == 'language_model'
  assert report['budgets']['2']['final_test_loss']['n'] == 1
  assert 'bits per byte' in (workdir / 'budgets.md').read_text()
  config = small_lm_config(text_dir, schedule='wsd', decay_shape='1-sqrt')
  branch_config = budgets_lib.budget_config(config, 2, 0.3, 0)
  assert budgets_lib.cooldown_start(branch_config, 8) % 8  # mid-epoch
  single = tmp_path / 'single'
  train.train_and_evaluate(branch_config, str(single))
  branch = budgets_lib.branch_dir(workdir, 0, 2)
  assert step_log(branch) == step_log(single)
  assert_same_params(final_params(branch, branch_config),
                     final_params(single, branch_config))
