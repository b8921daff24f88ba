"""The answer tables of docs/claims.md and the README: every method against
warmup + cosine and the ranking at other peaks, each table one family
(warmup x length is warmup.py's).
"""

import json
import pathlib

import numpy as np

from claims.pairing import adjust_family
from claims.pairing import COSINE
from claims.pairing import detectable_text
from claims.pairing import lm_config
from claims.pairing import outcome
from claims.pairing import per_seed
from claims.pairing import PROJECT_DIR
from claims.pairing import short_comparison
from claims.pairing import table_result
from claims.pairing import trained_interval
from configs import lm as lm_defaults
from machinery import cli
from machinery import errors
from machinery import stats
import studies
import tasks


METHODS = (('warmup + cosine (the seed\'s)', 'default.py'),
           ('constant', 'constant.py'), ('step', 'step.py'),
           ('SGDR', 'sgdr.py'), ('WSD, 1-sqrt cooldown', 'wsd.py'),
           ('linear to zero', 'linear.py'), ('one-cycle', 'onecycle.py'),
           ('schedule-free (SGD; AdamW for the LM)', 'schedule_free.py'))
METHOD_STUDIES = (('MNIST', 'methods_mnist'),
                  ('Fashion-MNIST', 'methods_fashion'))
# The language model's column: each row's method in its own config file,
# and cosine to 10% of the peak, the common LLM default, which the image
# task has no row of.
LM_STUDY = ('SOTU language model', 'methods_lm')
LM_METHODS = {'warmup + cosine (the seed\'s)': 'lm.py',
              'constant': 'lm_constant.py', 'step': 'lm_step.py',
              'SGDR': 'lm_sgdr.py', 'WSD, 1-sqrt cooldown': 'lm_wsd.py',
              'linear to zero': 'lm_linear.py', 'one-cycle': 'lm_onecycle.py',
              'schedule-free (SGD; AdamW for the LM)': 'lm_schedule_free.py',
              'cosine to 10% of the peak': 'lm_cosine_10.py'}


def methods_table(studies_dir) -> str:
  """The answer table: every method's final test accuracy on each dataset
  (mean, 95% interval) and its paired difference from warmup + cosine,
  with its Holm-adjusted p-value: the image datasets' comparisons are one
  family. The language model's column (final validation loss in bits per
  byte, lower is better; methods_lm) is a family of its own: another
  model, metric and study."""
  columns = [(name, study, None) for name, study in METHOD_STUDIES] + [
      (LM_STUDY[0], LM_STUDY[1], tasks.BITS_PER_BYTE)]
  header = '| method |' + ''.join(
      f' {name}: final test acc. [95% CI] | vs warmup + cosine (pp) '
      '[95% CI], Holm p |' if metric is None else
      f' {name}: final {metric.unit} [95% CI] | vs warmup + cosine '
      f'({metric.unit}) [95% CI], Holm p |' for name, _, metric in columns)
  lines = [header, '|---|' + '---|---|' * len(columns)]
  labels = [label for label, _ in METHODS] + [
      label for label in LM_METHODS if label not in dict(METHODS)]
  cells, families = {}, {'image': [], 'lm': []}
  for label in labels:
    for _, study, metric in columns:
      config_file = (dict(METHODS) if metric is None else LM_METHODS).get(
          label)
      folder = pathlib.Path(studies_dir) / study
      if config_file is None:
        cells[label, study] = ['—', '']
        continue
      if not (folder / 'study.csv').is_file():
        cells[label, study] = ['not run yet', '']
        continue
      rows = studies.read_csv(folder / 'study.csv')
      point = {'config': f'configs/{config_file}'}
      baseline = COSINE if metric is None else {'config': 'configs/lm.py'}
      mine = per_seed(rows, point, 'final_test_accuracy', {}, 0.0, metric)
      cosine = per_seed(rows, baseline, 'final_test_accuracy', {}, 0.0,
                         metric)
      if point == baseline:
        versus = {'status': '(baseline)'}
      else:
        versus = table_result(mine, cosine, metric)
        families['image' if metric is None else 'lm'].append(versus)
      cells[label, study] = [trained_interval(mine, metric), versus]
  for family in families.values():
    adjust_family(family)
  for label in labels:
    row = []
    for _, study, metric in columns:
      value, versus = cells[label, study]
      row += [value, short_comparison(versus, metric) if versus else '']
    lines.append(f'| {label} | ' + ' | '.join(row) + ' |')
  return '\n'.join(lines) + '\n'


