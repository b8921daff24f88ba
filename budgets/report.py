"""A budget sweep's report: the comparison runs (a cosine run per budget),
the statistics over seeds (one Holm family per table), budgets.csv,
budgets.json, budgets.md and budgets.png, and rebuilding them from a
published sweep without training."""

import json
import math
import pathlib

from budgets.plan import Cooldown
from machinery import errors
from machinery import files
from machinery import plots
from machinery import run_logs
from machinery import stats
import studies
import tasks

ROW_FIELDS = ('budget', 'seed', 'final_test_accuracy', 'best_test_accuracy',
              'final_test_loss', 'cooldown_start_step',
              'cooldown_epochs_trained')
COOLDOWN_FIELDS = ('decay_shape', 'decay_fraction')  # rows, several cooldowns
REPORT_FILES = ('budgets.csv', 'budgets.json', 'budgets.md', 'budgets.png')
PROJECT_DIR = pathlib.Path(__file__).resolve().parent.parent


def read_comparison(study_dir, fingerprint=None,
                    metric: tasks.Metric = tasks.TEST_ACCURACY,
                    setting: str | None = None) -> dict:
  """{(num_epochs, seed): final primary metric} of a finished study over
  num_epochs alone (e.g. warmup_cosine at every budget, trained
  separately), trained on this sweep's data (`fingerprint`, if given).
  `setting` ('FIELD=VALUE', e.g. 'config=configs/lm.py') takes one setting
  of a study that varies FIELD (e.g. the baseline of a methods study); a
  study that does not vary num_epochs gives each member's own.

  Raises:
    ConfigError: the study varies another field too (a row per (num_epochs,
      seed) would not be one run), or was trained on other data.
  """
  path = pathlib.Path(study_dir) / 'study.csv'
  if not path.is_file():
    raise errors.WorkdirError(f'--compare_study={study_dir} has no '
                              'study.csv: run tools/study.py there first.')
  rows = studies.read_csv(path)
  header = path.read_text().splitlines()[:1]
  varied = [f for f in (header[0].split(',') if header else [])
            if f not in studies.ROW_FIELDS]
  if setting:
    field, _, value = setting.partition('=')
    if field not in varied:
      raise errors.ConfigError(
          f'--compare_setting={setting} is invalid: --compare_study='
          f'{study_dir} varies {", ".join(varied) or "nothing"}, not '
          f'{field!r}.')
    rows = [r for r in rows if r.get(field) == value]
    if not rows:
      raise errors.ConfigError(
          f'--compare_setting={setting} is invalid: no member of '
          f'--compare_study={study_dir} has {field}={value}.')
    varied.remove(field)
  if varied not in (['num_epochs'], []) or not (varied or setting):
    raise errors.ConfigError(
        f'--compare_study={study_dir} varies '
        f'{", ".join(varied) or "nothing"}: it must vary num_epochs alone '
        '(--vary=num_epochs=2,3,5,10), one run per budget and seed, or '
        'name one setting with --compare_setting=FIELD=VALUE.')
  others = sorted({r['data_fingerprint'] for r in rows
                   if r.get('data_fingerprint') not in ('', None,
                                                        fingerprint)})
  if fingerprint and others:
    raise errors.ConfigError(
        f'--compare_study={study_dir} was trained on other data (data '
        f'fingerprint {others[0]} there, {fingerprint} here): compare runs '
        'of the same data.')
  comparison = {}
  for r in rows:
    if studies.counts(r):
      epochs = (r['num_epochs'] if 'num_epochs' in r else run_logs.read_config(
          pathlib.Path(study_dir) / 'members' / r['member'])['num_epochs'])
      key = (int(epochs), int(r['seed']))
      if key in comparison:
        raise errors.ConfigError(
            f'--compare_study={study_dir} has two rows of num_epochs='
            f'{key[0]}, seed {key[1]}: it must be one study of one config.')
      comparison[key] = float(r[metric.final_key])
  return comparison


