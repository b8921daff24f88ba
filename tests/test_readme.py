"""The README's answer section says what the committed data says: every
number it states is in a page generated from the committed study files
(docs/claims.md, each study's study.md, each budget sweep's budgets.md),
and its methods table is the generated one."""

import json
import re

from conftest import PROJECT_DIR

README = PROJECT_DIR / 'README.md'
ANSWER_START = '## The answer so far'
ANSWER_END = '## Read on'
# The numbers a study produces: signed differences (+0.14, −0.63),
# accuracies (99.26%) and p-values (p=0.022, p<0.001).
NUMBER = re.compile(r'[+-]\d+\.\d+|\d+\.\d+%|p[=<]\d\.\d+')


def answer_section() -> str:
  text = README.read_text()
  return text[text.index(ANSWER_START):text.index(ANSWER_END)]


def generated_pages() -> str:
  pages = [PROJECT_DIR / 'docs' / 'claims.md',
           *sorted((PROJECT_DIR / 'docs' / 'studies').glob('*/study.md')),
           *sorted((PROJECT_DIR / 'docs' / 'budgets').glob('*/budgets.md'))]
  return '\n'.join(page.read_text() for page in pages)


def numbers(text) -> set:
  return set(NUMBER.findall(text.replace('\u2212', '-')))


def missing(section) -> list:
  """The numbers `section` states that no generated page has."""
  return sorted(numbers(section) - numbers(generated_pages()))


def test_every_number_of_the_answer_is_in_a_generated_page():
  section = answer_section()
  assert len(numbers(section)) > 50  # it does state the studies' numbers
  assert not missing(section), 'README numbers no generated page has'


def test_the_methods_table_is_the_generated_one():
  claims_page = (PROJECT_DIR / 'docs' / 'claims.md').read_text()
  start = claims_page.index('| method | MNIST')
  table = claims_page[start:claims_page.index('\n\n', start)]
  assert table in answer_section()


def test_a_number_no_page_has_is_caught():
  """Not vacuous: one changed number in the prose is found, with the
  README's minus sign."""
  section = answer_section()
  assert '+0.65 [+0.50, +0.80]' in section
  changed = section.replace('+0.65 [+0.50, +0.80]', '+0.65 [+0.50, \u22127.77]')
  assert missing(changed) == ['-7.77']


def lm_epoch_lines(text) -> list:
  return [line for line in text.splitlines()
          if line.startswith('epoch:') and 'bits/byte' in line]


def test_the_language_model_numbers_are_the_committed_run():
  """The LM's log lines in the README and docs/lm.md, and the final bits
  per byte the prose states, are those of docs/lm_run/epochs.csv."""
  import math  # pylint: disable=g-import-not-at-top
  from machinery import run_logs  # pylint: disable=g-import-not-at-top
  epochs = run_logs.read_epochs(PROJECT_DIR / 'docs' / 'lm_run')
  bits = lambda nats: f'{nats / math.log(2):.3f}'
  expected = {
      int(e): (f'train_loss: {t:.4f} ({bits(t)} bits/byte), val_loss: '
               f'{v:.4f} ({bits(v)} bits/byte), val_accuracy: {100 * a:.2f}')
      for e, t, v, a in zip(epochs['epoch'], epochs['train_loss'],
                            epochs['test_loss'], epochs['test_accuracy'])}
  lm_page = (PROJECT_DIR / 'docs' / 'lm.md').read_text()
  for text in (README.read_text(), lm_page):
    lines = lm_epoch_lines(text)
    assert lines
    for line in lines:
      epoch = int(line.split(',')[0].split(':')[1])
      assert expected[epoch] in line
    final = bits(epochs['test_loss'][-1])
    assert f'{final} bits per byte' in text
  assert len(lm_epoch_lines(lm_page)) == len(epochs['epoch'])


