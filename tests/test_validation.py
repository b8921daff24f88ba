"""Bad input: one clear line naming the field, before any work is done."""

import pytest

from configs import default
from conftest import small_config
from conftest import TRAIN_SIZE
import input_pipeline
import schedules
from machinery import validation
from machinery.errors import ConfigError
import train

# (field, bad value, text the error must contain)
BAD_FIELDS = [
    ('num_epochs', 0, 'config.num_epochs=0 is invalid: must be an integer >= 1'),
    ('num_epochs', -3, 'config.num_epochs=-3'),
    ('warmup_epochs', -1.0, 'config.warmup_epochs=-1.0 is invalid: must lie in '
     '[0, num_epochs=10]'),
    ('warmup_epochs', 10.5, 'config.warmup_epochs=10.5'),
    ('warmup_epochs', float('nan'), 'config.warmup_epochs=nan'),
    ('learning_rate', 0.0, 'config.learning_rate=0.0 is invalid: must be a '
     'number > 0'),
    ('learning_rate', -0.1, 'config.learning_rate=-0.1'),
    ('learning_rate', float('inf'), 'config.learning_rate=inf'),
    ('momentum', 1.0, 'config.momentum=1.0 is invalid: must lie in [0, 1)'),
    ('momentum', -0.5, 'config.momentum=-0.5'),
    ('nesterov', 1, 'config.nesterov=1 is invalid: must be true or false'),
    ('batch_size', 0, 'config.batch_size=0 is invalid: must be an integer >= 1'),
    ('eval_batch_size', 0, 'config.eval_batch_size=0'),
    ('dataset', 'cifar10', "config.dataset='cifar10' is invalid: must be one "
     "of ('mnist', 'fashion_mnist')"),
    ('data_source', 'web', "config.data_source='web'"),
    ('checkpoint_every_epochs', -1, 'config.checkpoint_every_epochs=-1 is '
     'invalid: must be an integer >= 0'),
    ('keep_checkpoints', 0, 'config.keep_checkpoints=0 is invalid: must be an '
     'integer >= 1'),
    ('log_every_steps', 0, 'config.log_every_steps=0 is invalid'),
    ('progress_bar', 'yes', "config.progress_bar='yes' is invalid: must be one "
     "of ('auto', 'always', 'never')"),
    ('steps_per_call', -1, 'config.steps_per_call=-1 is invalid: must be an '
     'integer >= 0 (0: automatic)'),
    ('conv_lowering', 'im2col', "config.conv_lowering='im2col' is invalid: "
     "must be one of ('xla', 'matmul')"),
    ('seed', 2**32, 'config.seed=4294967296 is invalid: must be an integer in '
     '[0, 4294967295]'),
    ('seed', 99999999999999999999999, 'config.seed=99999999999999999999999'),
    ('seed', -1, 'config.seed=-1'),
    ('learning_rate', 1e308, 'config.learning_rate=1e+308 is invalid: must be '
     'a number > 0 (and at most 3.4e38, the float32 maximum)'),
]


@pytest.mark.parametrize('field,value,message', BAD_FIELDS)
def test_bad_field_raises_one_line_error(field, value, message):
  config = default.get_config()
  with config.ignore_type():  # e.g. a config file built without default.py
    config[field] = value
  with pytest.raises(ConfigError) as error:
    validation.validate_config(config)
  assert message in str(error.value)
  assert '\n' not in str(error.value)


def test_default_config_is_valid():
  validation.validate_config(default.get_config())


@pytest.mark.parametrize('warmup_epochs', [0.0, 10.0, 2.5])
def test_warmup_bounds_are_inclusive(warmup_epochs):
  config = default.get_config()
  config.warmup_epochs = warmup_epochs
  validation.validate_config(config)


def test_idx_source_needs_a_folder():
  config = default.get_config()
  config.data_source = 'idx'
  with pytest.raises(ConfigError, match='config.idx_dir'):
    validation.validate_config(config)


def test_bad_config_fails_before_loading_data(tmp_path, monkeypatch):
  def must_not_load(config):
    raise AssertionError('data loaded despite a bad config')
  monkeypatch.setattr(input_pipeline, 'load_datasets', must_not_load)
  config = small_config(tmp_path, momentum=1.5)
  with pytest.raises(ConfigError, match='config.momentum=1.5'):
    train.train_and_evaluate(config, str(tmp_path / 'run'))


def test_batch_larger_than_training_split(idx_dir, tmp_path):
  config = small_config(idx_dir, batch_size=TRAIN_SIZE + 1)
  with pytest.raises(ConfigError, match=f'config.batch_size={TRAIN_SIZE + 1} '
                     rf'is invalid: must lie in \[1, {TRAIN_SIZE}\]'):
    train.train_and_evaluate(config, str(tmp_path))


def test_batch_equal_to_training_split_is_allowed(idx_dir, tmp_path):
  config = small_config(idx_dir, batch_size=TRAIN_SIZE, num_epochs=1)
  state = train.train_and_evaluate(config, str(tmp_path))
  assert int(state.step) == 1


