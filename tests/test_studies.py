"""Studies: the grid, and members trained one by one or stacked with vmap
(studies.py)."""

import jax
import numpy as np
import pytest

from conftest import small_config
from machinery import errors
from machinery import run_logs
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


def test_stacked_members_follow_their_single_runs(idx_dir, tmp_path):
  """vmap over members = each member's own run, to float rounding."""
  points = studies.grid([('schedule', ['constant', 'wsd']),
                         ('warmup_epochs', [0.5])])
  group = studies.members(stacked_config(idx_dir, decay_epochs=1.0), points,
                          2, tmp_path / 'study')
  studies.train_stacked(group)
  for member in group:
    single = tmp_path / 'single' / member.name
    train.train_and_evaluate(member.config, str(single))
    got = run_logs.read_steps(member.workdir)
    want = run_logs.read_steps(single)
    np.testing.assert_array_equal(got['step'], want['step'])
    np.testing.assert_allclose(got['learning_rate'], want['learning_rate'],
                               rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(got['loss'], want['loss'], rtol=2e-3,
                               atol=1e-5)
    got_epochs = run_logs.read_epochs(member.workdir)
    want_epochs = run_logs.read_epochs(single)
    np.testing.assert_allclose(got_epochs['test_accuracy'],
                               want_epochs['test_accuracy'], atol=0.011)


def test_a_stacked_nesterov_member_follows_its_single_run(idx_dir, tmp_path):
  points = studies.grid([('nesterov', [True])])
  group = studies.members(stacked_config(idx_dir, num_epochs=1), points, 1,
                          tmp_path / 'study')
  studies.train_stacked(group)
  single = tmp_path / 'single'
  train.train_and_evaluate(group[0].config, str(single))
  np.testing.assert_allclose(run_logs.read_steps(group[0].workdir)['loss'],
                             run_logs.read_steps(single)['loss'], rtol=2e-3,
                             atol=1e-5)


def test_an_interrupted_stacked_group_resumes_exactly(idx_dir, tmp_path,
                                                      monkeypatch):
  points = studies.grid([('schedule', ['constant', 'warmup_cosine'])])
  config = stacked_config(idx_dir, num_epochs=3)
  clean = studies.members(config, points, 1, tmp_path / 'clean')
  studies.train_stacked(clean)
  real_write = run_logs.MetricsWriter.write_epoch
  written = []

  def crash_after_epoch_2(self, summary):
    real_write(self, summary)
    written.append(summary['epoch'])
    if written.count(2) == len(points):  # every member wrote epoch 2
      raise SystemExit('simulated crash')

  monkeypatch.setattr(run_logs.MetricsWriter, 'write_epoch',
                      crash_after_epoch_2)
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
