"""A study over every device and every process (studies/, tools/study.py):
stacked members split over a mesh, sequential members shared by processes."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from conftest import PROJECT_DIR
from configs import default
import input_pipeline
from machinery import checkpoints
from machinery import errors
from machinery import run_logs
from runs import rerun_recorded
import studies
from test_study import DATA
from test_studies import assert_follows_single_run

# One worker runs this module, so that a stacked group on 1 and 4
# devices (its module fixture) is trained once, not once per worker
# (pytest.ini: loadgroup).
pytestmark = pytest.mark.xdist_group('test_study_placement')

FOUR_DEVICES = '--xla_force_host_platform_device_count=4'
RENDEZVOUS_ABORT = 'Exiting to ensure a consistent program state'


def test_programs_and_slots_leave_no_member_out():
  group = list(range(7))
  assert studies.programs(group, 4) == [group]
  assert studies.slots(7, 4) == 8 and studies.slots(8, 4) == 8
  assert studies.slots(1, 1) == 1
  assert studies.programs(group, 2, members_per_device=2) == [
      [0, 1, 2, 3], [4, 5, 6]]
  assert studies.slots(3, 2) == 4  # the last program gets one padding slot
  with pytest.raises(errors.ConfigError, match='--members_per_device=-1'):
    studies.programs(group, 2, members_per_device=-1)


def test_processes_share_the_members_once_each(tmp_path):
  found = studies.members(default.get_config(),
                          studies.grid([('learning_rate', [0.1, 0.2])]), 5,
                          tmp_path)
  shares = [studies.Share(i, 3) for i in range(3)]
  owners = [[s.owns(m) for s in shares].count(True) for m in found]
  assert owners == [1] * 10
  assert [m.index for m in found if shares[1].owns(m)] == [1, 4, 7]


def test_the_share_comes_from_flags_or_slurm(monkeypatch):
  assert studies.sequential_share(('localhost:1', 4, 2)) == studies.Share(2, 4)
  monkeypatch.setenv('SLURM_NTASKS', '8')
  monkeypatch.setenv('SLURM_PROCID', '5')
  assert studies.sequential_share(('auto', None, None)) == studies.Share(5, 8)
  monkeypatch.delenv('SLURM_PROCID')
  with pytest.raises(errors.ConfigError, match='needs --num_processes and '
                     '--process_id'):
    studies.sequential_share(('auto', None, None))


@pytest.fixture(scope='module')
def mesh_runs(idx_dir, tmp_path_factory):
  """tests/stacked_mesh_worker.py's group on 1 and on 4 devices."""
  workdir = tmp_path_factory.mktemp('mesh')
  env = dict(os.environ, XLA_FLAGS=FOUR_DEVICES,
             PYTHONPATH=os.pathsep.join([str(PROJECT_DIR),
                                         str(PROJECT_DIR / 'tests')]))
  for _ in range(2):
    shutil.rmtree(workdir, ignore_errors=True)
    result = subprocess.run(
        [sys.executable, str(PROJECT_DIR / 'tests' / 'stacked_mesh_worker.py'),
         str(idx_dir), str(workdir)], capture_output=True, text=True,
        timeout=600, env=env)
    # XLA:CPU runs the 4 forced devices on threads; on 2 cores shared with
    # other work one of them has, rarely, never joined a collective, and
    # XLA aborts after 40 s (a longer timeout only hung longer). That is
    # XLA's, not the stacking's: such a run is tried once more.
    if RENDEZVOUS_ABORT not in result.stderr:
      break
  assert result.returncode == 0, result.stderr[-3000:]
  return workdir


def test_stacked_members_on_a_mesh_follow_their_one_device_run(mesh_runs):
  """3 members over 4 devices (one per device, one padding slot) follow
  the same group on one device."""
  names = sorted(p.name for p in (mesh_runs / 'one' / 'members').iterdir())
  assert len(names) == 3
  for placement, devices in (('one', 1), ('four', 4)):
    for name in names:
      member = mesh_runs / placement / 'members' / name
      environment = run_logs.read_config(member)['run_environment']
      assert (environment['stacked_members'],
              environment['stacked_mesh_devices']) == (3, devices)
  for name in names:
    assert_follows_single_run(
        studies.Member({}, 0, None, mesh_runs / 'four' / 'members' / name),
        mesh_runs / 'one' / 'members' / name)