def summarize(rows, budgets, seeds, comparison=None,
              metric: tasks.Metric = tasks.TEST_ACCURACY) -> dict:
  """Per budget: mean and 95% interval over seeds; what it gains over the
  previous budget, paired by seed (how many epochs are worth it); and
  against the comparison run at that budget, paired by seed, where it has
  every seed. Every paired comparison of the table is one family: a
  verdict only where the Holm-adjusted p-value is below 0.05.

  With several cooldowns (rows holding COOLDOWN_FIELDS) the same per
  cooldown, keyed 'B, shape_fraction', the gains within a cooldown: one
  table, one family."""
  summary, tests = {}, []
  final = metric.final_key
  differences = metric.difference_bounds
  for cooldown in _row_cooldowns(rows):
    previous = None
    for budget in budgets:
      key = str(budget) if cooldown is None else f'{budget}, {cooldown.name}'
      by_seed = {r['seed']: r[final] for r in rows if r['budget'] == budget
                 and _row_cooldown(r) == cooldown}
      values = [by_seed[s] for s in sorted(by_seed)]
      entry = {final: stats.mean_interval(values,
                                          bounds=metric.bounds).as_dict()}
      if cooldown is not None:
        entry.update(budget=budget, decay_shape=cooldown.shape,
                     decay_fraction=cooldown.fraction)
      if previous is not None and set(previous[1]) == set(by_seed):
        tests.append((key, 'gain_over_previous', previous[0],
                      stats.paired_difference(
                          values, [previous[1][s] for s in sorted(by_seed)],
                          bounds=differences)))
      previous = (budget, by_seed)
      if comparison is not None:
        other = [comparison.get((budget, s)) for s in range(seeds)]
        if all(v is not None for v in other):
          entry['comparison_' + final] = stats.mean_interval(
              other, bounds=metric.bounds).as_dict()
          tests.append((key, 'paired_difference', None,
                        stats.paired_difference(values, other,
                                                bounds=differences)))
      summary[key] = entry
  family = stats.in_family([d for *_, d in tests])
  for (key, kind, previous_budget, _), difference in zip(tests, family):
    entry, key = summary[key], kind
    entry[key] = difference.as_dict()
    if key == 'gain_over_previous':
      entry[key]['previous_budget'] = previous_budget
      entry['gain_verdict'] = stats.verdict(difference,
                                            metric.higher_is_better)
    else:
      entry['verdict'] = stats.verdict(difference, metric.higher_is_better)
  return summary


def _row_cooldown(row):
  """A row's Cooldown; None for the rows of a one-cooldown sweep."""
  if 'decay_shape' not in row:
    return None
  return Cooldown(float(row['decay_fraction']), row['decay_shape'])


def _row_cooldowns(rows) -> list:
  """The rows' cooldowns in their order ([None] for one)."""
  return list(dict.fromkeys(_row_cooldown(r) for r in rows)) or [None]


def cost_summary(rows, budgets, seeds, seconds, machines=1) -> dict:
  """Epochs trained per seed — the trunk up to the latest cooldown start,
  then every cooldown — against separate runs of every branch, and the wall
  time measured over every invocation (cost.json), on `machines`
  machines."""
  cooldowns = {(r['budget'], _row_cooldown(r)): r['cooldown_epochs_trained']
               for r in rows}
  trunk = max(budget - epochs for (budget, _), epochs in cooldowns.items())
  return {'epochs_trained_per_seed': round(trunk + sum(cooldowns.values()), 4),
          'trunk_epochs_per_seed': round(trunk, 4),
          'separate_runs_epochs_per_seed': sum(budgets) * len(
              _row_cooldowns(rows)),
          'seeds': seeds,
          'measured_wall_s': round(sum(seconds.values()), 1),
          'machines': machines}


