"""Claims from the literature, checked against this project's studies.

Each claim is one entry of CLAIMS: what its authors found and where, the
study metric that tests it here, and per dataset the published study
(docs/studies/<name>/) and the two grid points to pair by seed. `check`
reads the study's committed files alone (study.csv, study_epochs.csv), so
the table is rebuilt without training: `tools/claims.py`.

Our verdict follows the project's rule: a paired 95% Student-t interval
over the same seeds (same initial parameters and data order); "better" or
"worse" only when it excludes zero, otherwise "no detectable difference
with N seeds". A study not run yet is listed as such, never guessed.
"""

import dataclasses
import pathlib

from machinery import cli
from machinery import errors
from machinery import stats
import studies

COSINE = {'config': 'configs/default.py'}
# The claims name config files relative to the project, wherever the tool
# is run from.
PROJECT_DIR = pathlib.Path(__file__).resolve().parent


@dataclasses.dataclass(frozen=True)
class Comparison:
  """Point `point` against point `reference` of the study `study`."""
  dataset: str
  study: str
  point: dict
  reference: dict
  target: float = 0.0  # for 'epochs_to_target'


@dataclasses.dataclass(frozen=True)
class Claim:
  text: str
  source: str          # the paper and its setting
  metric: str          # 'final_test_accuracy' or 'epochs_to_target'
  comparisons: tuple
  higher_is_better: bool = True


def _methods(config_file, metric='final_test_accuracy'):
  """The claim's method against warmup + cosine in the two methods studies."""
  targets = {'methods_mnist': 0.99, 'methods_fashion': 0.90}
  return tuple(
      Comparison(dataset, study, {'config': f'configs/{config_file}'}, COSINE,
                 targets[study] if metric == 'epochs_to_target' else 0.0)
      for dataset, study in (('MNIST', 'methods_mnist'),
                             ('Fashion-MNIST', 'methods_fashion')))


def _warmup_at(peak):
  return Comparison('MNIST', 'warmup_peaks_mnist',
                    {'warmup_epochs': '1.0', 'learning_rate': str(peak)},
                    {'warmup_epochs': '0.0', 'learning_rate': str(peak)})


CLAIMS = (
    Claim('WSD with a short 1-sqrt cooldown matches cosine',
          'Hägele et al. 2024, arXiv 2405.18392 (language-model '
          'pretraining, AdamW)',
          'final_test_accuracy', _methods('wsd.py')),
    Claim('Linear decay to zero is at least as good as cosine',
          'Bergsma et al. 2025, arXiv 2502.15938 (language models, '
          'AdamW)', 'final_test_accuracy', _methods('linear.py')),
    Claim('Schedule-free SGD matches a tuned decaying schedule',
          'Defazio et al. 2024, arXiv 2405.15682 (image and language '
          'benchmarks, the decaying schedule tuned)', 'final_test_accuracy',
          _methods('schedule_free.py')),
    Claim('Warm restarts reach a target accuracy earlier',
          'Loshchilov & Hutter 2017, SGDR, ICLR (WRN on CIFAR-10/100)',
          'epochs_to_target', _methods('sgdr.py', 'epochs_to_target'),
          higher_is_better=False),
    Claim('Warmup matters at large peak rates',
          'Goyal et al. 2017, arXiv 1706.02677 (ResNet-50 on '
          'ImageNet, batch 8k, linear scaling of the peak)',
          'final_test_accuracy',
          (_warmup_at(0.1), _warmup_at(0.4), _warmup_at(0.8))),
)


def _matches(row, point):
  return all(row.get(field) == value for field, value in point.items())


def _per_seed(rows, point, metric, epochs, target):
  """{seed: value} of the finished members of `point`."""
  values = {}
  for row in rows:
    if not _matches(row, point) or not studies.counts(row):
      continue
    if metric == 'epochs_to_target':
      reached = [e for e, a in epochs.get(row['member'], []) if a >= target]
      if reached:
        values[int(row['seed'])] = float(min(reached))
    else:
      values[int(row['seed'])] = float(row[metric])
  return values


def check(claim: Claim, comparison: Comparison, studies_dir) -> dict:
  """The paired difference (point - reference) over the seeds where both
  have a value, and the verdict in the claim's terms; or why there is none.
  """
  folder = pathlib.Path(studies_dir) / comparison.study
  if not (folder / 'study.csv').is_file():
    return {'status': f'not run yet (docs/studies/{comparison.study}/)'}
  rows = studies.read_csv(folder / 'study.csv')
  epochs = {}
  if claim.metric == 'epochs_to_target':
    for r in studies.read_csv(folder / 'study_epochs.csv'):
      epochs.setdefault(r['member'], []).append(
          (int(r['epoch']), float(r['test_accuracy'])))
  mine = _per_seed(rows, comparison.point, claim.metric, epochs,
                   comparison.target)
  theirs = _per_seed(rows, comparison.reference, claim.metric, epochs,
                     comparison.target)
  n, difference = _paired(mine, theirs)
  if difference is None:
    return {'status': f'{n} paired seed(s): no interval'}
  verdict = stats.verdict(difference)
  if not claim.higher_is_better and verdict != 'no detectable difference':
    verdict = 'worse' if verdict == 'better' else 'better'
  return {'status': 'checked', 'n': n, 'verdict': verdict,
          'difference': difference.as_dict()}