def test_the_samples_state_the_committed_runs_bits_at_their_steps():
  """docs/lm.md's samples of the default run (tools/sample.py at its last
  checkpoint and at --step=500): the bits per byte the section gives for
  them are docs/lm_run's at those steps."""
  import math  # pylint: disable=g-import-not-at-top
  from machinery import run_logs  # pylint: disable=g-import-not-at-top
  epochs = run_logs.read_epochs(PROJECT_DIR / 'docs' / 'lm_run')
  bits = {int(step): loss / math.log(2)
          for step, loss in zip(epochs['step'], epochs['test_loss'])}
  page = (PROJECT_DIR / 'docs' / 'lm.md').read_text()
  section = page.split('## What it writes')[1].split('\n## ')[0]
  assert f'--step=500`, at the end of epoch 2 ({bits[500]:.2f} bits per' in (
      ' '.join(section.split()))
  assert f'At {bits[1000]:.2f} bits per byte' in ' '.join(section.split())
  assert max(bits) == 1000


def test_the_committed_language_model_run_is_the_default_run():
  """docs/lm_run (the README's log lines and picture) is the run of
  configs/lm.py as it is now, field for field: a changed default (its
  peak became 4e-3) needs a new committed run."""
  import json  # pylint: disable=g-import-not-at-top
  from configs import lm  # pylint: disable=g-import-not-at-top
  from studies import records  # pylint: disable=g-import-not-at-top
  recorded = json.loads(
      (PROJECT_DIR / 'docs' / 'lm_run' / 'config.json').read_text())
  assert records.is_same_run(recorded, lm.get_config())


def test_the_language_model_size_is_the_model_of_configs_lm():
  import jax  # pylint: disable=g-import-not-at-top
  from configs import lm  # pylint: disable=g-import-not-at-top
  import models  # pylint: disable=g-import-not-at-top
  import tasks  # pylint: disable=g-import-not-at-top
  config = lm.get_config()
  task = tasks.task_of(config)
  shapes = jax.eval_shape(task.create_model(config).init, jax.random.key(0),
                          task.example_input(config))
  count = f'{models.parameter_count(shapes["params"]):,}'
  assert count == '875,520'
  assert f'{count} parameters' in README.read_text()
  assert f'{config.batch_size * config.context_length:,} tokens' in (
      README.read_text())


def benchmark_row(path) -> list:
  """docs/lm.md's row of a committed LM benchmark: the medians of
  tokens/s (this project, PyTorch eager and compiled, the seed-style
  loop), this project over the fastest PyTorch, and its share of the
  matmul peak (the median of the run's peak measurements)."""
  import json  # pylint: disable=g-import-not-at-top
  import statistics  # pylint: disable=g-import-not-at-top
  report = json.loads(path.read_text())
  (loops,) = report['throughput'].values()
  median = {name: statistics.median(run['tokens_per_s'] for run in runs)
            for name, runs in loops.items() if name != 'failed'}
  torch = max(median['PyTorch eager'], median['PyTorch torch.compile'])
  peak = statistics.median(report['matmul_peak_gflops'])
  gflops = statistics.median(run['gflops'] for run in loops['project'])
  return [f'{median["project"]:,.0f} tokens/s',
          f'{median["PyTorch eager"]:,.0f}',
          f'{median["PyTorch torch.compile"]:,.0f}', f'{median["seed"]:,.0f}',
          f'**{median["project"] / torch:.2f}x**',
          f'{gflops / peak:.0%}', f'of {peak:.0f} GFLOP/s']


def test_the_lm_benchmark_table_is_the_committed_output():
  page = (PROJECT_DIR / 'docs' / 'lm.md').read_text().splitlines()
  for prefix, name in (('| default (', 'benchmark_lm.json'),
                       ('| 4x the width', 'benchmark_lm_width512.json')):
    (row,) = [line for line in page if line.startswith(prefix)]
    cells = benchmark_row(PROJECT_DIR / 'docs' / name)
    for cell in cells:
      assert cell in row, (name, cell)
    assert cells[4] in README.read_text()  # the ratio, bold in both


def test_every_number_of_the_language_models_results_is_generated():
  """docs/lm.md's results section states only numbers the generated pages
  (docs/claims.md, the studies' study.md) have."""
  page = (PROJECT_DIR / 'docs' / 'lm.md').read_text()
  start = page.index('## Results')
  section = page[start:page.index('\n## ', start + 1)]
  assert len(numbers(section)) > 10
  assert not missing(section), 'docs/lm.md numbers no generated page has'


LAWS_PAGE = PROJECT_DIR / 'docs' / 'laws.md'


