"""Every config check, run once before any data is loaded or compiled.

A wrong value should never surface as a stack trace from inside JAX, nor as a
run that silently trains with a schedule the user did not mean. Each check
raises ConfigError with one line naming the field and what is allowed. The
schedule and optimizer tables state their own checks (schedules.validate,
optimizers.validate); this module calls them, so `validate_config` is the one
place that says whether a config can run.
"""

from configs import default
from machinery import checks
from machinery import convolutions
from machinery.errors import ConfigError
import optimizers
import schedules
import tasks

SUPPORTED_DATASETS = ('mnist', 'fashion_mnist')  # the image task's
# The transformer's size: large enough for any model these CPUs train, small
# enough that a typo (an extra zero or three) is refused before the init
# allocates it.
MAX_CONTEXT_LENGTH = 8192
MAX_WIDTH = 8192
MAX_LAYERS = 256
DATA_SOURCES = ('auto', 'tfds', 'idx')
PROGRESS_BAR = ('auto', 'always', 'never')
SEED_MAX = 2**32 - 1

_fail = checks.fail
_is_int = checks.is_int
_is_real = checks.is_real


def validate_config(config) -> None:
  """Raises ConfigError on the first invalid field; returns None if all ok."""
  _require_every_field(config)
  _validate_training(config)
  schedules.validate(config)
  optimizers.validate(config)
  _validate_data(config)
  _validate_run_fields(config)


def _require_every_field(config) -> None:
  """Every field of configs/default.py, the one source of defaults."""
  missing = sorted(set(default.get_config().keys()) - set(config.keys()))
  if missing:
    raise ConfigError(
        f'config lacks field(s) {", ".join(missing)}: derive the config from '
        'configs/default.py (default.get_config()) and change what differs.')


def _validate_training(config) -> None:
  checks.check_int(config, 'num_epochs', 1, 'must be an integer >= 1')
  checks.check_int(config, 'steps_per_epoch', 0,
                   'must be an integer >= 0 (0: one pass over the training '
                   'split)')
  if (not _is_real(config.warmup_epochs)
      or not 0 <= config.warmup_epochs <= config.num_epochs):
    _fail('warmup_epochs', config.warmup_epochs,
          f'must lie in [0, num_epochs={config.num_epochs}]')
  checks.check_real(config, 'learning_rate', 0, checks.FLOAT32_MAX,
                    'must be a number > 0 (and at most 3.4e38, the float32 '
                    'maximum)', low_open=True)
  if not _is_real(config.momentum) or not 0 <= config.momentum < 1:
    _fail('momentum', config.momentum, 'must lie in [0, 1)')
  if not isinstance(config.nesterov, bool):
    _fail('nesterov', config.nesterov, 'must be true or false')
  checks.check_int(config, 'batch_size', 1, 'must be an integer >= 1')
  micro = config.micro_batch_size
  if not _is_int(micro) or micro < 0 or (micro and config.batch_size % micro):
    _fail('micro_batch_size', micro,
          f'must be 0 (automatic) or divide batch_size={config.batch_size}')
  checks.check_int(config, 'cpu_devices', 0,
                   'must be an integer >= 0 (0: automatic)')
  checks.check_int(config, 'steps_per_call', 0,
                   'must be an integer >= 0 (0: automatic)')
  checks.check_choice(config, 'conv_lowering', convolutions.CONV_LOWERINGS)
  checks.check_int(config, 'eval_batch_size', 1, 'must be an integer >= 1')
  checks.check_int(config, 'eval_examples', 0,
                   'must be an integer >= 0 (0: the whole test split)')
  if not _is_int(config.seed) or not 0 <= config.seed <= SEED_MAX:
    _fail('seed', config.seed, f'must be an integer in [0, {SEED_MAX}] '
          '(jax.random.key takes 32 bits: larger seeds would repeat smaller '
          'ones)')


