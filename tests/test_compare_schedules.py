"""tools/compare_schedules.py: the table and the picture."""

from machinery import run_logs
from runs import png_size
from runs import run_tool


def test_compare_schedules_writes_table_and_png(idx_dir, tmp_path):
  result = run_tool(
      'tools/compare_schedules.py', f'--workdir={tmp_path}', '--target_accuracy=0.5',
      '--config.data_source=idx', f'--config.idx_dir={idx_dir}',
      '--config.num_epochs=2', '--config.batch_size=32',
      '--config.cycle_epochs=1', '--config.allow_download=false')
  assert result.returncode == 0, result.stderr[-2000:]
  table = (tmp_path / 'comparison.md').read_text().splitlines()
  assert table[0].startswith('| schedule | final test acc. | best test acc.')
  rows = [line for line in table if line.startswith('| `')]
  assert [row.split('`')[1] for row in rows] == ['constant', 'warmup_cosine',
                                                 'sgdr']
  for row in rows:
    final = float(row.split('|')[2].strip().rstrip('%'))
    assert 50 < final <= 100
  assert png_size(tmp_path / 'comparison.png') == (800, 500)
  for name in ('constant', 'warmup_cosine', 'sgdr'):
    assert (tmp_path / name / run_logs.EPOCH_LOG).exists()


def test_bad_arguments_are_one_line(tmp_path):
  afile = tmp_path / 'afile'
  afile.write_text('x')
  for args, message in (
      ([f'--workdir={tmp_path}', '--schedules='], 'Error: --schedules is '
       'empty: name at least one, e.g. --schedules=constant,warmup_cosine.'),
      ([f'--workdir={afile}'], f'Error: --workdir={afile} is a file, not a '
       'folder.')):
    result = run_tool('tools/compare_schedules.py', *args)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == message
