"""The task table: what a run learns, from what, and how it is judged.

A task is one entry in `TASKS`, as a schedule is one entry in schedules.py
and an optimizer one in optimizers.py: its datasets, its data, its model,
how a batch becomes the model's inputs and targets, and its primary metric
with its direction. train.py, the studies and every tool go through this
table, so a new task is one entry here, not a branch in each of them.

- 'image_classification' (the default): the CNN of models.py on 28x28
  images (MNIST or Fashion-MNIST); primary metric the test accuracy,
  higher is better.
- 'language_model': the byte-level decoder-only transformer of models.py on
  text (the State of the Union corpus, or any UTF-8 text given as
  `text_path`; text_pipeline.py), trained to predict every next byte;
  primary metric the validation loss in bits per byte, lower is better.

A batch names its task by its key ('image' or 'tokens'), so the jitted
steps, which see only the batch, find the inputs and targets through
`inputs_and_targets` without being told the task.
"""

import dataclasses
import math
from typing import Callable

import jax.numpy as jnp
import numpy as np

import input_pipeline
from machinery import errors
import models
import text_pipeline


@dataclasses.dataclass(frozen=True)
class Metric:
  """A run's primary metric: its column in epochs.csv and how it reads.

  `scale` turns the recorded value into the shown one (accuracy -> %, a
  loss in nats -> bits per byte); `higher_is_better` gives the direction.
  """
  key: str
  name: str
  unit: str
  scale: float
  higher_is_better: bool
  # A finished run "trained" where its value is on the right side of this
  # bound (recorded units); otherwise it stayed at chance: counted, never
  # averaged (studies/report.py).
  trained_bound: float
  bounds: tuple           # the values possible, (low, high), recorded units
  chance_words: str       # what the bound means, for the reports

  def trained(self, value: float) -> bool:
    if self.higher_is_better:
      return value >= self.trained_bound
    return value <= self.trained_bound

  @property
  def final_key(self) -> str:
    """A study row's or budget row's column of the final value."""
    return 'final_' + self.key

  @property
  def difference_bounds(self) -> tuple:
    """The paired differences possible: a difference of two values inside
    `bounds` lies within (low - high, high - low)."""
    low, high = self.bounds
    return (low - high, high - low)

  @property
  def difference_unit(self) -> str:
    return 'pp' if self.unit == '%' else self.unit

  def difference(self, value: float) -> str:
    """A paired difference as the reports print it: +0.12 (pp or bits)."""
    return (f'{self.shown(value):+.2f}' if self.unit == '%'
            else f'{self.shown(value):+.3f}')

  def magnitude(self, value: float) -> str:
    """A difference's size without its sign, as in '±0.14' (pp or bits):
    the smallest difference a comparison could detect."""
    return self.difference(abs(value))[1:]

  def difference_interval(self, mean, low, high) -> str:
    """A paired difference and its interval: '+0.20 [+0.10, +0.30]' (pp)
    or '-0.012 [-0.020, -0.004]' (bits per byte); one pair has none."""
    if math.isnan(low) or math.isnan(high):
      return f'{self.difference(mean)} (one seed: no interval)'
    return (f'{self.difference(mean)} [{self.difference(low)}, '
            f'{self.difference(high)}]')

  def interval(self, n, mean, low, high) -> str:
    """A mean and its interval as shown: '99.28% [99.23, 99.34]' or
    '1.812 [1.801, 1.823]'; the mean alone for one value, '—' for none."""
    shown = lambda value: self.format(self.shown(value))
    if n < 2:
      return shown(mean) if n else '—'
    return (f'{shown(mean)} [{shown(low).rstrip("%")}, '
            f'{shown(high).rstrip("%")}]')

  def shown(self, value):
    return value * self.scale

  def format(self, shown_value: float) -> str:
    """A shown value as the reports print it: 98.76% or 1.962."""
    if self.unit == '%':
      return f'{shown_value:.2f}%'
    return f'{shown_value:.3f}'

  @property
  def direction(self) -> str:
    return 'higher is better' if self.higher_is_better else 'lower is better'


# Twice chance on 10 classes: a constant prediction scores 10-11.35% on
# MNIST.
TEST_ACCURACY = Metric('test_accuracy', 'test accuracy', '%', 100.0, True,
                       0.2, (0.0, 1.0),
                       'final test accuracy below 20%, twice chance')
# 4 bits per byte: above it a model has learned little more than how often
# each byte occurs (the State of the Union's unigram level is 4.33 bits;
# bytes drawn uniformly are 8).
BITS_PER_BYTE = Metric('test_loss', 'validation loss', 'bits per byte',
                       1 / math.log(2), False, 4.0 * math.log(2),
                       (0.0, math.inf),
                       'final validation loss above 4 bits per byte, about '
                       'the unigram level')


def _image_inputs(batch):
  """uint8 pixels in [0, 255] -> float32 in [0, 1], on the device."""
  return jnp.asarray(batch['image'], jnp.float32) / 255.0, batch['label']


def _text_inputs(batch):
  """Windows of context + 1 bytes -> the first context bytes, and each
  one's next byte as its target."""
  tokens = jnp.asarray(batch['tokens'], jnp.int32)
  return tokens[:, :-1], tokens[:, 1:]