# Study 2b: a verdict must not hinge on one peak. The baseline and study 2's
# best other method, each at these multiples of its own peak rate.
PEAK_STUDY = 'methods_fashion'
PEAK_FACTORS = (0.5, 2.0)


def best_other_method(studies_dir, study=PEAK_STUDY) -> str:
  """The config file of the method other than warmup + cosine with the
  highest mean final test accuracy in the published `study`.

  Raises:
    WorkdirError: the study is not published (yet).
  """
  rows = studies.read_csv(pathlib.Path(studies_dir) / study / 'study.csv')
  means = {}
  for _, config_file in METHODS[1:]:
    point = {'config': f'configs/{config_file}'}
    values = [v for v in per_seed(rows, point, 'final_test_accuracy', {},
                                   0.0).values() if v is not None]
    if values:
      means[point['config']] = sum(values) / len(values)
  return max(means, key=means.get)


def peak_study(config_path) -> str:
  """The name of the study of `config_path`'s method at other peaks."""
  return f'peaks_fashion_{pathlib.Path(config_path).stem}'


def peak_multiples(config_path) -> list[float]:
  """PEAK_FACTORS times the learning_rate the method's config file sets."""
  path = pathlib.Path(config_path)
  if not path.is_absolute() and not path.exists():
    path = PROJECT_DIR / path  # one of the project's own config files
  peak = cli.load_config_file(str(path)).learning_rate
  return [factor * peak for factor in PEAK_FACTORS]


def _at_rate(rows, rate):
  """{seed: final test accuracy, None if it did not train} of the finished
  or diverged members at `rate`."""
  values = {}
  for r in rows:
    if abs(float(r['learning_rate']) - rate) <= 1e-9 * rate:
      try:
        values[int(r['seed'])] = outcome(r)
      except KeyError:
        continue
  return values


def peaks_table(studies_dir) -> str:
  """Does the ranking hold at other peaks? The best other method against
  warmup + cosine on Fashion-MNIST at x0.5, x1 and x2 each one's own peak,
  paired by seed (x1 from the methods study; the others from the two peak
  studies of run_all.sh's step 2b). The three comparisons are one family."""
  studies_dir = pathlib.Path(studies_dir)
  lines = ['| peak (x its own) | best other method vs warmup + cosine '
           '(pp) [95% CI], Holm p | verdict |', '|---|---|---|']
  try:
    best = best_other_method(studies_dir)
  except errors.WorkdirError:
    return lines[0] + '\n' + lines[1] + f'\n| all | not run yet '\
        f'(docs/studies/{PEAK_STUDY}/) | |\n'
  pairs = {1.0: _per_seed_pair(studies_dir / PEAK_STUDY, best, None, None)}
  for i, factor in enumerate(PEAK_FACTORS):
    pairs[factor] = _per_seed_pair(
        studies_dir, best, peak_multiples(COSINE['config'])[i],
        peak_multiples(best)[i])
  results = {factor: ({'status': pair} if isinstance(pair, str)
                      else table_result(*pair))
             for factor, pair in pairs.items()}
  return '\n'.join(lines + _peak_rows(
      {f'x{factor:g}': results[factor] for factor in sorted(results)}, best,
      tasks.TEST_ACCURACY)) + '\n'


def _peak_rows(results: dict, best, metric) -> list[str]:
  """A peaks table's rows, {label: result} in order, one family: the best
  other method's paired difference from warmup + cosine and its verdict."""
  adjust_family(list(results.values()))
  lines = []
  for label, result in results.items():
    if result['status'] != 'checked':
      lines.append(f'| {label} | {result["status"]} | |')
      continue
    r = result['result']
    verdict = stats.verdict(r, metric.higher_is_better)
    lines.append(
        f'| {label} | `{best}`: '
        f'{metric.difference_interval(r.mean, r.ci95_low, r.ci95_high)}, '
        f'n={r.n}, {stats.p_text(r.p_holm)} | '
        + (verdict if verdict != 'no detectable difference' else
           f'no detectable difference ({detectable_text(r, metric=metric)})')
        + ' |')
  return lines


