"""The warmup x length answer tables of docs/claims.md and the README: the
seed's question on the image tasks (warmup_epochs x num_epochs) and the
language model's study 5 (warmup share x length x Adam's beta2), each
warmup paired by seed against none at the same length, each table one
family; and the language model's warmups against Ma & Yarats's rule of
thumb.
"""

import dataclasses
import math
import pathlib
import re

import numpy as np

from claims.pairing import adjust_family
from claims.pairing import outcome
from claims.pairing import short_comparison
from claims.pairing import table_result
from claims.pairing import trained_interval
from configs import lm as lm_defaults
from machinery import stats
import studies
import tasks

# Study 3, the seed's question: warmup_epochs x num_epochs for warmup +
# cosine, each warmup paired against none at the same num_epochs.
WARMUP_STUDIES = (('MNIST', 'warmup_mnist'),
                  ('Fashion-MNIST', 'warmup_fashion'))


def _by_cell(rows):
  """{(num_epochs, warmup_epochs): {seed: final test accuracy, None if it
  did not train}} of the finished or diverged members."""
  cells = {}
  for row in rows:
    try:
      value = outcome(row)
    except KeyError:
      continue
    key = (int(row['num_epochs']), float(row['warmup_epochs']))
    cells.setdefault(key, {})[int(row['seed'])] = value
  return cells


def warmup_table(studies_dir, study) -> str:
  """How much warmup, how many epochs? One row per num_epochs, one column
  per warmup: the mean final test accuracy [95% CI] and, for a warmup,
  its paired difference from no warmup at the same num_epochs with its
  Holm-adjusted p-value (the table's comparisons are one family); then per
  num_epochs the warmups that differ detectably."""
  folder = pathlib.Path(studies_dir) / study
  if not (folder / 'study.csv').is_file():
    return f'Not run yet (docs/studies/{study}/).\n'
  return _warmup_grid(_by_cell(studies.read_csv(folder / 'study.csv')),
                      WarmupGrid('num_epochs', 'epochs', 'epochs', ' (epochs)',
                                 tasks.TEST_ACCURACY))


@dataclasses.dataclass(frozen=True)
class WarmupGrid:
  """How a warmup x length table reads: its row field, the length's unit,
  the warmup's unit ('epochs', or '%' of the run), the unit's suffix in a
  column's name, and the metric."""
  row_field: str
  length_unit: str
  warmup_unit: str
  suffix: str
  metric: tasks.Metric

  def warmup(self, value) -> str:
    return f'{value:g}%' if self.warmup_unit == '%' else f'{value:g}'


def _warmup_results(cells, metric) -> tuple:
  """(lengths, warmups, {(length, warmup): result}) of `cells`: each warmup
  against none at the same length, the comparisons one family."""
  lengths = sorted({length for length, _ in cells})
  warmups = sorted({warmup for _, warmup in cells})
  results = {(length, warmup): table_result(
      cells.get((length, warmup), {}), cells.get((length, 0.0), {}), metric)
             for length in lengths for warmup in warmups if warmup != 0.0}
  adjust_family(list(results.values()))
  return lengths, warmups, results


def _detectable(warmup: str, result, metric) -> str:
  """'25% (better, -0.166 bits per byte, p=0.005)': a detectable
  comparison of a warmup, as the lines under a table list it."""
  return (f'{warmup} ({stats.verdict(result, metric.higher_is_better)}, '
          f'{metric.difference(result.mean)} {metric.difference_unit}, '
          f'{stats.p_text(result.p_holm)})')


def _warmup_grid(cells, grid: WarmupGrid) -> str:
  """The table of `cells` {(length, warmup): {seed: value}}: the comparisons
  of each warmup with none at the same length are one family."""
  metric = grid.metric
  budgets, warmups, results = _warmup_results(cells, metric)
  column = ((lambda w: f'warmup {w:g} epochs') if grid.warmup_unit != '%'
            else (lambda w: f'warmup {w:g}%'))
  lines = [f'| {grid.row_field} | ' + ' | '.join(
      column(w) for w in warmups) + ' |',
           '|---|' + '---|' * len(warmups)]
  detectable = []
  for epochs in budgets:
    row, found = [], []
    for warmup in warmups:
      text = trained_interval(cells.get((epochs, warmup), {}), metric)
      if warmup != 0.0:
        result = results[epochs, warmup]
        text += '<br>' + short_comparison(result, metric)
        if result['status'] == 'checked' and stats.verdict(
            result['result'], metric.higher_is_better) != (
                'no detectable difference'):
          found.append(_detectable(grid.warmup(warmup), result['result'],
                                   metric))
      row.append(text)
    lines.append(f'| {epochs} | ' + ' | '.join(row) + ' |')
    seeds = len(cells.get((epochs, 0.0), {}))
    detectable.append(
        f'- {epochs} {grid.length_unit}: ' + (
            ', '.join(found) if found else
            f'no warmup differs detectably from none with {seeds} seeds'))
  return ('\n'.join(lines) + f'\n\nWarmups{grid.suffix} that differ '
          'detectably from no warmup (Holm-adjusted p below 0.05 in the '
          f'table\'s family of {len(results)}), per {grid.row_field}:\n\n'
          + '\n'.join(detectable) + '\n')