# Schedule fields: (overrides, text the error must contain). Each case sets
# config.schedule itself where the field only matters for one schedule.
BAD_SCHEDULES = [
    ({'schedule': 'cosine'}, "config.schedule='cosine' is invalid: must be one "
     "of ('warmup_cosine', 'sgdr', 'constant', 'step', 'wsd', 'linear', "
     "'onecycle', 'piecewise_linear')"),
    ({'schedule': 'piecewise_linear', 'knots': (1.0,)}, 'config.knots=(1.0,) '
     'is invalid: must be at least 2 fractions of learning_rate, each in '
     '[0, 1]'),
    ({'schedule': 'piecewise_linear', 'knots': (1.0, 1.5)},
     'config.knots=(1.0, 1.5) is invalid'),
    ({'min_learning_rate': 0.2}, 'config.min_learning_rate=0.2 is invalid: '
     'must lie in [0, learning_rate=0.1]'),
    ({'min_learning_rate': -0.01}, 'config.min_learning_rate=-0.01'),
    ({'warmup_init_lr': 0.5}, 'config.warmup_init_lr=0.5 is invalid: must lie '
     'in [0, learning_rate=0.1]'),
    ({'schedule': 'sgdr', 'cycle_epochs': 0.5}, 'config.cycle_epochs=0.5 is '
     'invalid: must lie in [1, num_epochs - warmup_epochs = 9]'),
    ({'schedule': 'sgdr', 'cycle_epochs': 9.5}, 'config.cycle_epochs=9.5'),
    ({'schedule': 'sgdr', 'warmup_epochs': 9.5}, 'config.cycle_epochs=3.0 is '
     'invalid: must lie in [1, num_epochs - warmup_epochs = 0.5]'),
    ({'schedule': 'sgdr', 'cycle_mult': 0.5}, 'config.cycle_mult=0.5 is '
     'invalid: must be a number >= 1'),
    ({'schedule': 'sgdr', 'restart_decay': 0.0}, 'config.restart_decay=0.0 is '
     'invalid: must lie in (0, 1]'),
    ({'schedule': 'sgdr', 'cycle_mult': 1e308}, 'config.cycle_mult=1e+308'),
    ({'schedule': 'sgdr', 'restart_decay': 1.5}, 'config.restart_decay=1.5'),
    ({'schedule': 'step', 'step_decay': 2.0}, 'config.step_decay=2.0 is '
     'invalid: must lie in (0, 1]'),
    ({'schedule': 'step', 'step_epochs': (8, 5)}, 'config.step_epochs=(8, 5) '
     'is invalid: must be increasing epochs inside (warmup_epochs=1, '
     'num_epochs=10)'),
    ({'schedule': 'step', 'step_epochs': (5, 10)}, 'config.step_epochs=(5, 10)'),
    ({'schedule': 'step', 'step_epochs': (0.5,)}, 'config.step_epochs=(0.5,)'),
    ({'schedule': 'wsd', 'decay_epochs': 0.0}, 'config.decay_epochs=0.0 is '
     'invalid: must lie in (0, num_epochs - warmup_epochs = 9]'),
    ({'schedule': 'wsd', 'decay_epochs': 9.5}, 'config.decay_epochs=9.5'),
    ({'schedule': 'wsd', 'warmup_epochs': 9.0, 'decay_epochs': 2.0},
     'config.decay_epochs=2.0 is invalid: must lie in (0, num_epochs - '
     'warmup_epochs = 1]'),
    ({'schedule': 'wsd', 'decay_fraction': 1.5}, 'config.decay_fraction=1.5 '
     'is invalid: must lie in [0, 1] (0: the decay is decay_epochs long'),
    ({'schedule': 'wsd', 'decay_fraction': -0.1},
     'config.decay_fraction=-0.1 is invalid'),
    ({'schedule': 'wsd', 'decay_fraction': 0.95}, 'config.decay_fraction=0.95 '
     'is invalid: must be at most (num_epochs - warmup_epochs) / num_epochs '
     '= 0.9 here'),
    ({'schedule': 'wsd', 'decay_shape': 'sqrt'}, "config.decay_shape='sqrt' "
     "is invalid: must be one of ('linear', 'cosine', '1-sqrt')"),
    ({'schedule': 'onecycle', 'div_factor': 1.0}, 'config.div_factor=1.0 is '
     'invalid: must be a number > 1'),
    ({'schedule': 'onecycle', 'final_div_factor': 0.5},
     'config.final_div_factor=0.5 is invalid: must be a number > 1'),
    ({'schedule': 'onecycle', 'warmup_init_lr': 0.01},
     "config.warmup_init_lr=0.01 is invalid: must be 0 for "
     "schedule='onecycle'"),
    ({'optimizer': 'adam'}, "config.optimizer='adam' is invalid: must be one "
     "of ('sgd', 'schedule_free_sgd', 'adamw', 'schedule_free_adamw')"),
    ({'optimizer': 'schedule_free_adamw'}, "config.schedule='warmup_cosine' "
     "is invalid: must be 'constant' with optimizer='schedule_free_adamw'"),
    ({'optimizer': 'adamw', 'b1': 1.0}, 'config.b1=1.0 is invalid: must lie '
     'in [0, 1)'),
    ({'optimizer': 'adamw', 'b2': -0.1}, 'config.b2=-0.1 is invalid'),
    ({'optimizer': 'adamw', 'eps': 0.0}, 'config.eps=0.0 is invalid: must be '
     'a number > 0'),
    ({'optimizer': 'adamw', 'weight_decay': -1e-4},
     'config.weight_decay=-0.0001 is invalid: must be a number >= 0'),
    ({'grad_clip_norm': -1.0}, 'config.grad_clip_norm=-1.0 is invalid: must '
     'be a number >= 0 (0: no clipping)'),
    ({'optimizer': 'schedule_free_sgd'}, "config.schedule='warmup_cosine' is "
     "invalid: must be 'constant' with optimizer='schedule_free_sgd'"),
    ({'optimizer': 'schedule_free_sgd', 'schedule': 'constant',
      'momentum': 0.0}, "config.momentum=0.0 is invalid: must lie in (0, 1) "
     "with optimizer='schedule_free_sgd'"),
    ({'optimizer': 'schedule_free_sgd', 'schedule': 'constant',
      'nesterov': True}, "config.nesterov=True is invalid: must be false with "
     "optimizer='schedule_free_sgd'"),
]