def _paired(mine: dict, theirs: dict):
  """(seeds both have, their paired difference mine - theirs), the
  difference None below 2 seeds (no interval)."""
  seeds = sorted(set(mine) & set(theirs))
  if len(seeds) < 2:
    return len(seeds), None
  return len(seeds), stats.paired_difference([mine[s] for s in seeds],
                                             [theirs[s] for s in seeds])


def _describe(point):
  return ', '.join(f'{field}={value}' for field, value in point.items())


def _cell(claim, result):
  if result['status'] != 'checked':
    return result['status'], ''
  d = result['difference']
  scale, unit = ((100, 'pp') if claim.metric != 'epochs_to_target'
                 else (1, 'epochs'))
  numbers = (f'{scale * d["mean"]:+.2f} {unit} [{scale * d["ci95_low"]:+.2f}, '
             f'{scale * d["ci95_high"]:+.2f}], n={result["n"]}')
  word = {'better': 'better', 'worse': 'worse'}.get(result['verdict'])
  verdict = (word if word else
             f'no detectable difference with {result["n"]} seeds')
  return numbers, verdict


METHODS = (('warmup + cosine (the seed\'s)', 'default.py'),
           ('constant', 'constant.py'), ('step', 'step.py'),
           ('SGDR', 'sgdr.py'), ('WSD, 1-sqrt cooldown', 'wsd.py'),
           ('linear to zero', 'linear.py'), ('one-cycle', 'onecycle.py'),
           ('schedule-free SGD', 'schedule_free.py'))
METHOD_STUDIES = (('MNIST', 'methods_mnist'),
                  ('Fashion-MNIST', 'methods_fashion'))


def methods_table(studies_dir) -> str:
  """The answer table: every method's final test accuracy on each dataset
  (mean, 95% interval) and its paired difference from warmup + cosine."""
  header = '| method |' + ''.join(
      f' {name}: final test acc. [95% CI] | vs warmup + cosine (pp) |'
      for name, _ in METHOD_STUDIES)
  lines = [header, '|---|' + '---|---|' * len(METHOD_STUDIES)]
  for label, config_file in METHODS:
    cells = []
    for _, study in METHOD_STUDIES:
      folder = pathlib.Path(studies_dir) / study
      if not (folder / 'study.csv').is_file():
        cells += ['not run yet', '']
        continue
      rows = studies.read_csv(folder / 'study.csv')
      point = {'config': f'configs/{config_file}'}
      mine = _per_seed(rows, point, 'final_test_accuracy', {}, 0.0)
      cosine = _per_seed(rows, COSINE, 'final_test_accuracy', {}, 0.0)
      cells.append(stats.percent(stats.mean_interval(list(mine.values()))))
      n, d = _paired(mine, cosine)
      if point == COSINE:
        cells.append('(baseline)')
      elif d is None:
        cells.append(f'{n} paired seed(s)')
      else:
        verdict = stats.verdict(d)
        cells.append(f'{stats.points(d.mean, d.ci95_low, d.ci95_high)}: '
                     + (verdict if verdict != 'no detectable difference'
                        else f'no detectable difference ({n} seeds)'))
    lines.append(f'| {label} | ' + ' | '.join(cells) + ' |')
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
    values = list(_per_seed(rows, point, 'final_test_accuracy', {},
                            0.0).values())
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
  """{seed: final test accuracy} of the finished members at `rate`."""
  return {int(r['seed']): float(r['final_test_accuracy']) for r in rows
          if abs(float(r['learning_rate']) - rate) <= 1e-9 * rate
          and studies.counts(r)}


def peaks_table(studies_dir) -> str:
  """Does the ranking hold at other peaks? The best other method against
  warmup + cosine on Fashion-MNIST at x0.5, x1 and x2 each one's own peak,
  paired by seed (x1 from the methods study; the others from the two peak
  studies of run_all.sh's step 2b)."""
  studies_dir = pathlib.Path(studies_dir)
  lines = ['| peak (x its own) | best other method vs warmup + cosine '
           '(pp) [95% CI] | verdict |', '|---|---|---|']
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
  for factor in sorted(pairs):
    pair = pairs[factor]
    if isinstance(pair, str):
      lines.append(f'| x{factor:g} | {pair} | |')
      continue
    n, d = _paired(*pair)
    if d is None:
      lines.append(f'| x{factor:g} | {n} paired seed(s) | |')
      continue
    verdict = stats.verdict(d)
    lines.append(f'| x{factor:g} | `{best}`: '
                 f'{stats.points(d.mean, d.ci95_low, d.ci95_high)}, n={n} | '
                 + (verdict if verdict != 'no detectable difference' else
                    f'no detectable difference with {n} seeds') + ' |')
  return '\n'.join(lines) + '\n'