def markdown(summary, cost, decay_fraction, compare_name,
             metric: tasks.Metric = tasks.TEST_ACCURACY) -> str:
  family = sum(key in entry for entry in summary.values()
               for key in ('gain_over_previous', 'paired_difference'))
  final, unit = metric.final_key, metric.difference_unit
  if metric is tasks.TEST_ACCURACY:
    title, column = 'Final test accuracy', 'final test acc.'
  else:
    title = f'Final {metric.name} in {metric.unit} ({metric.direction})'
    column = f'final {metric.name}'
  # One budget (several cooldowns of one length) has no previous budget to
  # gain over: no column of empty cells, no sentence saying "none".
  several_budgets = len({entry.get('budget', key)
                         for key, entry in summary.items()}) > 1
  gain_header = (f' gain over the previous budget ({unit}) [95% CI], Holm p |'
                 if several_budgets else '')
  lines = [f'{title} of each budget\'s WSD branch over seeds '
           f'0..{cost["seeds"] - 1} (mean and 95% Student-t interval)'
           + (f'; paired by seed against {compare_name}.' if compare_name
              else '.') + f' The table\'s {family} paired comparisons are '
           'one family: "better" or "worse" only where the Holm-adjusted '
           'p-value is below 0.05; each interval is the raw 95% interval.',
           '',
           f'| budget (epochs){_cooldown_header(summary)} | n | WSD branch: '
           f'{column} [95% CI] |' + gain_header
           + (f' {compare_name} [95% CI] | paired diff. ({unit}) [95% CI] | '
              'Holm-adjusted p | verdict |' if compare_name else ''),
           '|---|---|---|' + ('---|' if several_budgets else '')
           + ('---|---|---|---|' if compare_name else '')]
  for budget, entry in summary.items():
    mine = entry[final]
    line = (f'| {_branch_label(budget, entry)} | {mine["n"]} | '
            f'{_value(mine, metric)} |'
            + (f' {_gain(entry, metric)} |' if several_budgets else ''))
    if compare_name:
      if 'paired_difference' in entry:
        d = entry['paired_difference']
        line += (f' {_value(entry["comparison_" + final], metric)} | '
                 f'{_difference(d, metric)} '
                 f'| {stats.p_text(d["p_holm"])} | '
                 f'{_said(entry["verdict"], d, metric)} |')
      else:
        line += ' (not every seed) | | | |'
    lines.append(line)
  gains = [b for b, e in summary.items() if e.get('gain_verdict') == 'better']
  if several_budgets:
    lines += ['', 'Budgets that gain detectably over the previous one '
              '(paired by seed, Holm-adjusted p below 0.05): '
              + (', '.join(gains) if gains else 'none') + '.']
  lines += ['', f'Cooldowns: {_cooldown_words(decay_fraction)}. '
            f'Epochs trained per seed: {cost["epochs_trained_per_seed"]:g} '
            f'(a trunk of {cost["trunk_epochs_per_seed"]:g} and the '
            f'cooldowns) against {cost["separate_runs_epochs_per_seed"]} for '
            f'separate runs; measured wall time {cost["measured_wall_s"]:g} s '
            f'for {cost["seeds"]} seed(s)'
            + (f' on {cost["machines"]} machines (budgets.json names them).'
               if cost.get('machines', 1) > 1 else '.')]
  return '\n'.join(lines) + '\n'


def _cooldown_header(summary) -> str:
  several = any('decay_shape' in e for e in summary.values())
  return ', cooldown' if several else ''


def _branch_label(key, entry) -> str:
  """'5' for a budget; '5, 1-sqrt over the last 20%' with cooldowns."""
  if 'decay_shape' not in entry:
    return key
  return (f'{entry["budget"]}, {entry["decay_shape"]} over the last '
          f'{100 * entry["decay_fraction"]:g}%')


def _cooldown_words(decay_fraction) -> str:
  """The spec's decay_fraction: one fraction, or (several cooldowns) a list
  of [fraction, shape]."""
  if not isinstance(decay_fraction, (list, tuple)):
    return f'the last {100 * decay_fraction:g}% of each budget'
  fractions = sorted({f for f, _ in decay_fraction})
  shapes = list(dict.fromkeys(shape for _, shape in decay_fraction))
  return (f'the last {", ".join(f"{100 * f:g}" for f in fractions)}% of each '
          f'budget, each of shape {", ".join(shapes)}, every one branched '
          'from the same trunk per seed')


def _said(verdict, difference, metric=tasks.TEST_ACCURACY) -> str:
  """The verdict; for none, the smallest difference the family could
  detect (80% power)."""
  if verdict != 'no detectable difference':
    return verdict
  if math.isnan(difference['detectable']):
    return 'not tested (one seed)'
  return (f'no detectable difference (could detect '
          f'±{metric.magnitude(difference["detectable"])} '
          f'{metric.difference_unit})')


def _difference(d, metric) -> str:
  """'+0.20 [+0.10, +0.30]' in pp (accuracy) or bits per byte."""
  return metric.difference_interval(d['mean'], d['ci95_low'],
                                    d['ci95_high'])


def _gain(entry, metric=tasks.TEST_ACCURACY) -> str:
  gain = entry.get('gain_over_previous')
  if gain is None:
    return ''
  return (f'{_difference(gain, metric)}'
          f' over {gain["previous_budget"]}, {stats.p_text(gain["p_holm"])}'
          + ('' if entry['gain_verdict'] == 'no detectable difference'
             else f' ({entry["gain_verdict"]})'))


def _value(interval: dict, metric) -> str:
  """'99.28% [99.23, 99.34]', or '1.812 [1.801, 1.823]' bits per byte."""
  return metric.interval(interval['n'], interval['mean'],
                         interval['ci95_low'], interval['ci95_high'])