# The language model's study 2 (docs/studies/run_lm.sh): warmup + cosine and
# methods_lm's best other method, each at these multiples of its own peak
# (and floor), one study per multiple; x1 is methods_lm itself.
LM_PEAK_FACTORS = ('0.5', '2')
# A constant rate ended below warmup + cosine to zero in methods_lm (x1);
# the x2 study trains it too, to tell whether that verdict hinges on the
# peak.
LM_CONSTANT_PEAK_FACTORS = ('2',)


def best_other_lm_method(studies_dir) -> str:
  """The config name (e.g. 'lm_linear') of the method other than warmup +
  cosine to zero with the lowest mean final loss in the published
  methods_lm (its study.json's means, as run_lm.sh reads them).

  Raises:
    WorkdirError: methods_lm is not published (yet).
  """
  path = pathlib.Path(studies_dir) / LM_STUDY[1] / 'study.json'
  try:
    points = json.loads(path.read_text())['points']
  except (OSError, ValueError, KeyError):
    raise errors.WorkdirError(f'{path} is missing or damaged: '
                              f'{LM_STUDY[1]} is not published yet') from None
  others = {key: point['mean'] for key, point in points.items()
            if key != 'config=configs/lm.py' and point.get('mean') is not None}
  best = min(others, key=others.get)
  return pathlib.Path(best.split('=', 1)[1]).stem


def lm_peaks_table(studies_dir, method=None,
                   factors=LM_PEAK_FACTORS) -> str:
  """Does the language model's ranking hold at other peaks? `method`
  (default: methods_lm's best other method) against warmup + cosine to
  zero at x1 and at `factors` the peak, paired by seed within each; the
  comparisons are one family."""
  studies_dir = pathlib.Path(studies_dir)
  metric = tasks.BITS_PER_BYTE
  lines = [f'| peak (x 2e-3) | {method or "best other method"} vs '
           f'warmup + cosine ({metric.difference_unit}) [95% CI], Holm p | '
           'verdict |', '|---|---|---|']
  try:
    best = method or best_other_lm_method(studies_dir)
  except errors.WorkdirError:
    return '\n'.join(lines) + (f'\n| all | not run yet (docs/studies/'
                               f'{LM_STUDY[1]}/) | |\n')
  pairs = {factor: (LM_COSINE_PEAK_STUDIES[factor], lm_config(best, factor),
                    lm_config('lm', factor)) for factor in ('1', *factors)}
  results = {}
  for factor, (study, point, reference) in pairs.items():
    csv_path = studies_dir / study / 'study.csv'
    if not csv_path.is_file():
      results[factor] = {'status': f'not run yet (docs/studies/{study}/)'}
      continue
    rows = studies.read_csv(csv_path)
    seeds_of = lambda config: per_seed(rows, {'config': config},
                                        'final_test_accuracy', {}, 0.0, metric)
    results[factor] = table_result(seeds_of(point), seeds_of(reference),
                                    metric)
  return '\n'.join(lines + _peak_rows(
      {f'x{factor}': results[factor] for factor in sorted(results, key=float)},
      best, metric)) + '\n'


# Warmup + cosine to zero at each multiple of the reference peak a study of
# run_lm.sh trains it at: x1 is methods_lm's baseline, x0.5 and x2 the peak
# studies', x4 and x8 the large-peak studies' (with the default warmup).
LM_COSINE_PEAK_STUDIES = {'0.5': 'peaks_lm_x0.5', '1': LM_STUDY[1],
                          '2': 'peaks_lm_x2', '4': 'large_peaks_lm_x4',
                          '8': 'large_peaks_lm_x8'}


