"""A schedule of the frozen schedule-law benchmark (docs/laws/benchmark.json)
as a config, so that tools/study.py trains its ground truth:

  python tools/study.py --config=configs/lm.py --workdir=... --seeds=5 \
      --vary=config=configs/laws_benchmark.py:language_model:wsd_linear_10,...

`get_config('TASK:NAME')` is the task's own config (configs/lm.py at the
studies' reference peak 2e-3 — its peak when the benchmark was frozen, and
methods_lm's — or configs/default.py on Fashion-MNIST) with NAME's
schedule: lengths and positions in the JSON are fractions of the task's
default length L (its num_epochs), rates fractions of its peak. Every schedule keeps the task's
default warmup, but one-cycle, whose rise over the first 30% is its warmup
(as configs/onecycle.py and configs/lm_onecycle.py): so the benchmark's
one-cycle, SGDR, step, linear and cosine-to-10% runs are the methods
studies' own runs of those configs, field for field, and --reuse takes
them.
"""

import json
import pathlib

from configs import default
from configs import lm_variant

BENCHMARK = pathlib.Path(__file__).resolve().parent.parent / 'docs' / 'laws' / (
    'benchmark.json')
# The task's config, by the name benchmark.json gives it.
TASK_CONFIGS = {'configs/default.py': default.get_config,
                'configs/lm.py': lambda: lm_variant.get_config('lm:peak=1')}
ONE_CYCLE_RISE = 0.3  # share of the run, as configs/onecycle.py


def entries() -> dict:
  """{name: entry} of the fit set and the held-out list."""
  benchmark = json.loads(BENCHMARK.read_text())
  return {e['name']: e for e in benchmark['fit'] + benchmark['held_out']}


def tasks() -> dict:
  return json.loads(BENCHMARK.read_text())['tasks']


def _epochs(fraction, length):
  """A fraction of L in epochs, without float dust (0.3 x 4 = 1.2)."""
  return round(fraction * length, 6)


def get_config(argument=None):
  task_name, _, name = str(argument).partition(':')
  known = tasks()
  if task_name not in known or name not in entries():
    raise ValueError(f'name a task ({", ".join(known)}) and a schedule '
                     f'({", ".join(entries())}): --config=configs/'
                     'laws_benchmark.py:TASK:NAME')
  task, entry = known[task_name], entries()[name]
  config = TASK_CONFIGS[task['config']]()
  config.update(task['overrides'])
  length = config.num_epochs
  config.num_epochs = int(round(entry['length'] * length))
  config.schedule = entry['schedule']
  if 'final_rate' in entry:
    config.min_learning_rate = entry['final_rate'] * config.learning_rate
  if entry['schedule'] == 'wsd':
    config.decay_fraction = entry['decay_fraction']
    config.decay_shape = entry['decay_shape']
  if entry['schedule'] == 'step':
    config.step_epochs = tuple(_epochs(f, length) for f in entry['drops_at'])
    config.step_decay = entry['drop_factor']
  if entry['schedule'] == 'sgdr':
    config.cycle_epochs = _epochs(entry['first_cycle'], length)
    config.cycle_mult = entry['cycle_mult']
  if entry['schedule'] == 'onecycle':
    config.warmup_epochs = _epochs(ONE_CYCLE_RISE, length)
  return config
