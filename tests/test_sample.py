"""Text from a language-model run (models.generate, tools/sample.py): each
byte is the model's next byte given the last context_length bytes, the same
settings give the same text, the run's workdir is read and never changed,
and bad input is one line."""

import json
import pathlib
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from conftest import PROJECT_DIR
from conftest import small_lm_config
from configs import default
from machinery import checkpoints
from machinery import errors
import models
import train

SAMPLE = str(PROJECT_DIR / 'tools' / 'sample.py')


@pytest.fixture(scope='module')
def model_and_params():
  model = models.Transformer(context_length=8, num_layers=1, width=16,
                             num_heads=2)
  params = model.init(jax.random.PRNGKey(1),
                      np.zeros((1, 8), np.int32))['params']
  return model, params


def next_bytes_by_hand(model, params, prompt, count):
  """The greedy continuation, one exact window (no padding) at a time."""
  tokens = list(prompt)
  for _ in range(count):
    window = np.asarray(tokens[-model.context_length:], np.int32)[None]
    logits = model.apply({'params': params}, window)[0, -1]
    tokens.append(int(np.argmax(logits)))
  return tokens


def test_each_byte_follows_the_last_context_bytes(model_and_params):
  model, params = model_and_params
  prompt = [72, 101, 108, 108, 111]  # shorter than the context, then past it
  got = models.generate(model, params, prompt, 12, jax.random.PRNGKey(0),
                        temperature=0)
  assert np.asarray(got).tolist() == next_bytes_by_hand(model, params,
                                                        prompt, 12)
  long_prompt = list(range(60, 80))  # longer than the context
  got = models.generate(model, params, long_prompt, 3, jax.random.PRNGKey(0),
                        temperature=0)
  assert np.asarray(got).tolist() == next_bytes_by_hand(model, params,
                                                        long_prompt, 3)


def test_draws_are_seeded_and_top_1_is_the_likeliest(model_and_params):
  model, params = model_and_params
  draw = lambda seed, **kw: np.asarray(models.generate(
      model, params, [65], 40, jax.random.PRNGKey(seed), **kw)).tolist()
  assert draw(0) == draw(0)
  assert draw(0) != draw(1)
  assert draw(3, top_k=1) == draw(4, temperature=0)
  assert len(draw(0)) == 41 and draw(0)[0] == 65
  with pytest.raises(ValueError, match='at least one token'):
    models.generate(model, params, [], 5, jax.random.PRNGKey(0))


@pytest.fixture(scope='module')
def lm_run(text_dir, tmp_path_factory):
  workdir = tmp_path_factory.mktemp('sample') / 'lm'
  train.train_and_evaluate(small_lm_config(text_dir, num_epochs=2),
                           str(workdir))
  return workdir


def listing(folder):
  return sorted((str(p.relative_to(folder)), p.stat().st_size,
                 p.stat().st_mtime_ns) for p in folder.rglob('*'))


def sample_cli(*args):
  return subprocess.run([sys.executable, SAMPLE, *args], capture_output=True,
                        text=True, timeout=300, cwd=PROJECT_DIR)


def test_the_tool_samples_a_run_and_changes_nothing_there(lm_run):
  before = listing(lm_run)
  result = sample_cli(f'--workdir={lm_run}', '--prompt=The ',
                      '--num_bytes=50', '--seed=3')
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.startswith('The ')
  assert f'{lm_run}, step 16: 50 bytes at temperature 0.8, seed 3' in (
      result.stderr)
  again = sample_cli(f'--workdir={lm_run}', '--prompt=The ',
                     '--num_bytes=50', '--seed=3')
  assert again.stdout == result.stdout
  earlier = sample_cli(f'--workdir={lm_run}', '--prompt=The ',
                       '--num_bytes=50', '--seed=3', '--step=8')
  assert earlier.returncode == 0 and 'step 8:' in earlier.stderr
  assert listing(lm_run) == before


def test_a_damaged_newest_checkpoint_is_passed_over_not_moved(lm_run,
                                                             tmp_path):
  run = tmp_path / 'run'
  shutil.copytree(lm_run, run)
  newest = run / checkpoints.CHECKPOINT_DIR / '16'
  for path in newest.rglob('*'):
    if path.is_file() and path.stat().st_size > 1000:
      path.write_bytes(b'\0' * path.stat().st_size)
  before = listing(run)
  config = small_lm_config(run)
  template = train.create_train_state(jax.random.PRNGKey(0), config,
                                      lambda count: 0.0)
  _, step = checkpoints.read_state(run, template)
  assert step == 8
  assert listing(run) == before
  with pytest.raises(errors.ResumeError, match='no intact checkpoint of '
                     'step 16'):
    checkpoints.read_state(run, template, step=16)


def image_run(folder: pathlib.Path) -> pathlib.Path:
  folder.mkdir()
  (folder / 'config.json').write_text(json.dumps(
      default.get_config().to_dict()))
  return folder


@pytest.mark.parametrize('args, message', [
    (['--num_bytes=0'], '--num_bytes=0 is invalid: must be 1 to 100,000.'),
    (['--temperature=-1'], '--temperature=-1.0 is invalid'),
    (['--top_k=300'], '--top_k=300 is invalid: must be 0'),
    (['--prompt='], '--prompt is empty'),
    (['--step=7'], 'has no checkpoint of step 7; it has 8, 16.'),
])
def test_bad_settings_are_one_line(lm_run, args, message):
  result = sample_cli(f'--workdir={lm_run}', *args)
  assert result.returncode != 0
  assert 'Traceback' not in result.stderr
  assert message in result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize('make, message', [
    (lambda p: p / 'missing', 'is not a folder'),
    (lambda p: p, 'holds no config.json'),
    (image_run, 'tools/sample.py handles task=language_model only'),
])
def test_a_workdir_that_is_no_lm_run_is_one_line(tmp_path, make, message):
  workdir = make(tmp_path / 'w') if make is image_run else make(tmp_path)
  result = sample_cli(f'--workdir={workdir}')
  assert result.returncode != 0
  assert 'Traceback' not in result.stderr
  assert message in result.stderr.strip().splitlines()[-1]


def test_a_run_without_checkpoints_is_one_line(lm_run, tmp_path):
  records = tmp_path / 'records'
  records.mkdir()
  shutil.copy(lm_run / 'config.json', records)
  result = sample_cli(f'--workdir={records}')
  assert result.returncode != 0
  assert 'holds no checkpoints/ folder' in result.stderr.splitlines()[-1]
  (records / checkpoints.CHECKPOINT_DIR).mkdir()  # a run before its first
  result = sample_cli(f'--workdir={records}')
  assert result.returncode != 0
  assert 'holds no checkpoint yet' in result.stderr.splitlines()[-1]
