"""Can a law pick the schedule? docs/claims.md's table of the Multi-Power
Law's optimized schedule, trained (docs/laws/run_benchmark.sh's studies
laws_optimized_lm and laws_optimized_fashion).

Luo et al. (ICLR 2025, arXiv 2503.12811) report that the schedule
minimising their law's predicted final loss outperforms cosine and ends
slightly below WSD. Here `tools/laws_benchmark.py` asks the law, fitted on
the benchmark's fit set, for that schedule per task, and the study trains
it with 5 seeds beside cosine to zero, WSD 1-sqrt 20% and linear to zero.

Decided before any of these studies ran: per task and measure, the
optimized schedule is paired by seed against the best of the three hand-made
schedules by measured mean on that measure (the best is chosen after the
fact, which favours it: a gain over it is conservative). Two measures: the
task's own final metric (validation bits per byte, test accuracy; what a
user trains for) and the law's own target, the final training-loss level
(the mean loss over the last bin of steps after the warmup, as the
benchmark measures it: prediction.measured_final), read from the study's
carried per-step records. The four comparisons are one family; a gain only
where the Holm-adjusted p is below 0.05, otherwise "no detectable gain"
with the smallest difference the study could detect. Until both studies
are in, the family is still the four: a comparison not run yet counts as
its largest p-value (stats.holm's family_size).
"""

import math
import pathlib

from claims.pairing import adjust_family
from claims.pairing import comparison_numbers
from claims.pairing import per_seed
from claims.pairing import table_result
from claims.pairing import trained_interval
from machinery import errors
from machinery import stats
import prediction
import studies
import tasks

# (dataset, benchmark task, the study training its optimized schedule, the
# task's own final metric).
OPTIMIZED_STUDIES = (
    ('SOTU language model', 'language_model', 'laws_optimized_lm',
     tasks.BITS_PER_BYTE),
    ('Fashion-MNIST', 'fashion_mnist', 'laws_optimized_fashion',
     tasks.TEST_ACCURACY))
HAND_MADE = ('cosine_to_zero', 'wsd_1sqrt_20', 'linear_to_zero')


class _Level(tasks.Metric):
  """A training-loss level, printed to 4 decimals as TASK_results.md
  prints it."""

  def format(self, shown_value: float) -> str:
    return f'{shown_value:.4f}'

  def difference(self, value: float) -> str:
    return f'{self.shown(value):+.4f}'


# The law's target: a finished run's final training-loss level (nats), of
# the runs that trained by the task's own metric (the others are counted).
TRAINING_LEVEL = _Level('train_level', 'training-loss level', 'nats',
                        1.0, False, math.inf, (0.0, math.inf),
                        'no finished per-step records')


def optimized_point(task) -> str:
  """The study's config of the law's schedule (docs/laws/run_benchmark.sh)."""
  return f'configs/recorded.py:docs/laws/{task}_optimized.schedule.json'


def hand_made_point(task, name) -> str:
  return f'configs/laws_benchmark.py:{task}:{name}'


def _training_levels(rows, config, records, headline: dict) -> dict:
  """{seed: final training-loss level} of the finished members of
  `config`, from their carried records; None where the run did not train
  by the task's own metric (`headline`: diverged or at chance), as there.

  Raises:
    WorkdirError: a finished member's records are missing or damaged.
  """
  levels = {}
  for row in rows:
    seed = int(row['seed'])
    if row['config'] != config or seed not in headline:
      continue
    if headline[seed] is None:
      levels[seed] = None
      continue
    try:
      run = prediction.load_run(records / row['member'])
    except errors.WorkdirError as e:
      raise errors.WorkdirError(
          f'{records / row["member"]}: no per-step records of a finished '
          f'member ({e})') from None
    levels[seed] = prediction.measured_final(run)
  return levels