def lm_cosine_peak_values(studies_dir) -> dict:
  """{factor: {seed: final loss, None where it did not train}} of warmup +
  cosine to zero at each multiple of the reference peak whose study is
  published."""
  values = {}
  for factor, study in LM_COSINE_PEAK_STUDIES.items():
    csv_path = pathlib.Path(studies_dir) / study / 'study.csv'
    if csv_path.is_file():
      values[factor] = per_seed(studies.read_csv(csv_path),
                                {'config': lm_config('lm', factor)},
                                'final_test_accuracy', {}, 0.0,
                                tasks.BITS_PER_BYTE)
  return values


def lm_study_peak(studies_dir) -> str:
  """The multiple of the reference peak at which run_lm.sh's studies 3, 5
  and 7 train: where warmup + cosine to zero ended lowest (its mean final
  loss) among x0.5 to x8, of the multiples where every seed trained. Those
  studies test claims made at tuned peaks, and the reference peak (x1,
  the default then) is not one for cosine (the peak studies say by how
  much); chosen by this rule, fixed before their numbers, not by hand.

  Raises:
    WorkdirError: a peak study is not published yet.
  """
  values = lm_cosine_peak_values(studies_dir)
  missing = [f'docs/studies/{study}/' for factor, study
             in LM_COSINE_PEAK_STUDIES.items() if factor not in values]
  if missing:
    raise errors.WorkdirError(
        f'{", ".join(missing)} {"is" if len(missing) == 1 else "are"} not '
        'published yet: the peak studies choose the peak of the LM studies '
        '3, 5 and 7')
  means = {factor: float(np.mean(list(seeds.values())))
           for factor, seeds in values.items()
           if seeds and None not in seeds.values()}
  if not means:
    raise errors.WorkdirError('warmup + cosine to zero trained on every seed '
                              'at none of the peaks x0.5 to x8')
  return min(means, key=means.get)


def lm_cosine_peaks_table(studies_dir) -> str:
  """Where is warmup + cosine to zero's best peak on the language model?
  Its final loss at every multiple of the reference peak, each paired by
  seed (the same initial parameters and data order in every study) against x1;
  the comparisons are one family. The lowest is where studies 3, 5 and 7
  train (lm_study_peak)."""
  metric = tasks.BITS_PER_BYTE
  reference = lm_defaults.REFERENCE_PEAK
  values = lm_cosine_peak_values(studies_dir)
  results = {factor: {'status': f'not run yet (docs/studies/{study}/)'}
             for factor, study in LM_COSINE_PEAK_STUDIES.items()
             if factor not in values}
  for factor in values:
    if factor != '1':
      results[factor] = (table_result(values[factor], values['1'], metric)
                         if '1' in values else
                         {'status': f'x1 not run yet (docs/studies/'
                                    f'{LM_STUDY[1]}/)'})
  adjust_family(list(results.values()))  # x1 is the reference, not in it
  lines = [f'| peak (x 2e-3) | warmup + cosine to zero: final '
           f'{metric.name} ({metric.unit}) [95% CI] | vs x1 '
           f'({metric.difference_unit}) '
           '[95% CI], Holm p |', '|---|---|---|']
  for factor in LM_COSINE_PEAK_STUDIES:
    label = f'x{factor} ({float(factor) * reference:g})'
    if factor not in values:
      lines.append(f'| {label} | {results[factor]["status"]} | |')
      continue
    lines.append(f'| {label} | {trained_interval(values[factor], metric)} | '
                 + ('(reference)' if factor == '1' else
                    short_comparison(results[factor], metric)) + ' |')
  return '\n'.join(lines) + '\n'


def _per_seed_pair(folder, best, cosine_rate, best_rate):
  """({seed: best's accuracy}, {seed: cosine's}); at the methods study's
  own peaks when the rates are None; a str saying what is missing."""
  if cosine_rate is None:
    rows = studies.read_csv(folder / 'study.csv')
    return (per_seed(rows, {'config': best}, 'final_test_accuracy', {}, 0.0),
            per_seed(rows, COSINE, 'final_test_accuracy', {}, 0.0))
  found = []
  for config_path, rate in ((best, best_rate), (COSINE['config'],
                                                 cosine_rate)):
    study = folder / peak_study(config_path)
    if not (study / 'study.csv').is_file():
      return f'not run yet (docs/studies/{study.name}/)'
    found.append(_at_rate(studies.read_csv(study / 'study.csv'), rate))
  return tuple(found)