def _per_seed_pair(folder, best, cosine_rate, best_rate):
  """({seed: best's accuracy}, {seed: cosine's}); at the methods study's
  own peaks when the rates are None; a str saying what is missing."""
  if cosine_rate is None:
    rows = studies.read_csv(folder / 'study.csv')
    return (_per_seed(rows, {'config': best}, 'final_test_accuracy', {}, 0.0),
            _per_seed(rows, COSINE, 'final_test_accuracy', {}, 0.0))
  found = []
  for config_path, rate in ((best, best_rate), (COSINE['config'],
                                                 cosine_rate)):
    study = folder / peak_study(config_path)
    if not (study / 'study.csv').is_file():
      return f'not run yet (docs/studies/{study.name}/)'
    found.append(_at_rate(studies.read_csv(study / 'study.csv'), rate))
  return tuple(found)


# Study 3, the seed's question: warmup_epochs x num_epochs for warmup +
# cosine, each warmup paired against none at the same num_epochs.
WARMUP_STUDIES = (('MNIST', 'warmup_mnist'),
                  ('Fashion-MNIST', 'warmup_fashion'))


def _by_cell(rows):
  """{(num_epochs, warmup_epochs): {seed: final test accuracy}} of the
  finished members that did not diverge."""
  cells = {}
  for row in rows:
    if studies.counts(row):
      key = (int(row['num_epochs']), float(row['warmup_epochs']))
      cells.setdefault(key, {})[int(row['seed'])] = float(
          row['final_test_accuracy'])
  return cells


def warmup_table(studies_dir, study) -> str:
  """How much warmup, how many epochs? One row per num_epochs, one column
  per warmup: the mean final test accuracy [95% CI] and, for a warmup,
  its paired difference from no warmup at the same num_epochs; then per
  num_epochs the warmups whose interval excludes zero."""
  folder = pathlib.Path(studies_dir) / study
  if not (folder / 'study.csv').is_file():
    return f'Not run yet (docs/studies/{study}/).\n'
  cells = _by_cell(studies.read_csv(folder / 'study.csv'))
  budgets = sorted({epochs for epochs, _ in cells})
  warmups = sorted({warmup for _, warmup in cells})
  lines = ['| num_epochs | ' + ' | '.join(
      f'warmup {w:g} epochs' for w in warmups) + ' |',
           '|---|' + '---|' * len(warmups)]
  detectable = []
  for epochs in budgets:
    none = cells.get((epochs, 0.0), {})
    row, found = [], []
    for warmup in warmups:
      mine = cells.get((epochs, warmup), {})
      text = stats.percent(stats.mean_interval(list(mine.values())))
      if warmup != 0.0:
        n, d = _paired(mine, none)
        if d is None:
          text += f'<br>{n} paired seed(s)'
        else:
          verdict = stats.verdict(d)
          text += (f'<br>{stats.points(d.mean, d.ci95_low, d.ci95_high)}'
                   + ('' if verdict == 'no detectable difference'
                      else f' **{verdict}**'))
          if verdict != 'no detectable difference':
            found.append(f'{warmup:g} ({verdict}, '
                         f'{100 * d.mean:+.2f} pp)')
      row.append(text)
    lines.append(f'| {epochs} | ' + ' | '.join(row) + ' |')
    seeds = len(none)
    detectable.append(
        f'- {epochs} epochs: ' + (', '.join(found) if found else
                                  'no warmup differs detectably from none '
                                  f'with {seeds} seeds'))
  return ('\n'.join(lines) + '\n\nWarmups (epochs) that differ detectably '
          'from no warmup, per num_epochs:\n\n' + '\n'.join(detectable)
          + '\n')


def markdown(studies_dir) -> str:
  """The claims table, from the published studies in `studies_dir`."""
  lines = ['| claim | source and setting | dataset | compared here (paired by '
           'seed) | difference [95% CI] | our verdict |',
           '|---|---|---|---|---|---|']
  for claim in CLAIMS:
    for comparison in claim.comparisons:
      numbers, verdict = _cell(claim, check(claim, comparison, studies_dir))
      what = (f'`{_describe(comparison.point)}` vs '
              f'`{_describe(comparison.reference)}`, {claim.metric}'
              + (f' ({100 * comparison.target:g}%)'
                 if claim.metric == 'epochs_to_target' else ''))
      lines.append(f'| {claim.text} | {claim.source} | {comparison.dataset} '
                   f'| {what} | {numbers} | {verdict} |')
  return '\n'.join(lines) + '\n'


def untestable() -> list[str]:
  """What the literature claims that these studies cannot test."""
  return [
      'Effects at the scale the papers measured (language models of '
      '10^8-10^9 parameters, ImageNet at batch 8k): a CNN on 28x28 images '
      'trained for 10 epochs on 2 CPU cores is not that regime.',
      "Goyal et al.'s linear scaling rule itself (peak proportional to the "
      'batch size): the studies here keep batch 128.',
  ]
