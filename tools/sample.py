"""Text from a language-model run: what the model has learned to write.

  python tools/sample.py --workdir=runs/lm --prompt="Mr. Speaker, " \
      [--num_bytes=600] [--temperature=0.8] [--top_k=0] [--seed=0] [--step=N]

Reads the run's config.json and its newest intact checkpoint (or --step's),
read only: the run may still be training, and nothing in its workdir
changes. Continues --prompt byte by byte (models.generate, as nanoGPT's
sample.py), each byte drawn from the model's distribution over the last
context_length bytes at --temperature (0: always the likeliest byte), among
the --top_k likeliest with --top_k > 0. The same run, step, prompt, seed and
settings give the same text. A schedule-free run is sampled with the
parameters it is evaluated with. The text goes to stdout, one line about
what was sampled to stderr; bytes that are not valid UTF-8 (a model may cut
a character) print as U+FFFD.
"""

import math
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
# pylint: disable=g-import-not-at-top,wrong-import-position

from absl import flags
import numpy as np

from machinery import checkpoints
from machinery import cli
from machinery import errors
from machinery import run_logs
import tasks

FLAGS = flags.FLAGS
MAX_BYTES = 100_000
RECORDED_CONFIG = (pathlib.Path(__file__).resolve().parent.parent / 'configs'
                   / 'recorded.py')

flags.DEFINE_string('workdir', None, 'A language-model run\'s workdir.')
flags.DEFINE_string('prompt', '\n', 'Text to continue (UTF-8).')
flags.DEFINE_integer('num_bytes', 600, 'Bytes to write after the prompt.')
flags.DEFINE_float('temperature', 0.8, 'Divides the logits; 0: the '
                   'likeliest byte every time.')
flags.DEFINE_integer('top_k', 0, 'Draw among the k likeliest bytes only '
                     '(0: all 256).')
flags.DEFINE_integer('seed', 0, 'Seed of the draws.')
flags.DEFINE_integer('step', None, 'The checkpoint of this step (default: '
                     'the newest).')
flags.mark_flag_as_required('workdir')


def check_flags() -> None:
  """One line for each setting that cannot be sampled."""
  if not 1 <= FLAGS.num_bytes <= MAX_BYTES:
    raise errors.ConfigError(f'--num_bytes={FLAGS.num_bytes} is invalid: '
                             f'must be 1 to {MAX_BYTES:,}.')
  if not (math.isfinite(FLAGS.temperature) and FLAGS.temperature >= 0):
    raise errors.ConfigError(f'--temperature={FLAGS.temperature} is invalid: '
                             'must be a number >= 0 (0: the likeliest byte).')
  if not 0 <= FLAGS.top_k <= 256:
    raise errors.ConfigError(f'--top_k={FLAGS.top_k} is invalid: must be 0 '
                             '(every byte) to 256.')
  if not FLAGS.prompt:
    raise errors.ConfigError('--prompt is empty: give at least one byte to '
                             'continue (the default is a newline).')


def run_config(workdir: pathlib.Path):
  """The config the run in `workdir` recorded (configs/recorded.py)."""
  if not workdir.is_dir():
    raise errors.ConfigError(f'--workdir={workdir} is not a folder.')
  recorded = workdir / run_logs.CONFIG_JSON
  if not recorded.is_file():
    raise errors.ConfigError(f'--workdir={workdir} holds no '
                             f'{run_logs.CONFIG_JSON}: is it a run\'s '
                             'workdir?')
  config = cli.load_config_file(f'{RECORDED_CONFIG}:{recorded}',
                                where=f'{recorded}')
  tasks.require(config, ('language_model',), 'tools/sample.py')
  return config


def sample(workdir, prompt: str, num_bytes: int, temperature: float,
           top_k: int, seed: int, step=None) -> tuple[str, int]:
  """(the prompt and its continuation, the checkpoint's step)."""
  import jax  # pylint: disable=g-import-not-at-top
  import models  # pylint: disable=g-import-not-at-top
  import optimizers  # pylint: disable=g-import-not-at-top
  import train  # pylint: disable=g-import-not-at-top
  workdir = pathlib.Path(workdir)
  config = run_config(workdir)
  # The optimizer state's structure, not its values, is what restoring
  # needs: a constant rate stands in for the run's schedule.
  template = train.create_train_state(jax.random.PRNGKey(0), config,
                                      lambda count: config.learning_rate)
  state, step = checkpoints.read_state(workdir, template, step)
  params = optimizers.eval_params(config, state)
  model = tasks.task_of(config).create_model(config)
  tokens = models.generate(model, params,
                           np.frombuffer(prompt.encode(), np.uint8),
                           num_bytes, jax.random.PRNGKey(seed),
                           temperature, top_k)
  text = bytes(np.asarray(tokens, np.uint8)).decode('utf-8', 'replace')
  return text, step


def main(argv):
  del argv
  with cli.one_line_errors():
    check_flags()
    text, step = sample(FLAGS.workdir, FLAGS.prompt, FLAGS.num_bytes,
                        FLAGS.temperature, FLAGS.top_k, FLAGS.seed,
                        FLAGS.step)
  print(f'{FLAGS.workdir}, step {step}: {FLAGS.num_bytes} bytes at '
        f'temperature {FLAGS.temperature:g}'
        + (f', top {FLAGS.top_k}' if FLAGS.top_k else '')
        + f', seed {FLAGS.seed}', file=sys.stderr)
  sys.stdout.write(text + ('' if text.endswith('\n') else '\n'))


if __name__ == '__main__':
  cli.run(main)