# The language model's study 5 (docs/studies/run_lm.sh): warmup, a share of
# the run, x length x Adam's beta2; each (beta2, length) a study of its own,
# one table (one family) per beta2.
LM_WARMUP_B2 = ('0.95', '0.999')
LM_WARMUP_EPOCHS = (2, 4)
LM_WARMUP_GRID = WarmupGrid('epochs', 'epochs', '%', ' (% of the run)',
                            tasks.BITS_PER_BYTE)


def lm_warmup_study(b2, epochs) -> str:
  return f'warmup_lm_b2_{b2}_{epochs}ep'


def _lm_warmup_share(config: str) -> float:
  """configs/lm_variant.py:lm:warmup=0.025:epochs=2:b2=0.95 -> 2.5 (%)."""
  [share] = re.findall(r':warmup=([0-9.]+)', config)
  return round(100 * float(share), 6)


def lm_warmup_cells(studies_dir, b2) -> dict:
  """{(epochs, warmup %): {seed: final loss, None where it did not train}}
  of beta2's published studies (a length not published yet is absent)."""
  cells = {}
  for epochs in LM_WARMUP_EPOCHS:
    csv_path = (pathlib.Path(studies_dir) / lm_warmup_study(b2, epochs)
                / 'study.csv')
    if not csv_path.is_file():
      continue
    for row in studies.read_csv(csv_path):
      try:
        value = outcome(row, tasks.BITS_PER_BYTE)
      except KeyError:
        continue
      key = (epochs, _lm_warmup_share(row['config']))
      cells.setdefault(key, {})[int(row['seed'])] = value
  return cells


def lm_warmup_table(studies_dir, b2) -> str:
  """beta2's warmup x length table (bits per byte, lower is better), or
  which studies are not run yet."""
  missing = [lm_warmup_study(b2, e) for e in LM_WARMUP_EPOCHS
             if not (pathlib.Path(studies_dir) / lm_warmup_study(b2, e)
                     / 'study.csv').is_file()]
  cells = lm_warmup_cells(studies_dir, b2)
  text = _warmup_grid(cells, LM_WARMUP_GRID) if cells else ''
  if missing:
    text += ('\n' if text else '') + 'Not run yet: ' + ', '.join(
        f'docs/studies/{name}/' for name in missing) + '.\n'
  return text


def lm_warmup_heatmap(studies_dir, b2):
  """plots.plot_heatmap's (x, xs, y, ys, cells) of beta2's published
  lengths: each cell the mean final loss of the seeds that trained, its 95%
  half-width and whether it differs detectably from no warmup (its
  table's family); None before any is published."""
  cells = lm_warmup_cells(studies_dir, b2)
  if not cells:
    return None
  metric = LM_WARMUP_GRID.metric
  lengths, shares, results = _warmup_results(cells, metric)

  def cell(epochs, share):
    trained = [v for v in cells.get((epochs, share), {}).values()
               if v is not None]
    interval = stats.mean_interval(trained, bounds=metric.bounds)
    result = results.get((epochs, share), {'status': 'baseline'})
    return (interval.mean, (interval.ci95_high - interval.ci95_low) / 2,
            result['status'] == 'checked' and stats.verdict(
                result['result'], metric.higher_is_better) != (
                    'no detectable difference'))
  return ('warmup (% of the run)', shares, 'epochs', lengths,
          [[cell(e, w) for w in shares] for e in lengths])


def rule_of_thumb_steps(b2) -> float:
  """Ma & Yarats (AAAI 2021, arXiv 1910.04209): warmup of about
  2 / (1 - beta2) steps."""
  return 2 / (1 - float(b2))