def free_port():
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def study_command(idx_dir, workdir, *extra):
  return [sys.executable, str(PROJECT_DIR / 'tools' / 'study.py'),
          f'--config={PROJECT_DIR / "configs" / "default.py"}',
          f'--workdir={workdir}', f'--config.idx_dir={idx_dir}', *DATA,
          *extra]


def start_processes(idx_dir, workdir, *extra):
  port = free_port()
  return [subprocess.Popen(study_command(
      idx_dir, workdir, f'--coordinator_address=localhost:{port}',
      '--num_processes=2', f'--process_id={i}', *extra),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, cwd=PROJECT_DIR) for i in range(2)]


def finish(processes):
  outputs = []
  for p in processes:
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err[-3000:]
    outputs.append((out, err))
  return outputs


def member_dirs(workdir):
  return sorted((workdir / 'members').iterdir())


def test_two_processes_share_a_study_and_survive_kill_9(idx_dir, tmp_path):
  """Each process trains its own half of the sequential members; after a
  kill -9 of both mid-study the same commands resume them, nothing trained
  twice or lost, and the report is written once, when all are done.
  Each member is main.py's run of its recorded config, byte for byte."""
  shared = tmp_path / 'shared'
  study = ('--seeds=1', '--vary=learning_rate=0.05,0.1')
  processes = start_processes(idx_dir, shared, *study)
  deadline = time.monotonic() + 240
  while not any((m / checkpoints.CHECKPOINT_DIR / '16' /
                 'commit_success.txt').exists()
                for m in ((shared / 'members').iterdir()
                          if (shared / 'members').is_dir() else [])):
    assert all(p.poll() is None for p in processes), 'ended before the kill'
    assert time.monotonic() < deadline
    time.sleep(0.02)
  for p in processes:
    p.kill()
    p.wait()
  assert not (shared / 'study.md').exists()
  outputs = finish(start_processes(idx_dir, shared, *study))
  assert sum('Wrote ' in out for out, _ in outputs) == 1, outputs
  for i, (_, err) in enumerate(outputs):
    assert f'process {i} of 2 trains members #{i}, #{i + 2}, #{i + 4}' in err
  rows = studies.read_csv(shared / 'study.csv')
  assert len(rows) == 2 and all(r['finished'] == '1' for r in rows)
  for member in member_dirs(shared):
    steps = run_logs.read_steps(member)['step']
    np.testing.assert_array_equal(steps, np.arange(32))  # each step once
    owner = 0 if 'learning_rate-0.05' in member.name else 1  # its index
    trained_by = [i for i, (_, err) in enumerate(outputs)
                  if f'Member {member.name} (sequential)' in err]
    assert trained_by in ([], [owner])  # resumed by its owner alone
  # A member trained, killed and resumed by process 1 is main.py's run of
  # its recorded config, byte for byte.
  member = next(m for m in member_dirs(shared) if 'learning_rate-0.1' in m.name)
  rerun = tmp_path / 'rerun'
  rerun_recorded(member, rerun)
  assert ((rerun / run_logs.STEP_LOG).read_bytes() ==
          (member / run_logs.STEP_LOG).read_bytes())


# tests/stacked_mesh_worker.py's group, as tools/study.py flags.
STACKED_FLAGS = ('--mode=stacked', '--config.num_epochs=1',
                 '--config.warmup_epochs=0.5', '--seeds=1',
                 '--vary=learning_rate=0.05,0.1,0.2')


def test_two_processes_carry_in_the_same_members_at_once(idx_dir, tmp_path,
                                                        mesh_runs):
  """--mode=stacked over two processes with --carry holding a finished
  member: both carry it in at once (the copy is atomic, the second keeps
  the first's), both see the same two members left, and train them as one
  group over both processes' devices."""
  carry = tmp_path / 'carry'
  [first, *_] = member_dirs(mesh_runs / 'one')
  (carry / 'members').mkdir(parents=True)
  shutil.copytree(first, carry / 'members' / first.name,
                  ignore=shutil.ignore_patterns('checkpoints', 'tensorboard'))
  shared = tmp_path / 'shared'
  outputs = finish(start_processes(idx_dir, shared, *STACKED_FLAGS,
                                   f'--carry={carry}'))
  for _, err in outputs:
    assert '1 finished member(s) carried in' in err or (
        'carried in' not in err)  # the other process got there first
    assert '3 members, 2 to train' in err
    assert ('Stacked program of 2 member(s) on 2 device(s) of 2 '
            'process(es)') in err
  rows = studies.read_csv(shared / 'study.csv')
  assert len(rows) == 3 and all(r['finished'] == '1' for r in rows)
  assert ((shared / 'members' / first.name / 'epochs.csv').read_bytes() ==
          (first / 'epochs.csv').read_bytes())
  assert not [p for p in (shared / 'members').iterdir()
              if p.name.startswith('.')]  # no copy left half-way


