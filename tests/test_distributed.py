"""Two processes on localhost (jax.distributed, one CPU device each) follow
the one-process trajectory, and survive a kill -9 of both
(machinery/parallel.maybe_initialize_distributed)."""

import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import PROJECT_DIR
from machinery import checkpoints
from machinery import run_logs

STEPS_PER_EPOCH = 16  # 512 generated examples, batch 32


def free_port():
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def command(idx_dir, workdir, *extra):
  return [sys.executable, str(PROJECT_DIR / 'main.py'),
          f'--config={PROJECT_DIR / "configs" / "default.py"}',
          f'--workdir={workdir}', '--config.data_source=idx',
          f'--config.idx_dir={idx_dir}', '--config.allow_download=false',
          '--config.num_epochs=3', '--config.batch_size=32',
          '--config.eval_batch_size=100', '--config.log_every_steps=4',
          '--config.progress_bar=never', *extra]


def start_two(idx_dir, workdir):
  port = free_port()
  return [subprocess.Popen(
      command(idx_dir, workdir, '--config.cpu_devices=1',
              f'--coordinator_address=localhost:{port}', '--num_processes=2',
              f'--process_id={i}'),
      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
          for i in range(2)]


def start_two_until_first_checkpoint(idx_dir, workdir):
  """Two processes, returned once epoch 1's checkpoint is complete."""
  processes = start_two(idx_dir, workdir)
  done = workdir / checkpoints.CHECKPOINT_DIR / str(STEPS_PER_EPOCH)
  deadline = time.monotonic() + 240
  while not (done / 'commit_success.txt').exists():
    assert all(p.poll() is None for p in processes), 'ended before the kill'
    assert time.monotonic() < deadline
    time.sleep(0.02)
  return processes


def finish(processes):
  for p in processes:
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err[-3000:]


def steps(workdir):
  return run_logs.read_steps(workdir)


def test_two_processes_follow_one_and_resume_after_kill_9(idx_dir, tmp_path):
  # One process, two CPU devices: the same mesh as two processes of one.
  one = tmp_path / 'one'
  subprocess.run(command(idx_dir, one, '--config.cpu_devices=2'), check=True,
                 capture_output=True, timeout=300)
  two = tmp_path / 'two'
  finish(start_two(idx_dir, two))
  for key in ('step', 'learning_rate', 'loss', 'accuracy'):
    np.testing.assert_allclose(steps(two)[key], steps(one)[key], rtol=1e-5,
                               err_msg=key)
  # Process 1 keeps its own identical records apart.
  np.testing.assert_array_equal(steps(two / 'process_1')['loss'],
                                steps(two)['loss'])

  # kill -9 of both once epoch 1's checkpoint is complete, then resume.
  killed = tmp_path / 'killed'
  processes = start_two_until_first_checkpoint(idx_dir, killed)
  for p in processes:
    p.kill()
    p.wait()
  assert not (killed / checkpoints.CHECKPOINT_DIR /
              str(3 * STEPS_PER_EPOCH)).exists()  # killed before the end
  finish(start_two(idx_dir, killed))
  assert (run_logs.read_steps(killed)['step'].tolist() ==
          list(range(3 * STEPS_PER_EPOCH)))
  for key in ('learning_rate', 'loss'):
    np.testing.assert_array_equal(steps(killed)[key], steps(two)[key],
                                  err_msg=key)


@pytest.mark.parametrize('args,message', [
    (('--coordinator_address=localhost:1234', '--num_processes=2',
      '--process_id=2'), '--process_id=2 is invalid: need 0 <= process_id < '
     'num_processes=2.'),
    (('--coordinator_address=localhost:port', '--num_processes=2',
      '--process_id=0'), "--coordinator_address='localhost:port' is invalid"),
    (('--coordinator_address=localhost:1234',),
     '--coordinator_address=localhost:1234 needs --num_processes and '
     '--process_id'),
    (('--num_processes=2', '--process_id=1'),
     '--num_processes/--process_id need --coordinator_address'),
])
def test_bad_multi_process_flags_are_one_line(idx_dir, tmp_path, args,
                                              message):
  result = subprocess.run(command(idx_dir, tmp_path / 'w', *args),
                          capture_output=True, text=True, timeout=120)
  assert result.returncode == 1
  assert 'Traceback' not in result.stderr
  assert message in result.stderr.strip().splitlines()[-1]


def test_a_non_numeric_process_count_in_the_environment_is_one_line(
    idx_dir, tmp_path):
  env = dict(os.environ, JAX_COORDINATOR_ADDRESS='localhost:1234',
             JAX_NUM_PROCESSES='two', JAX_PROCESS_ID='0')
  result = subprocess.run(command(idx_dir, tmp_path / 'w'), env=env,
                          capture_output=True, text=True, timeout=120)
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1] == (
      "Error: JAX_NUM_PROCESSES='two' is invalid: it must be a whole number "
      '(as --num_processes is).')


def test_a_process_left_alone_says_so_and_gives_up_in_time(idx_dir, tmp_path):
  start = time.monotonic()
  result = subprocess.run(
      command(idx_dir, tmp_path / 'w', f'--coordinator_address=localhost:'
              f'{free_port()}', '--num_processes=2', '--process_id=0',
              '--distributed_timeout_s=3'),
      capture_output=True, text=True, timeout=120)
  assert time.monotonic() - start < 60
  assert result.returncode == 1
  assert 'Waiting up to 3 s for 2 process(es) at localhost:' in result.stderr
  assert result.stderr.strip().splitlines()[-1].startswith(
      'Error: the 2 processes of the job did not all join at localhost:')
  assert 'Check failure' not in result.stderr


def test_a_lost_peer_is_one_line_and_a_prompt_exit(idx_dir, tmp_path):
  processes = start_two_until_first_checkpoint(idx_dir, tmp_path / 'lost')
  processes[1].kill()
  processes[1].wait()
  start = time.monotonic()
  _, err = processes[0].communicate(timeout=120)
  assert time.monotonic() - start < 60
  assert processes[0].returncode == 1
  assert err.strip().splitlines()[-1].startswith(
      'Error: Lost contact with another process of the job (')
  assert 'Check failure' not in err