def laws_results_section() -> str:
  page = LAWS_PAGE.read_text()
  return page[page.index('## Results'):]


def committed_laws_results() -> list:
  return sorted((PROJECT_DIR / 'docs' / 'laws').glob('*_results.md'))


def test_the_laws_results_are_the_committed_output():
  """docs/laws.md shows each measured task's docs/laws/TASK_results.md
  (tools/laws_benchmark.py's output), all but its heading, word for word."""
  section = laws_results_section()
  assert committed_laws_results(), 'no task of the benchmark is measured'
  for path in committed_laws_results():
    body = path.read_text().strip().split('\n', 2)[2]
    assert body in section, path.name
    task = path.name.removesuffix('_results.md')
    for picture in ('predicted', 'curves'):
      assert f'(laws/{task}_{picture}.png)' in section


def json_roundings(value, out=None) -> set:
  """Every float of a results.json but its per-bin curves (thousands of
  values: nearly any level would be one), written to 1 to 4 decimals."""
  out = set() if out is None else out
  if isinstance(value, dict):
    value = [v for k, v in value.items() if k != 'curve']
  if isinstance(value, list):
    for item in value:
      json_roundings(item, out)
  elif isinstance(value, float):
    out.update(f'{value:.{digits}f}' for digits in range(1, 5))
  return out


# A level or a loss written to 3 or 4 decimals (1.2422, 0.874).
LEVEL = re.compile(r'(?<![\d.])\d+\.\d{3,4}(?!\d)')


def laws_numbers_missing(section) -> list:
  """The numbers of `section` that neither the generated pages (with the
  benchmark's tables; docs/claims.md has the optimized schedules' study)
  nor, for a level, a committed results.json has."""
  tables = '\n'.join(p.read_text() for p in committed_laws_results())
  stated = numbers(section) - numbers(generated_pages() + tables)
  committed = set()
  for path in (PROJECT_DIR / 'docs' / 'laws').glob('*_results.json'):
    json_roundings(json.loads(path.read_text()), committed)
  levels = (set(LEVEL.findall(section)) - committed
            - set(LEVEL.findall(tables + generated_pages())))
  return sorted(stated | levels)


def test_every_number_of_the_laws_results_is_committed():
  section = laws_results_section()
  assert len(LEVEL.findall(section)) > 5
  assert not laws_numbers_missing(section), 'numbers no committed file has'
  # Not vacuous: a changed level or signed number is caught.
  assert '1.2422' in section and '−0.17' in section
  assert laws_numbers_missing(section.replace('1.2422', '1.2423')) == [
      '1.2423']
  assert laws_numbers_missing(section.replace('−0.17', '−0.173')) == [
      '-0.173']


def test_the_readmes_laws_line_states_the_committed_verdicts():
  [line] = [l for l in README.read_text().splitlines()
            if l.startswith('| [docs/laws.md]')]
  for task, label in (('language_model', 'LM'),
                      ('fashion_mnist', 'Fashion-MNIST')):
    result = json.loads((PROJECT_DIR / 'docs' / 'laws' /
                         f'{task}_results.json').read_text())
    mpl = result[task]['laws']['multi_power']
    right = round(mpl['ranking_accuracy'] * mpl['separable_pairs'])
    assert f'{right} of {mpl["separable_pairs"]} ({label})' in line
    assert f'{mpl["error_in_std_median"]:.1f} ({label})' in line
    assert mpl['pick'] == mpl['best']
  assert 'picks the measured best of that length on both tasks' in line
  rows = [l for l in (PROJECT_DIR / 'docs' / 'claims.md').read_text()
          .splitlines() if l.startswith('| SOTU language model (`laws_'
                                        'optimized_lm`) | final validation')
          or l.startswith('| Fashion-MNIST (`laws_optimized_fashion`) |')]
  lm, *fashion = rows
  assert '| wsd_1sqrt_20: ' in lm and lm.endswith('| **gain** |')
  assert ' -0.003 [' in lm and 'beats the best hand-made one by 0.003 ' in line
  assert len(fashion) == 2 and all(
      '| no detectable gain (could detect' in row for row in fashion)
  assert 'no detectable gain on Fashion-MNIST' in line