def test_two_processes_train_a_stacked_group_over_both(idx_dir, tmp_path,
                                                       mesh_runs):
  """--mode=stacked over two processes: one mesh of both processes'
  devices (3 members in 4 slots); the members follow the same group on one
  device."""
  shared = tmp_path / 'shared'
  outputs = finish(start_processes(idx_dir, shared, *STACKED_FLAGS))
  assert ('Stacked program of 3 member(s) on 2 device(s) of 2 process(es): '
          '2 slot(s) per device (1 padding slot(s)') in outputs[0][1]
  assert 'process 0 writes the report' in outputs[1][0]
  alone = mesh_runs / 'one'
  assert [m.name for m in member_dirs(shared)] == [
      m.name for m in member_dirs(alone)]
  for got, want in zip(member_dirs(shared), member_dirs(alone)):
    environment = run_logs.read_config(got)['run_environment']
    assert (environment['processes'], environment['stacked_mesh_devices']) == (
        2, 2)
    # Two slots per device against three on one: the batched convolutions
    # round differently, a few 1e-6 on losses near 0.
    assert_follows_single_run(studies.Member({}, 0, None, got), want,
                              loss_atol=1e-5)
  summary = json.loads((shared / 'study.json').read_text())
  assert [p['n'] for p in summary['points'].values()] == [1, 1, 1]


def test_benchmark_stacked_compares_one_device_with_all(tmp_path):
  output = tmp_path / 'placement.md'
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=2')
  result = subprocess.run(
      [sys.executable, str(PROJECT_DIR / 'tools' / 'benchmark_stacked.py'),
       f'--config={PROJECT_DIR / "configs" / "default.py"}', '--members=3',
       '--steps=2', '--repeats=1', '--config.batch_size=32',
       f'--output={output}'], capture_output=True, text=True, timeout=300,
      env=env, cwd=PROJECT_DIR)
  assert result.returncode == 0, result.stderr[-3000:]
  lines = output.read_text().splitlines()
  assert lines[0].startswith('3 stacked members, 2 steps each time, on cpu')
  assert lines[2] == '| 1 device | 2 devices | 2 devices / 1 device (medians) |'
  assert re.fullmatch(r'\| [\d.]+ / [\d.]+ / [\d.]+ \| [\d.]+ / [\d.]+ / '
                      r'[\d.]+ \| [\d.]+x \|', lines[4]), lines[4]
  folder = subprocess.run(
      [sys.executable, str(PROJECT_DIR / 'tools' / 'benchmark_stacked.py'),
       f'--config={PROJECT_DIR / "configs" / "default.py"}',
       f'--output={tmp_path}'], capture_output=True, text=True, timeout=120)
  assert folder.returncode == 1
  assert folder.stderr.strip().splitlines()[-1] == (
      f'Error: {tmp_path} is a folder; a file is written there: move it '
      'away or name another path.')


def test_stacked_seconds_per_step_divide_by_the_steps_timed(monkeypatch,
                                                           tmp_path):
  """--steps past the epoch's end times the rest of the epoch, and divides
  by the steps it timed (3 steps an epoch: step 0 compiles, 2 are timed)."""
  config = default.get_config()
  config.batch_size, config.eval_batch_size, config.cpu_devices = 32, 32, 1
  data = input_pipeline.synthetic_datasets(96, 'test', test_size=32)
  group = studies.members(config, studies.grid([]), 1, tmp_path)
  clock = iter(range(100))
  monkeypatch.setattr(time, 'perf_counter', lambda: next(clock))
  seconds = studies.stacked_seconds_per_step(
      group, data, studies.member_mesh(jax.devices()[:1]), 1000)
  assert seconds == 0.5  # one clock tick over 2 timed steps
