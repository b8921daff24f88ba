"""The benchmark's bookkeeping (the measurements themselves are not tests)."""

import json

import numpy as np
import pytest

from machinery import errors
from runs import run_tool
from tools import benchmark


def test_time_to_accuracy_picks_the_first_epoch_at_target():
  curve = [(np.int64(1), np.float64(17.5), np.float64(0.982)),
           (np.int64(2), np.float64(35.0), np.float64(0.991)),
           (np.int64(3), np.float64(52.0), np.float64(0.989))]
  result = benchmark._tta_result(curve, 0.99)  # pylint: disable=protected-access
  assert result['epochs_to_target'] == 2
  assert result['seconds_to_target'] == 35.0
  assert result['final_accuracy'] == 0.989 and result['epochs_run'] == 3
  json.dumps(result)  # the worker prints it as JSON


def test_time_to_accuracy_not_reached():
  result = benchmark._tta_result([(1, 10.0, 0.5)], 0.99)  # pylint: disable=protected-access
  assert result['epochs_to_target'] is None
  assert 'not reached' in benchmark.tta_table({'run': result}, 0.99)


def test_throughput_table_reports_min_median_max_and_ratio():
  def run(images_per_s):
    return {'steps_per_s': images_per_s / 128, 'images_per_s': images_per_s,
            'epoch_s': 60000 / images_per_s, 'compile_s': 1.0,
            'peak_rss_mb': 700.0, 'devices': 2, 'micro_batches': 2}
  seed = [run(v) for v in (1900, 2000, 2100)]
  project = [run(v) for v in (3600, 4000, 4400)]
  table = benchmark.throughput_table(seed, project)
  row = next(line for line in table.splitlines()
             if line.startswith('| images/s'))
  assert row == ('| images/s | 1,900 / 2,000 / 2,100 | 3,600 / 4,000 / 4,400 '
                 '| 2.00x |')
  assert '2 CPU device(s), 2 micro-batch(es)' in table


def test_the_project_is_compared_with_the_fastest_peer_and_the_peak():
  def run(images_per_s):
    return {'steps_per_s': images_per_s / 32, 'images_per_s': images_per_s,
            'epoch_s': 60000 / images_per_s, 'compile_s': 1.0,
            'peak_rss_mb': 700.0, 'devices': 2, 'micro_batches': 1}
  peers = {'PyTorch eager': [run(v) for v in (3800, 3900)],
           'PyTorch torch.compile': [run(v) for v in (4800, 5000)]}
  table = benchmark.throughput_table([run(v) for v in (4400, 4500)],
                                     [run(v) for v in (5800, 6000)], peers,
                                     matmul_peak=274.0)
  lines = table.splitlines()
  assert lines[0].startswith('| metric (min / median / max of 2) | '
                             'seed-style loop | PyTorch eager | PyTorch '
                             'torch.compile | this project (2 CPU device(s)')
  images = next(line for line in lines if line.startswith('| images/s'))
  assert images.endswith('| 1.20x |')  # 5,900 / torch.compile's 4,900
  flops = next(line for line in lines if line.startswith('| GFLOP/s'))
  # 5,900 images/s x 27,411,456 FLOP = 161.7 GFLOP/s
  assert '| 159 / 162 / 164 |' in flops
  share = next(line for line in lines if line.startswith('| share of'))
  assert share.startswith('| share of the matmul peak (274 GFLOP/s) |')
  assert '| 58% / 59% / 60% |' in share
  assert benchmark.FLOPS_PER_IMAGE == 27_411_456