def write_report(workdir, rows, summary, cost, spec) -> str:
  workdir = pathlib.Path(workdir)
  several = any('decay_shape' in r for r in rows)
  studies.write_csv(workdir / 'budgets.csv', rows,
                    ROW_FIELDS[:2] + COOLDOWN_FIELDS + ROW_FIELDS[2:]
                    if several else ROW_FIELDS)
  files.write_text(workdir / 'budgets.json', json.dumps(studies.json_safe(
      {'spec': spec, 'budgets': summary, 'cost': cost}), indent=2,
                                                        allow_nan=False))
  metric = tasks.primary_metric(spec)
  text = markdown(summary, cost, spec['decay_fraction'],
                  spec.get('compare_name'), metric)
  files.write_text(workdir / 'budgets.md', text)
  comparison = _curve(summary, 'comparison_' + metric.final_key)
  if several and len(spec['budgets']) == 1:
    # The comparison at the one budget: (mean, low, high), a level.
    level = None if comparison is None else [v[0] for v in comparison[1:]]
    plots.plot_cooldowns(_by_shape(summary, metric.final_key), level,
                         spec.get('compare_name'), spec['budgets'][0],
                         workdir / 'budgets.png', metric)
    return text
  wsd = {_cooldown_label(c): _curve(summary, metric.final_key, c)
         for c in _summary_cooldowns(summary)}
  plots.plot_budgets(wsd if several else wsd[_cooldown_label(None)],
                     comparison, spec.get('compare_name'),
                     workdir / 'budgets.png', metric)
  return text


def _by_shape(summary, key) -> dict:
  """{shape: (fractions, mean, low, high)} of one budget's cooldowns."""
  shapes = {}
  for e in summary.values():
    shapes.setdefault(e['decay_shape'], []).append(
        (e['decay_fraction'], e[key]))
  curves = {}
  for shape, points in shapes.items():
    points.sort(key=lambda point: point[0])
    curves[shape] = ([f for f, _ in points],
                     *([i[field] for _, i in points]
                       for field in ('mean', 'ci95_low', 'ci95_high')))
  return curves


def rebuild(folder) -> str:
  """Rewrites budgets.json's statistics, budgets.md and budgets.png of a
  finished (or published) sweep from its budgets.csv and budgets.json
  alone, and the comparison study its spec names (a path relative to the
  project, as run_all.sh gives it, is found from anywhere): no training.
  Returns budgets.md."""
  folder = pathlib.Path(folder)
  report = folder / 'budgets.json'
  try:
    recorded = json.loads(files.read_bytes(report))
    spec, cost = recorded['spec'], recorded['cost']
    budgets, seeds = tuple(spec['budgets']), int(spec['seeds'])
  except (OSError, ValueError, KeyError, TypeError):
    raise errors.WorkdirError(
        f'{report} is missing or damaged (not the JSON tools/budgets.py '
        'writes): is it a sweep\'s folder?') from None
  rows = []
  for line, row in enumerate(studies.read_csv(folder / 'budgets.csv'),
                             start=2):
    try:
      rows.append({
          'budget': int(row['budget']), 'seed': int(row['seed']),
          **{key: float(row[key]) for key in ROW_FIELDS[2:5]},
          **({'decay_shape': row['decay_shape'],
              'decay_fraction': float(row['decay_fraction'])}
             if row.get('decay_shape') else {}),
          'cooldown_start_step': int(row['cooldown_start_step']),
          'cooldown_epochs_trained': float(row['cooldown_epochs_trained'])})
    except (KeyError, ValueError, TypeError):
      raise errors.WorkdirError(
          f'{folder / "budgets.csv"} is damaged at line {line}: restore it '
          'from where the sweep was published.') from None
  comparison = None
  if spec.get('compare_study'):
    study = pathlib.Path(spec['compare_study'])
    if not study.is_absolute() and not study.exists():
      study = PROJECT_DIR / study
    comparison = read_comparison(study, metric=tasks.primary_metric(spec),
                                 setting=spec.get('compare_setting'))
  summary = summarize(rows, budgets, seeds, comparison,
                      tasks.primary_metric(spec))
  return write_report(folder, rows, summary, cost, spec)


def _summary_cooldowns(summary) -> list:
  return list(dict.fromkeys(
      Cooldown(e['decay_fraction'], e['decay_shape']) if 'decay_shape' in e
      else None for e in summary.values())) or [None]


def _cooldown_label(cooldown) -> str:
  if cooldown is None:
    return ''
  return f'WSD, {cooldown.shape} over the last {100 * cooldown.fraction:g}%'


def _curve(summary, key, cooldown=None):
  """(budgets, mean, low, high) of `key`: a cooldown's branches, or (the
  comparison, the same for every cooldown) once per budget."""
  points = {}
  for name, e in summary.items():
    mine = (Cooldown(e['decay_fraction'], e['decay_shape'])
            if 'decay_shape' in e else None)
    if key in e and (cooldown is None or mine == cooldown):
      points.setdefault(int(e.get('budget', name)), e[key])
  points = list(points.items())
  if not points:
    return None
  return ([b for b, _ in points], [i['mean'] for _, i in points],
          [i['ci95_low'] for _, i in points],
          [i['ci95_high'] for _, i in points])
