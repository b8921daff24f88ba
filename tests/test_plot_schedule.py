"""tools/plot_schedule.py: the PNG, the key rates, one-line errors."""

import pytest

from runs import png_size
from runs import run_tool


def test_plot_schedule_writes_png_and_prints_key_rates(tmp_path):
  output = tmp_path / 'schedule.png'
  result = run_tool('tools/plot_schedule.py', f'--output={output}',
                    '--config.schedule=sgdr')
  assert result.returncode == 0, result.stderr
  assert png_size(output) == (800, 400)
  lines = result.stdout.splitlines()
  restart = next(line for line in lines if 'restart 1' in line).split()
  assert restart[:3] == ['1872', '4.00', '0.1']  # 4 epochs x 468 steps
  last = next(line for line in lines if line.endswith('last step')).split()
  assert last[0] == '4679' and float(last[2]) < 1e-6


def test_plot_schedule_reports_a_bad_field_in_one_line(tmp_path):
  result = run_tool('tools/plot_schedule.py', f'--output={tmp_path / "s.png"}',
                    '--config.schedule=sgdr', '--config.cycle_epochs=0')
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1] == (
      'Error: config.cycle_epochs=0.0 is invalid: must lie in '
      '[1, num_epochs - warmup_epochs = 9] (the first cycle must fit after '
      'the warmup).')
  assert not (tmp_path / 's.png').exists()


def test_plot_schedule_marks_the_start_of_the_wsd_decay(tmp_path):
  result = run_tool('tools/plot_schedule.py', f'--output={tmp_path / "w.png"}',
                    config='wsd.py')
  assert result.returncode == 0, result.stderr
  lines = result.stdout.splitlines()
  assert 'then 1-sqrt decay to 0 over the last 936 steps' in lines[0]
  start = next(line for line in lines if 'start of decay' in line).split()
  assert start[:3] == ['3744', '8.00', '0.1']
  assert png_size(tmp_path / 'w.png') == (800, 400)


def test_plot_schedule_says_schedule_free(tmp_path):
  result = run_tool('tools/plot_schedule.py', f'--output={tmp_path / "f.png"}',
                    config='schedule_free.py')
  assert result.returncode == 0, result.stderr
  first = result.stdout.splitlines()[0]
  assert 'constant 3' in first and 'schedule-free SGD' in first


@pytest.mark.parametrize('output,message', [
    ('missing/s.png', 'the folder {tmp}/missing does not exist.'),
    ('s.foo', 'has an unknown picture type: end it with one of .png, .svg, '
     '.pdf, .jpg, .jpeg.'),
])
def test_plot_schedule_refuses_an_unwritable_output(tmp_path, output,
                                                    message):
  result = run_tool('tools/plot_schedule.py', f'--output={tmp_path / output}')
  assert result.returncode == 1
  assert 'Traceback' not in result.stderr
  assert result.stderr.strip().splitlines()[-1].endswith(
      message.format(tmp=tmp_path))


@pytest.mark.parametrize('flag,message', [
    ('--config.cycle_mult=1e308', 'config.cycle_mult=1e+308 is invalid'),
    ('--config.num_epochs=100000000', 'config.num_epochs=100000000 is '
     'invalid: must be at most 4588640'),
])
def test_plot_schedule_overflowing_values_are_one_line(tmp_path, flag,
                                                       message):
  result = run_tool('tools/plot_schedule.py', f'--output={tmp_path / "s.png"}',
                    '--config.schedule=sgdr', flag)
  assert result.returncode == 1
  assert 'Traceback' not in result.stderr
  assert message in result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize('args', [
    ('--config.schedule=wsd', '--config.decay_epochs=0.001'),  # one step
    ('--config.schedule=step', '--config.step_epochs=(5, 9.9999)'),  # at T
])
def test_plot_schedule_with_a_key_step_at_the_end(tmp_path, args):
  result = run_tool('tools/plot_schedule.py', f'--output={tmp_path / "k.png"}',
                    *args)
  assert result.returncode == 0, result.stderr[-2000:]
  steps = [int(line.split()[0]) for line in result.stdout.splitlines()
           if line.split() and line.split()[0].isdigit()]
  assert max(steps) == 4679