def _values(rows, task, metric, records) -> dict:
  """{point: {seed: value}} of the optimized schedule and the hand-made
  three on `metric`: the task's own, or TRAINING_LEVEL of the runs that
  trained by the task's own."""
  points = [optimized_point(task)] + [hand_made_point(task, name)
                                      for name in HAND_MADE]
  own = lambda point, m: per_seed(rows, {'config': point},
                                  'final_test_accuracy', {}, 0.0, m)
  if metric is not TRAINING_LEVEL:
    return {p: own(p, metric) for p in points}
  task_metric = next(m for _, t, _, m in OPTIMIZED_STUDIES if t == task)
  return {p: _training_levels(rows, p, records, own(p, task_metric))
          for p in points}


def _best_hand_made(values: dict, task, metric) -> str | None:
  """The hand-made schedule with the best mean of its trained seeds, or
  None where one has no trained run."""
  means = {}
  for name in HAND_MADE:
    seeds = values[hand_made_point(task, name)]
    trained = [v for v in seeds.values() if v is not None]
    if not trained:
      return None
    means[name] = sum(trained) / len(trained)
  pick = max if metric.higher_is_better else min
  return pick(means, key=means.get)


def optimized_table(studies_dir) -> str:
  """The table of the module docstring: per task and measure, the optimized
  schedule, the best hand-made one and their paired difference, one family.
  """
  studies_dir = pathlib.Path(studies_dir)
  cells = []
  for dataset, task, study, metric in OPTIMIZED_STUDIES:
    csv_path = studies_dir / study / 'study.csv'
    for measure in (metric, TRAINING_LEVEL):
      cell = {'dataset': dataset, 'study': study, 'metric': measure}
      cells.append(cell)
      if not csv_path.is_file():
        cell['result'] = {'status': f'not run yet (docs/studies/{study}/)'}
        continue
      values = _values(studies.read_csv(csv_path), task, measure,
                       studies_dir / 'progress' / study / 'members')
      best = _best_hand_made(values, task, measure)
      cell['values'] = values[optimized_point(task)]
      if best is None:
        cell['result'] = {'status': 'a hand-made schedule has no trained run'}
        continue
      cell['best'] = (best, values[hand_made_point(task, best)])
      cell['result'] = table_result(cell['values'], cell['best'][1], measure)
  # The four comparisons are one family from the start: one not run yet
  # counts, so a verdict never weakens when the other task's study lands.
  adjust_family([cell['result'] for cell in cells], planned=True)
  lines = ['| dataset (study) | measure | the law\'s schedule | the best '
           'hand-made one | difference [95% CI], Holm p | verdict |',
           '|---|---|---|---|---|---|']
  for cell in cells:
    lines.append(_row(cell))
  return '\n'.join(lines) + '\n'


def _row(cell) -> str:
  metric, result = cell['metric'], cell['result']
  head = (f'| {cell["dataset"]} (`{cell["study"]}`) | final {metric.name} '
          f'({metric.unit}, {metric.direction}) |')
  if 'best' not in cell:
    return f'{head} {result["status"]} | | | |'
  name, best = cell['best']
  numbers = comparison_numbers(result, metric, with_unit=True)
  return (f'{head} {trained_interval(cell["values"], metric)} | {name}: '
          f'{trained_interval(best, metric)} | {numbers} '
          f'| {_verdict(result, metric)} |')


def _verdict(result, metric) -> str:
  """'**gain**', '**worse** than the best hand-made one' or 'no detectable
  gain (could detect ±X)'."""
  if result['status'] != 'checked':
    return result['status']
  r = result['result']
  verdict = stats.verdict(r, metric.higher_is_better)
  if verdict == 'better':
    return '**gain**'
  if verdict == 'worse':
    return '**worse** than the best hand-made one'
  if isinstance(r, stats.Difference) and r.test == 't':
    return (f'no detectable gain (could detect ±'
            f'{metric.magnitude(r.detectable)} {metric.difference_unit})')
  return 'no detectable gain'