@pytest.mark.parametrize('overrides,message', BAD_SCHEDULES)
def test_bad_schedule_field_raises_one_line_error(overrides, message):
  config = default.get_config()
  config.update(overrides)
  with pytest.raises(ConfigError) as error:
    validation.validate_config(config)
  assert message in str(error.value)
  assert '\n' not in str(error.value)


@pytest.mark.parametrize('overrides', [
    {'schedule': 'sgdr', 'cycle_epochs': 9.0, 'cycle_mult': 1.0},
    {'schedule': 'sgdr', 'restart_decay': 1.0, 'min_learning_rate': 0.1},
    {'schedule': 'step', 'step_epochs': ()},
    {'schedule': 'constant', 'warmup_epochs': 0.0},
    {'schedule': 'wsd', 'decay_epochs': 9.0},
    {'schedule': 'wsd', 'warmup_epochs': 0.0, 'decay_epochs': 10.0},
    {'schedule': 'onecycle', 'warmup_epochs': 0.0},
    {'optimizer': 'schedule_free_sgd', 'schedule': 'constant'},
])
def test_schedule_edge_values_are_allowed(overrides):
  config = default.get_config()
  config.update(overrides)
  validation.validate_config(config)


def test_sgdr_fields_are_ignored_by_other_schedules():
  config = default.get_config()
  config.cycle_mult = 0.5  # would be wrong for sgdr, unused by warmup_cosine
  validation.validate_config(config)


def test_a_config_missing_a_field_names_it():
  config = default.get_config()
  del config['decay_shape']
  with pytest.raises(ConfigError, match='config lacks field.s. decay_shape: '
                     'derive the config from configs/default.py'):
    validation.validate_config(config)


@pytest.mark.parametrize('name', ['wsd', 'schedule_free', 'sgdr', 'fast',
                                  'constant', 'speedrun', 'default'])
def test_shipped_configs_are_valid(name):
  module = __import__(f'configs.{name}', fromlist=['get_config'])
  validation.validate_config(module.get_config())


def test_huge_but_float32_cycle_mult_lays_out_one_cycle():
  config = default.get_config()
  config.update({'schedule': 'sgdr', 'cycle_mult': 1e30})
  validation.validate_config(config)
  cycles = schedules.sgdr_cycles(config, 0.1, 468)
  assert [(c.start, c.length) for c in cycles] == [(468, 9 * 468)]


@pytest.mark.parametrize('overrides,message', [
    ({'num_epochs': 2 * 10**8}, 'config.num_epochs=200000000 is invalid: must be '
     'at most 134217727 with 16 steps per epoch (the step count is int32)'),
])
def test_sizes_are_checked_against_the_data_before_training(
    idx_dir, tmp_path, monkeypatch, overrides, message):
  monkeypatch.setattr(train, 'train_epoch', None)  # must not be reached
  with pytest.raises(ConfigError) as error:
    train.train_and_evaluate(small_config(idx_dir, **overrides),
                             str(tmp_path))
  assert message in str(error.value)


def test_an_eval_batch_larger_than_the_test_split_gives_the_same_result(
    idx_dir, tmp_path):
  results = []
  for eval_batch_size in (10**9, 100):
    train.train_and_evaluate(
        small_config(idx_dir, num_epochs=1, eval_batch_size=eval_batch_size),
        str(tmp_path / str(eval_batch_size)))
    last = (tmp_path / str(eval_batch_size) / 'epochs.csv').read_text()
    results.append(last.splitlines()[-1].split(',')[6:8])  # test loss, acc.
  assert float(results[0][0]) == pytest.approx(float(results[1][0]), rel=1e-5)
  assert results[0][1] == results[1][1]
