"""Helpers for the tests of whole runs (not a test module: no test_ prefix).

The reference for exactness is an uninterrupted run of the same config: a
resumed run must write the very same train_steps.csv (every step once, the
same learning rate, the same loss to the last bit) and end with bitwise equal
parameters.
"""

import pathlib
import subprocess
import sys
import time

import jax
import numpy as np

from conftest import PROJECT_DIR
from conftest import small_config
from conftest import TRAIN_SIZE
from machinery import checkpoints
from machinery import run_logs
import train

BATCH = 32
STEPS_PER_EPOCH = TRAIN_SIZE // BATCH
EPOCHS = 4
PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


def run_config(idx_dir, **overrides):
  fields = dict(num_epochs=EPOCHS, batch_size=BATCH, log_every_steps=5)
  return small_config(idx_dir, **{**fields, **overrides})


def cli_args(idx_dir, workdir, epochs=EPOCHS):
  return [sys.executable, str(PROJECT_DIR / 'main.py'),
          f'--config={PROJECT_DIR / "configs" / "default.py"}',
          f'--workdir={workdir}', '--config.data_source=idx',
          f'--config.idx_dir={idx_dir}', '--config.allow_download=false',
          f'--config.num_epochs={epochs}', f'--config.batch_size={BATCH}',
          '--config.log_every_steps=5',
          '--config.cpu_devices=1']  # bitwise-comparable with in-process runs


def with_sigint(disposition, args):
  """`args` run with SIGINT set to `disposition` ('SIG_DFL' as from a
  terminal, 'SIG_IGN' as a shell's background job), whatever pytest itself
  was started with: a small Python sets it and execs them (a preexec_fn
  would fork a multithreaded JAX process)."""
  launcher = ('import os, signal, sys; '
              f'signal.signal(signal.SIGINT, signal.{disposition}); '
              'os.execv(sys.argv[1], sys.argv[1:])')
  return [sys.executable, '-c', launcher, *map(str, args)]


def final_params(workdir, config):
  """Params of the newest checkpoint in `workdir` (a run of any task), as
  numpy arrays. The template's rate is any schedule: only its structure
  matters to the restore."""
  template = train.create_train_state(jax.random.key(0), config,
                                      lambda step: 0.0)
  store = checkpoints.CheckpointStore(workdir, keep=3)
  try:
    restored = store.restore_latest(template, config)
  finally:
    store.close()
  return jax.tree.map(np.asarray, restored.state.params)


def assert_same_params(a, b):
  leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(leaves_a) == len(leaves_b)
  for x, y in zip(leaves_a, leaves_b):
    np.testing.assert_array_equal(x, y)  # bitwise on CPU


def step_log(workdir):
  return (pathlib.Path(workdir) / run_logs.STEP_LOG).read_text()


def wait_for_checkpoint(workdir, step, process, timeout=120):
  """Blocks until checkpoint `step` is complete (renamed into place)."""
  done = pathlib.Path(workdir) / checkpoints.CHECKPOINT_DIR / str(step)
  deadline = time.monotonic() + timeout
  while not (done / 'commit_success.txt').exists():
    assert process.poll() is None, 'the run ended before the checkpoint'
    assert time.monotonic() < deadline, f'no checkpoint {step} in {timeout}s'
    time.sleep(0.02)


def png_size(path):
  """(width, height) from a PNG's IHDR chunk; fails if it is not a PNG."""
  header = path.read_bytes()[:24]
  assert header[:8] == PNG_MAGIC, f'{path} is not a PNG'
  return int.from_bytes(header[16:20]), int.from_bytes(header[20:24])


def run_tool(script, *args, config='default.py'):
  """A tool of tools/ run as a user runs it, on configs/`config` (if any)."""
  config_flag = [f'--config={PROJECT_DIR / "configs" / config}'] if config else []
  return subprocess.run(
      [sys.executable, str(PROJECT_DIR / script), *config_flag, *args],
      capture_output=True, text=True, timeout=300, cwd=PROJECT_DIR)


def rerun_recorded(member, workdir):
  """main.py on configs/recorded.py:<member>/config.json into `workdir`:
  the member's run again, as a user reruns one (checked ok)."""
  result = subprocess.run(
      [sys.executable, str(PROJECT_DIR / 'main.py'),
       f'--config={PROJECT_DIR / "configs" / "recorded.py"}:'
       f'{pathlib.Path(member) / run_logs.CONFIG_JSON}',
       f'--workdir={workdir}'], capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