def lm_best_warmups(studies_dir) -> list[str]:
  """Per beta2 and length, the warmup share with the lowest mean final
  loss, beside the rule of thumb's share of that run."""
  steps_per_epoch = lm_defaults.get_config().steps_per_epoch
  lines = []
  for b2 in LM_WARMUP_B2:
    cells = lm_warmup_cells(studies_dir, b2)
    for epochs in sorted({e for e, _ in cells}):
      means = {w: float(np.mean([v for v in seeds.values() if v is not None]))
               for (e, w), seeds in cells.items()
               if e == epochs and any(v is not None for v in seeds.values())}
      best = min(means, key=means.get)
      rule = 100 * rule_of_thumb_steps(b2) / (epochs * steps_per_epoch)
      lines.append(f'beta2 {b2}, {epochs} epochs: lowest mean at warmup '
                   f'{best:g}% of the run; the rule of thumb says '
                   f'{rule_of_thumb_steps(b2):,.0f} steps, {rule:g}% of it')
  return lines


def _rule_of_thumb_share(b2, epochs, shares):
  """The grid's warmup share (%) nearest the rule of thumb's steps (nearest
  in log steps: 50 is nearer 40 than 25 is), or None where the rule's
  warmup is longer than the grid's largest: there the grid has no cell to
  stand for it."""
  steps = epochs * lm_defaults.get_config().steps_per_epoch
  rule = rule_of_thumb_steps(b2)
  warmups = [share for share in shares if share > 0]
  if not warmups or rule > max(warmups) / 100 * steps:
    return None
  return min(warmups, key=lambda share: abs(math.log(share / 100 * steps
                                                     / rule)))


def lm_rule_of_thumb_table(studies_dir) -> str:
  """Does the rule of thumb pick the best warmup? Per beta2 and length
  published, every warmup of the grid against the grid's warmup nearest
  2 / (1 - beta2) steps, paired by seed; all of them one family. The
  comparisons against no warmup are lm_warmup_table's, not repeated here;
  a rule longer than the grid's largest warmup is said so, not tested.
  Empty before any study is published."""
  metric = LM_WARMUP_GRID.metric
  rows, results, shares = [], {}, set()
  for b2 in LM_WARMUP_B2:
    cells = lm_warmup_cells(studies_dir, b2)
    grid = sorted({share for _, share in cells})
    shares.update(share for share in grid if share > 0)
    for epochs in sorted({e for e, _ in cells}):
      rule_share = _rule_of_thumb_share(b2, epochs, grid)
      rows.append((b2, epochs, rule_share, grid[-1]))
      for share in grid:
        if rule_share is not None and share not in (0.0, rule_share):
          results[b2, epochs, share] = table_result(
              cells.get((epochs, share), {}),
              cells.get((epochs, rule_share), {}), metric)
  if not rows:
    return ''
  adjust_family(list(results.values()))
  shares = sorted(shares)
  steps_per_epoch = lm_defaults.get_config().steps_per_epoch
  lines = ['| β2, epochs | the rule of thumb\'s warmup | ' + ' | '.join(
      f'warmup {share:g}%' for share in shares) + ' |',
           '|---|---|' + '---|' * len(shares)]
  detectable = []
  for b2, epochs, rule_share, largest in rows:
    steps = epochs * steps_per_epoch
    rule = rule_of_thumb_steps(b2)
    label = f'{rule:,.0f} steps, {100 * rule / steps:g}% of the run'
    if rule_share is None:
      lines.append(f'| {b2}, {epochs} | {label}: longer than the grid\'s '
                   f'largest ({largest / 100 * steps:,.0f} steps), not tested |'
                   + ' — |' * len(shares))
      continue
    row, found = [], []
    for share in shares:
      if share == rule_share:
        row.append('(the rule\'s cell)')
        continue
      result = results.get((b2, epochs, share))
      row.append(short_comparison(result, metric) if result else '—')
      if result and result['status'] == 'checked' and stats.verdict(
          result['result'], metric.higher_is_better) != (
              'no detectable difference'):
        found.append(_detectable(f'{share:g}%', result['result'], metric))
    lines.append(f'| {b2}, {epochs} | {label}: the {rule_share:g}% cell '
                 f'({rule_share / 100 * steps:,.0f} steps) | '
                 + ' | '.join(row) + ' |')
    detectable.append(
        f'- β2 {b2}, {epochs} epochs: ' + (', '.join(found) if found else
                                           'none'))
  return ('\n'.join(lines) + '\n\nWarmups that differ detectably from the '
          'rule of thumb\'s cell (Holm-adjusted p below 0.05 in the table\'s '
          f'family of {len(results)}):\n\n' + '\n'.join(detectable) + '\n')