def _image_epoch_line(summary, config) -> str:
  del config
  return ('epoch:%3d, lr: %.4g -> %.4g, train_loss: %.4f, train_accuracy: '
          '%.2f, test_loss: %.4f, test_accuracy: %.2f, %.1fs (%d img/s)' % (
              summary['epoch'], summary['learning_rate_first'],
              summary['learning_rate_last'], summary['train_loss'],
              summary['train_accuracy'] * 100, summary['test_loss'],
              summary['test_accuracy'] * 100, summary['epoch_time_s'],
              summary['images_per_s']))


def _text_epoch_line(summary, config) -> str:
  """Losses also in bits per byte; speed in tokens (bytes) per second."""
  bits = BITS_PER_BYTE.scale
  return (f'epoch:{summary["epoch"]:3d}, lr: '
          f'{summary["learning_rate_first"]:.4g} -> '
          f'{summary["learning_rate_last"]:.4g}, train_loss: '
          f'{summary["train_loss"]:.4f} '
          f'({summary["train_loss"] * bits:.3f} bits/byte), val_loss: '
          f'{summary["test_loss"]:.4f} '
          f'({summary["test_loss"] * bits:.3f} bits/byte), val_accuracy: '
          f'{summary["test_accuracy"] * 100:.2f}, '
          f'{summary["epoch_time_s"]:.1f}s '
          # windows/s is an integer in epochs.csv: 3 digits are all it has
          f'({round(summary["images_per_s"] * config.context_length, -2):,} '
          'tok/s)')


def _count_next_bytes(split) -> int:
  """Each window of context + 1 bytes holds context targets."""
  windows, length = np.shape(split['tokens'])
  return windows * (length - 1)


def _cnn(config):
  return models.CNN(conv_lowering=config.conv_lowering)


def _transformer(config):
  return models.Transformer(
      vocab_size=text_pipeline.VOCAB_SIZE,
      context_length=config.context_length, num_layers=config.num_layers,
      width=config.width, num_heads=config.num_heads)


@dataclasses.dataclass(frozen=True)
class Task:
  """One task: data, model, inputs and targets, and its primary metric."""
  name: str
  datasets: tuple            # allowed values of config.dataset
  example_key: str           # the batch key that names the task
  load_data: Callable        # config -> Datasets / TextDatasets
  # (config, train_size, made_by) -> generated datasets of the task's
  # shapes, for measuring speed
  synthetic_data: Callable
  create_model: Callable     # config -> a Linen module returning logits
  example_input: Callable    # config -> one example's input, for init
  inputs: Callable           # batch -> (model inputs, integer targets)
  count_targets: Callable    # split -> how many targets it holds
  primary: Metric
  epoch_line: Callable       # (epochs.csv row, config) -> the epoch's log


TASKS = {
    'image_classification': Task(
        'image_classification', ('mnist', 'fashion_mnist'), 'image',
        input_pipeline.load_datasets,
        lambda config, size, made_by: input_pipeline.synthetic_datasets(
            size, made_by), _cnn,
        lambda config: jnp.ones([1, 28, 28, 1], jnp.float32),
        _image_inputs, lambda split: len(split['label']), TEST_ACCURACY, _image_epoch_line),
    'language_model': Task(
        'language_model', ('sotu',), 'tokens',
        text_pipeline.load_datasets, text_pipeline.synthetic_datasets,
        _transformer,
        lambda config: jnp.zeros([1, config.context_length], jnp.int32),
        _text_inputs, _count_next_bytes, BITS_PER_BYTE, _text_epoch_line),
}


def task_of(config) -> Task:
  """The config's task (validated by machinery/validation.py)."""
  return TASKS[config.task]


def require(config, supported: tuple, tool: str) -> None:
  """Refuses, in one line, a task `tool` does not handle yet."""
  if config.task not in supported:
    raise errors.ConfigError(
        f'{tool} handles task={", ".join(supported)} only, not '
        f'task={config.task!r} (not written yet); use a config of that task.')


def spec_entry(config) -> dict:
  """A report spec's 'task' (which names its primary metric): nothing for
  the image task, whose specs predate tasks and stay as they were."""
  return {} if config.task == 'image_classification' else {'task': config.task}


def primary_metric(recorded_config: dict | None) -> Metric:
  """The primary metric of a recorded config.json (the image task's for
  records from before tasks existed, or none at all)."""
  name = (recorded_config or {}).get('task', 'image_classification')
  return TASKS[name].primary if name in TASKS else TEST_ACCURACY


def _batch_task(batch) -> Task:
  for task in TASKS.values():
    if task.example_key in batch:
      return task
  raise KeyError(f'a batch with keys {sorted(batch)} names no task '
                 f'(expected one of {[t.example_key for t in TASKS.values()]})')


def inputs_and_targets(batch):
  """The model's inputs and the integer targets of a batch of any task."""
  return _batch_task(batch).inputs(batch)


def num_examples(split: dict) -> int:
  """The examples (images, windows) of a split or batch of any task."""
  return len(next(iter(split.values())))


def num_targets(split: dict) -> int:
  """The targets of a split of any task: one label per image, one next
  byte per position of a window."""
  return _batch_task(split).count_targets(split)