def _validate_data(config) -> None:
  checks.check_choice(config, 'task', tasks.TASKS)
  task = tasks.task_of(config)
  checks.check_choice(config, 'dataset', task.datasets)
  checks.check_choice(config, 'data_source', DATA_SOURCES)
  if config.data_source == 'idx' and not config.idx_dir:
    _fail('idx_dir', config.idx_dir,
          'must name a folder of IDX files when data_source="idx"')
  if not isinstance(config.text_path, str):
    _fail('text_path', config.text_path, 'must be a path (a string)')
  if task.name == 'language_model':
    _validate_language_model(config)
  elif config.text_path:
    _fail('text_path', config.text_path,
          f'is read by task="language_model" only, not task={task.name!r}; '
          'leave it empty')


def _validate_language_model(config) -> None:
  """The transformer's shape, before it is built."""
  if config.data_source != 'auto' or config.idx_dir:
    _fail('data_source', config.data_source,
          'must be "auto" with no idx_dir for task="language_model" (its '
          'text is text_path, or the State of the Union corpus)')
  checks.check_int(config, 'context_length', 1, 'must be an integer >= 1')
  if config.context_length > MAX_CONTEXT_LENGTH:
    _fail('context_length', config.context_length,
          f'must be at most {MAX_CONTEXT_LENGTH}')
  checks.check_int(config, 'num_layers', 1, 'must be an integer >= 1')
  if config.num_layers > MAX_LAYERS:
    _fail('num_layers', config.num_layers, f'must be at most {MAX_LAYERS}')
  checks.check_int(config, 'num_heads', 1, 'must be an integer >= 1')
  checks.check_int(config, 'width', 1, 'must be an integer >= 1')
  if config.width > MAX_WIDTH or config.width % config.num_heads:
    _fail('width', config.width,
          f'must be a multiple of num_heads={config.num_heads} and at most '
          f'{MAX_WIDTH}')


def _validate_run_fields(config) -> None:
  """Checkpointing and logging fields."""
  checks.check_int(config, 'checkpoint_every_epochs', 0,
                   'must be an integer >= 0 (0: only at the end and on Ctrl-C)')
  checks.check_int(config, 'keep_checkpoints', 1, 'must be an integer >= 1')
  checks.check_int(config, 'log_every_steps', 1, 'must be an integer >= 1')
  checks.check_choice(config, 'progress_bar', PROGRESS_BAR)
  if not isinstance(config.tensorboard, bool):
    _fail('tensorboard', config.tensorboard, 'must be true or false')


def validate_batch_size(config, train_size: int) -> None:
  """The batch must fit in the training split, an epoch's batches too (no
  example twice in an epoch), and the steps in int32."""
  if config.batch_size > train_size:
    _fail('batch_size', config.batch_size,
          f'must lie in [1, {train_size}] (the size of the training split)')
  if config.steps_per_epoch * config.batch_size > train_size:
    _fail('steps_per_epoch', config.steps_per_epoch,
          f'must be at most {train_size // config.batch_size}: an epoch of '
          f'batches of {config.batch_size} draws each of the {train_size} '
          'training examples at most once (0: one pass)')
  steps_per_epoch = schedules.epoch_steps(config, train_size)
  if config.num_epochs * steps_per_epoch > checks.INT32_MAX:
    _fail('num_epochs', config.num_epochs,
          f'must be at most {checks.INT32_MAX // steps_per_epoch} with '
          f'{steps_per_epoch} steps per epoch (the step count is int32)')


def validate_batch_for_mesh(config, mesh) -> None:
  """Each device needs a whole, equal share of every (micro-)batch."""
  devices = mesh.size
  where = f'must be a multiple of the {devices} devices the batch is split over'
  if config.batch_size % devices:
    _fail_plain('batch_size', config.batch_size, where)
  micro = config.micro_batch_size or config.batch_size
  if micro % devices:
    _fail_plain('micro_batch_size', micro, where)
  if config.eval_batch_size % devices:
    _fail_plain('eval_batch_size', config.eval_batch_size, where)


def _fail_plain(field, value, allowed):
  """As checks.fail, without the closing period (the message predates it)."""
  raise ConfigError(f'config.{field}={value!r} is invalid: {allowed}')


def validate_placement(config, train_size: int, mesh=None) -> None:
  """The checks that need the data's size (and the devices, given a mesh)."""
  validate_batch_size(config, train_size)
  if mesh is not None:
    validate_batch_for_mesh(config, mesh)