def test_overrides_reach_the_workers_and_bad_ones_stop_at_once(idx_dir,
                                                               tmp_path):
  data = ['--config.data_source=idx', f'--config.idx_dir={idx_dir}',
          '--config.allow_download=false', '--config.eval_batch_size=100']
  # A PyTorch that imports but whose peer crashes (torch.compile did, in
  # its own backward, at batch 64): its column goes, with its error line.
  crashing_torch = tmp_path / 'python'
  crashing_torch.write_text('#!/bin/sh\n[ "$1" = -c ] && exit 0\n'
                            'echo "Traceback (most recent call last):" >&2\n'
                            'echo "AssertionError: expected size 32==32" >&2\n'
                            'exit 1\n')
  crashing_torch.chmod(0o755)
  result = run_tool('tools/benchmark.py', f'--output={tmp_path}',
                    '--repeats=1', '--config.batch_size=64',
                    f'--torch_python={crashing_torch}', *data)
  assert result.returncode == 0, result.stderr[-2000:]
  report = json.loads((tmp_path / 'benchmark.json').read_text())
  by_batch = report['throughput']['64']
  for run in by_batch['seed'] + by_batch['project']:
    assert run['batch_size'] == 64
  assert by_batch['failed'] == {
      name: 'AssertionError: expected size 32==32'
      for name in ('PyTorch eager', 'PyTorch torch.compile')}
  text = (tmp_path / 'benchmark.md').read_text()
  assert ('PyTorch torch.compile failed (no column): `AssertionError: '
          'expected size 32==32`') in text
  bad = run_tool('tools/benchmark.py', f'--output={tmp_path}',
                 '--config.batch_size=0', *data)
  assert bad.returncode == 1
  assert bad.stderr.strip().splitlines()[-1] == (
      'Error: config.batch_size=0 is invalid: must be an integer >= 1.')


def test_only_the_benchmarks_own_runs_are_removed(tmp_path):
  mine = benchmark.fresh_workdir(tmp_path, 'tta_default')
  (mine / 'epochs.csv').write_text('an earlier benchmark run')
  again = benchmark.fresh_workdir(tmp_path, 'tta_default')
  assert sorted(p.name for p in again.iterdir()) == [
      benchmark.MADE_BY_BENCHMARK]
  users = tmp_path / 'tta_fast'
  users.mkdir()
  (users / 'results.txt').write_text('mine')
  with pytest.raises(errors.WorkdirError, match='was not made by the '
                     'benchmark'):
    benchmark.fresh_workdir(tmp_path, 'tta_fast')
  assert (users / 'results.txt').read_text() == 'mine'


def test_bad_outputs_and_configs_are_one_line_and_create_nothing(tmp_path):
  afile = tmp_path / 'afile'
  afile.write_text('x')
  result = run_tool('tools/benchmark.py', f'--output={afile}')
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1] == (
      f'Error: --output={afile} is a file, not a folder.')
  missing = tmp_path / 'new' / 'bench'
  result = run_tool('tools/benchmark.py', f'--output={missing}',
                    '--config.batch_size=0')
  assert result.returncode == 1
  assert not (tmp_path / 'new').exists()


def test_the_language_model_is_benchmarked_in_tokens(text_dir, tmp_path):
  """The same tool on the transformer: tokens/s, GFLOP/s by XLA's count of
  the step, the seed-style loop and the project over the config's steps
  per epoch; time to accuracy (an image-task measure) refused in one
  line."""
  args = [f'--config.text_path={text_dir}', '--config.allow_download=false',
          '--config.context_length=16', '--config.num_layers=1',
          '--config.width=32', '--config.num_heads=2',
          '--config.batch_size=16', '--config.steps_per_epoch=20',
          '--config.cpu_devices=1']
  result = run_tool('tools/benchmark.py', f'--output={tmp_path}',
                    '--repeats=1', *args, config='lm.py')
  assert result.returncode == 0, result.stderr[-2000:]
  report = json.loads((tmp_path / 'benchmark.json').read_text())
  seed, = report['throughput']['16']['seed']
  project, = report['throughput']['16']['project']
  assert project['tokens_per_s'] == pytest.approx(
      16 * project['images_per_s'])
  assert seed['epoch_s'] > 0 and 1e5 < seed['flops_per_example'] < 1e9
  text = (tmp_path / 'benchmark.md').read_text()
  assert '| tokens/s |' in text and "MFLOP per window, XLA's count" in text
  refused = run_tool('tools/benchmark.py', f'--output={tmp_path / "tta"}',
                     '--time_to_accuracy', *args, config='lm.py')
  assert refused.returncode == 1
  assert refused.stderr.strip().splitlines()[-1].startswith(
      'Error: tools/benchmark.py --time_to_accuracy handles '
      'task=image_classification only')


def test_the_torch_peer_gets_the_configs_transformer():
  from configs import lm  # pylint: disable=g-import-not-at-top
  args = benchmark.torch_model_args(lm.get_config())
  assert '--task=language_model' in args and '--layers=4' in args
  assert '--b2=0.95' in args and '--grad_clip_norm=1.0' in args
  assert '--steps=250' in args
  from configs import default  # pylint: disable=g-import-not-at-top
  assert benchmark.torch_model_args(default.get_config()) == []
