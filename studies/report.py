"""The report of a study: study.csv from the members' records, the summary and
its paired comparisons (one Holm family per table), study.md, study.png,
rebuilding and publishing.
"""

import csv
import json
import math
import pathlib

import numpy as np

import tasks
from machinery import errors
from machinery import run_logs
from machinery import files
from machinery import plots
from machinery import stats

from studies.grid import grid, label, Member, parse_vary
from studies.records import carried_machines, recorded_fingerprint


def member_result(member: Member, target: float,
                  metric: tasks.Metric = tasks.TEST_ACCURACY) -> dict:
  """One row of study.csv, read back from the member's epochs.csv.

  One rule in both modes: a member is finished when its last epoch is
  recorded with finite numbers and it did not diverge (a diverged member
  keeps `diverged` = 1 and counts in no mean). The best epoch is the best
  of the study's primary `metric`; epochs to `target` count for a test
  accuracy only.
  """
  epochs = run_logs.read_epochs(member.workdir, allow_empty=True)
  accuracy = epochs['test_accuracy']
  diverged = run_logs.read_diverged(member.workdir) is not None or not (
      np.all(np.isfinite(epochs['test_loss'])))
  finished = (len(accuracy) == member.config.num_epochs and not diverged
              and int(epochs['epoch'][-1]) == member.config.num_epochs)
  row = {'member': member.name, 'seed': member.seed, **member.point,
         'finished': int(finished), 'diverged': int(diverged),
         'data_fingerprint': recorded_fingerprint(member.workdir)}
  if not len(accuracy):
    return row
  primary = epochs[metric.key]
  best = int(np.argmax(primary) if metric.higher_is_better
             else np.argmin(primary))
  hits = np.flatnonzero(accuracy >= target) if metric.key == (
      'test_accuracy') else np.array([], int)
  row.update({
      'final_test_accuracy': float(accuracy[-1]),
      'best_test_accuracy': float(accuracy[best]),
      'best_epoch': int(epochs['epoch'][best]),
      'epochs_to_target': int(epochs['epoch'][hits[0]]) if hits.size else '',
      'final_test_loss': float(epochs['test_loss'][-1]),
      'wall_s': round(float(epochs['epoch_time_s'].sum()), 1),
  })
  return row


def parse_baseline(text, varied, config) -> dict:
  """'F=V,F2=V2' -> {F: V, F2: V2}, each a varied field and one of its values."""
  values = dict(varied)
  if not text:
    return {field: options[0] for field, options in varied}
  baseline = {}
  for part in text.split(','):
    field, _, value = part.partition('=')
    if field not in values:
      raise errors.ConfigError(f'--baseline={text!r} is invalid: {field!r} '
                               f'is not a varied field ({", ".join(values)}).')
    typed = parse_vary(f'{field}={value}', config)[1][0]
    if typed not in values[field]:
      raise errors.ConfigError(f'--baseline={text!r} is invalid: {typed!r} '
                               f'is not among the values of {field}.')
    baseline[field] = typed
  return baseline


def _check_one_dataset(rows, points) -> None:
  """The members of a grid point were all trained on the same data."""
  seen = {}
  for row in rows:
    if row.get('finished') and row.get('data_fingerprint'):
      key = label({f: row[f] for f in points[0]})
      seen.setdefault(key, set()).add(row['data_fingerprint'])
  for key, fingerprints in seen.items():
    if len(fingerprints) > 1:
      raise errors.DataError(
          f'The members of grid point {key} were trained on different data '
          f'(fingerprints {", ".join(sorted(fingerprints))}): their results '
          'cannot be pooled; retrain them on one dataset.')


# A run "trained" when it finished without diverging and its final primary
# metric is on the right side of the metric's bound (tasks.Metric: a test
# accuracy of at least 20%, twice chance on 10 classes; a validation loss
# of at most 4 bits per byte). A run beyond it stayed at chance: an outcome
# of another kind, counted, never averaged.
TRAINED_ACCURACY = tasks.TEST_ACCURACY.trained_bound


def outcome(row, metric: tasks.Metric = tasks.TEST_ACCURACY) -> float | None:
  """A row's final primary metric if the run trained, None if it diverged
  or stayed at chance; raises KeyError for a member still training."""
  if row.get('diverged'):
    return None
  if not row.get('finished') or metric.final_key not in row:
    raise KeyError(row.get('member'))
  value = row[metric.final_key]
  return value if metric.trained(value) else None


def compare(mine: dict, theirs: dict,
            metric: tasks.Metric = tasks.TEST_ACCURACY):
  """mine against theirs ({seed: outcome}), over the seeds both have.

  Every paired seed trained on both sides: the paired difference and its
  t-test (stats.Difference). Otherwise whether a run trains at all is the
  outcome: stats.Counts with the exact McNemar test, and beside it the
  difference over the seeds where both trained (described, not tested).
  None when no seed is paired.
  """
  seeds = sorted(set(mine) & set(theirs))
  if not seeds:
    return None, None
  bounds = metric.difference_bounds
  if all(mine[s] is not None and theirs[s] is not None for s in seeds):
    return stats.paired_difference([mine[s] for s in seeds],
                                   [theirs[s] for s in seeds],
                                   bounds=bounds), None
  both = [s for s in seeds if mine[s] is not None and theirs[s] is not None]
  described = stats.paired_difference([mine[s] for s in both],
                                      [theirs[s] for s in both],
                                      bounds=bounds) if both else None
  return stats.trained_counts([mine[s] is not None for s in seeds],
                              [theirs[s] is not None for s in seeds]), (
                                  described)


def result_dict(result, described=None,
                metric: tasks.Metric = tasks.TEST_ACCURACY) -> dict:
  """A comparison as study.json keeps it, with its verdict."""
  out = {**result.as_dict(), 'test': (
      'exact McNemar on trained seeds' if isinstance(result, stats.Counts)
      else 'paired t'), 'verdict': stats.verdict(result,
                                                 metric.higher_is_better)}
  if described is not None:
    out['among_trained'] = described.as_dict()
  return out


def summarize(rows, points, baseline, seeds,
              metric: tasks.Metric = tasks.TEST_ACCURACY) -> dict:
  """study.json: per point its interval and its paired difference.

  A point's mean and interval are over its members that trained;
  `members` counts those that finished or diverged, `trained` those that
  trained. The comparisons with the baseline are one family: "better" or
  "worse" only where the Holm-adjusted p-value is below 0.05.
  """
  _check_one_dataset(rows, points)
  by_point, diverged, at_chance = {}, {}, {}
  for row in rows:
    key = label({f: row[f] for f in points[0]})
    if row.get('diverged'):
      diverged[key] = diverged.get(key, 0) + 1
    elif (row.get('finished') and metric.final_key in row
          and not metric.trained(row[metric.final_key])):
      at_chance.setdefault(key, []).append(row[metric.final_key])
    try:
      by_point.setdefault(key, {})[row['seed']] = outcome(row, metric)
    except KeyError:
      continue  # still training: no outcome yet
  summary = {'seeds': seeds, 'baseline': label(baseline),
             'points': {}}
  tests = []
  for point in points:
    key = label(point)
    outcomes = by_point.get(key, {})
    trained = [v for v in outcomes.values() if v is not None]
    entry = {'fields': point,
             **stats.mean_interval(trained, bounds=metric.bounds).as_dict(),
             'members': len(outcomes), 'trained': len(trained),
             'diverged': diverged.get(key, 0),
             'at_chance': sorted(at_chance.get(key, []))}
    base_key = label({**point, **baseline})
    entry['baseline'] = base_key
    if base_key != key:
      result, described = compare(outcomes, by_point.get(base_key, {}),
                                  metric)
      if result is not None:
        tests.append((key, result, described))
    summary['points'][key] = entry
  family = stats.in_family([result for _, result, _ in tests])
  for (key, _, described), result in zip(tests, family):
    summary['points'][key]['vs_baseline'] = result_dict(result, described,
                                                        metric)
  return summary


def _interval(low, high, fmt) -> str:
  """'[low, high]', or 'n/a' where one seed leaves no interval (nan)."""
  if np.isnan(low) or np.isnan(high):
    return 'n/a'
  return f'[{fmt(low)}, {fmt(high)}]'


def comparison_sentence(versus: dict,
                        metric: tasks.Metric = tasks.TEST_ACCURACY) -> str:
  """One sentence for a comparison of study.json: the raw interval, the
  Holm-adjusted p and the verdict; for no detectable difference, the
  smallest difference the family could have detected."""
  diff, unit = metric.difference, metric.difference_unit
  p = stats.p_text(versus['p_holm']).replace('p', 'Holm-adjusted p', 1)
  if 'trained' in versus:
    text = (f'{versus["trained"]} of {versus["n"]} seeds trained against '
            f'{versus["baseline_trained"]} of {versus["n"]} (exact McNemar '
            f'test, {p}): ')
    text += ({'better': 'trains more often', 'worse': 'trains less often'}
             .get(versus['verdict'], 'no detectable difference in how often '
                  'a run trains'))
    if versus['smallest_p'] * versus['family_size'] >= stats.ALPHA:
      text += (f' (with {versus["n"]} seeds this test cannot reach p<0.05 '
               'in this family: its smallest p-value is '
               f'{versus["smallest_p"]:.4g} before Holm)')
    among = versus.get('among_trained')
    if among and among['n']:
      text += (f'; among the {among["n"]} seed(s) where both trained, '
               f'{diff(among["mean"])} {unit}' + (
                   f' {_interval(among["ci95_low"], among["ci95_high"], diff)}'
                   if among['n'] > 1 else ' (one seed: no interval)'))
    return text
  if versus['n'] < 2:
    return (f'{diff(versus["mean"])} {unit} on 1 seed: no interval, no '
            'verdict (run --seeds=2 or more)')
  numbers = (f'{diff(versus["mean"])} {unit} [{diff(versus["ci95_low"])}, '
             f'{diff(versus["ci95_high"])}] over {versus["n"]} paired seeds, '
             f'{p}')
  if versus['verdict'] == 'no detectable difference':
    return (f'no detectable difference ({numbers}; with {versus["n"]} seeds '
            'it could detect '
            f'±{diff(versus["detectable"])[1:]} {unit} at 80% power)')
  return f'{versus["verdict"]} ({numbers})'


def family_note(summary, metric: tasks.Metric = tasks.TEST_ACCURACY) -> str:
  """What the family is, in one sentence."""
  sizes = {p['vs_baseline']['family_size'] for p in summary['points'].values()
           if 'vs_baseline' in p}
  m = max(sizes) if sizes else 0
  return (f'The {m} comparison(s) with the baseline are one family: "better" '
          'or "worse" only where the Holm-adjusted p-value is below 0.05; '
          'the interval beside it is the raw 95% interval. Members that '
          f'diverged or stayed at chance ({_chance_words(metric)}) are '
          'counted, not averaged.')


def _chance_words(metric) -> str:
  """The trained bound in the words the image studies have always used."""
  if metric is tasks.TEST_ACCURACY:
    return f'final test accuracy below {100 * TRAINED_ACCURACY:g}%'
  return metric.chance_words


def markdown(summary, rows, target,
             metric: tasks.Metric = tasks.TEST_ACCURACY) -> str:
  """study.md: the ranking with intervals and one sentence per comparison
  (best first in the direction of the study's primary `metric`; epochs to
  `target` for a test accuracy)."""
  points = summary['points']
  sign = 1 if metric.higher_is_better else -1
  ranked = sorted(points, key=lambda k: -sign * np.nan_to_num(
      points[k]['mean'], nan=-sign * math.inf))
  accuracy = metric.key == 'test_accuracy'
  unit = metric.difference_unit
  if accuracy:
    title, column = 'Final test accuracy', 'final test acc.'
    extra_column = f' epochs to {100 * target:g}% (mean) |'
  else:
    title = f'Final {metric.name} in {metric.unit} ({metric.direction})'
    column, extra_column = f'final {metric.name}', ''
  lines = [
      f'{title} over seeds 0..{summary["seeds"] - 1} '
      f'(mean and 95% Student-t interval of the members that trained); '
      f'paired differences against the baseline ({summary["baseline"]} in '
      'its fields). ' + family_note(summary, metric), '',
      f'| rank | grid point | trained / n | {column} | 95% CI |{extra_column}'
      f' vs baseline: paired diff. ({unit}) [95% CI] | '
      'Holm-adjusted p | verdict |',
      '|---|---|---|---|---|' + ('---|' if accuracy else '')
      + '---|---|---|']
  for rank, key in enumerate(ranked, start=1):
    e = points[key]
    count = f'{e["trained"]} / {e["members"]}' + _untrained_note(e, metric)
    versus = e.get('vs_baseline')
    verdict = versus['verdict'] if versus else ''
    p = stats.p_text(versus['p_holm']) if versus else ''
    if not e['n']:
      lines.append(f'| {rank} | `{key}` | {count} | none trained | n/a |'
                   + (' - |' if accuracy else '')
                   + f' {_counts_cell(versus)} | {p} | {verdict} |')
      continue
    to_target = ''
    if accuracy:
      member_rows = [r for r in rows if _trained_row(r) and label(
          {f: r[f] for f in e['fields']}) == key]
      reached = [r['epochs_to_target'] for r in member_rows
                 if r.get('epochs_to_target') != '']
      to_target = (f' {np.mean(reached):.1f} ({len(reached)}/{e["n"]} '
                   'reached) |' if reached else f' not reached (0/{e["n"]}) |')
    if versus and 'trained' in versus:
      diff = _counts_cell(versus)
    elif versus:
      diff = (f'{metric.difference(versus["mean"])} ' + _interval(
          versus['ci95_low'], versus['ci95_high'], metric.difference))
    else:
      diff = '(baseline)' if key == e['baseline'] else 'n/a (no paired seed)'
    value_ci = _interval(e['ci95_low'], e['ci95_high'],
                         lambda v: metric.format(metric.shown(v)).rstrip('%'))
    lines.append(
        f'| {rank} | `{key}` | {count} | '
        f'{metric.format(metric.shown(e["mean"]))} | '
        f'{value_ci} |{to_target} {diff} | {p} | {verdict} |')
  lines.append('')
  for key in ranked:
    versus = points[key].get('vs_baseline')
    if versus:
      lines.append(f'- `{key}` vs `{points[key]["baseline"]}`: '
                   f'{comparison_sentence(versus, metric)}.')
  return '\n'.join(lines) + '\n'


def _untrained_note(entry, metric: tasks.Metric = tasks.TEST_ACCURACY) -> str:
  """' (2 diverged; 3 at chance: 11.35%)' for the members that did not
  train (the range of their final values)."""
  notes = []
  if entry.get('diverged'):
    notes.append(f'{entry["diverged"]} diverged')
  finals = entry.get('at_chance') or []
  if finals:
    low, high = (metric.format(metric.shown(v)).rstrip('%')
                 for v in (min(finals), max(finals)))
    suffix = '%' if metric.unit == '%' else f' {metric.unit}'
    notes.append(f'{len(finals)} at chance: ' + (
        f'{low}{suffix}' if low == high else f'{low}-{high}{suffix}'))
  return f' ({"; ".join(notes)})' if notes else ''


def _counts_cell(versus) -> str:
  if not versus or 'trained' not in versus:
    return '-'
  return (f'trained {versus["trained"]} vs {versus["baseline_trained"]} of '
          f'{versus["n"]}')


def _trained_row(row, metric: tasks.Metric = tasks.TEST_ACCURACY) -> bool:
  try:
    return outcome(row, metric) is not None
  except KeyError:
    return False


def epoch_curves(epoch_rows, points,
                 metric: tasks.Metric = tasks.TEST_ACCURACY) -> dict:
  """{label: (epochs, mean, low, high)} of the primary metric over seeds."""
  curves = {}
  for point in points:
    key = label(point)
    per_epoch = {}
    for row in epoch_rows:
      if row['point'] == key:
        per_epoch.setdefault(row['epoch'], []).append(row[metric.key])
    epochs = sorted(per_epoch)
    intervals = [stats.mean_interval(per_epoch[e]) for e in epochs]
    curves[key] = (epochs, [i.mean for i in intervals],
                   [i.ci95_low for i in intervals],
                   [i.ci95_high for i in intervals])
  return curves


def heatmap(varied, summary):
  """(x, xs, y, ys, cells) when exactly two numeric fields vary; each cell
  is (mean, half-width of its 95% interval, whether it differs detectably
  from its baseline point)."""
  if len(varied) != 2 or not all(
      isinstance(v[0], (int, float)) and not isinstance(v[0], bool)
      for _, v in varied):
    return None
  (y_name, ys), (x_name, xs) = varied

  def cell(point):
    half = (point.get('ci95_high', math.nan)
            - point.get('ci95_low', math.nan)) / 2
    return (point['mean'], half, point.get('vs_baseline', {}).get(
        'verdict', 'no detectable difference') != 'no detectable difference')
  cells = [[cell(summary['points'][label({y_name: y, x_name: x})])
            for x in xs] for y in ys]
  return x_name, xs, y_name, ys, cells


def write_csv(path, rows, fields):
  with files.replacing(path, newline='') as f:
    writer = csv.DictWriter(f, fieldnames=fields, extrasaction='ignore')
    writer.writeheader()
    writer.writerows(rows)


def json_safe(value):
  """`value` with every nan or infinity as None: study.json is strict JSON."""
  if isinstance(value, dict):
    return {k: json_safe(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [json_safe(v) for v in value]
  if isinstance(value, float) and not math.isfinite(value):
    return None
  return value


REPORT_FILES = ('study.csv', 'study_epochs.csv', 'study.json', 'study.md',
                'study.png')


SPEC_JSON = 'study_spec.json'  # what the study was: enough to rebuild it


ROW_FIELDS = ('member', 'seed', 'final_test_accuracy', 'best_test_accuracy',
              'best_epoch', 'epochs_to_target', 'final_test_loss', 'wall_s',
              'finished', 'diverged', 'data_fingerprint')


EPOCH_ROW_FIELDS = ('member', 'epoch', 'test_accuracy', 'test_loss',
                    'train_loss')


def write_report(workdir, members_, spec: dict) -> str:
  """The study's files (REPORT_FILES and SPEC_JSON) in `workdir`, read back
  from its members; returns study.md."""
  workdir = pathlib.Path(workdir)
  rows = [member_result(m, spec['target_accuracy'],
                        tasks.primary_metric(spec)) for m in members_]
  per_epoch = [r for m in members_ for r in epoch_rows(m)]
  fields = [f for f, _ in spec['vary']]
  write_csv(workdir / 'study.csv', rows,
            [*ROW_FIELDS[:2], *fields, *ROW_FIELDS[2:]])
  write_csv(workdir / 'study_epochs.csv', per_epoch, EPOCH_ROW_FIELDS)
  spec = {**spec, 'data_fingerprints': sorted(
      {r['data_fingerprint'] for r in rows if r['data_fingerprint']}),
          'members_wall_s': round(sum(r.get('wall_s', 0) for r in rows), 1)}
  carried = carried_machines(m.workdir for m in members_)
  if carried:
    spec['machines_of_carried_members'] = carried
  files.write_text(workdir / SPEC_JSON, json.dumps(spec, indent=2))
  return write_tables(workdir, rows, per_epoch, spec)


def write_tables(workdir, rows, per_epoch, spec) -> str:
  """study.json, study.md and study.png from the rows alone."""
  varied = [(field, values) for field, values in spec['vary']]
  points = grid(varied)
  target = spec['target_accuracy']
  metric = tasks.primary_metric(spec)  # a spec without 'task': images
  summary = {**summarize(rows, points, spec['baseline'], spec['seeds'],
                         metric), **spec.get('extra', {})}
  files.write_text(workdir / 'study.json',
                   json.dumps(json_safe(summary), indent=2, allow_nan=False))
  text = markdown(summary, rows, target, metric)
  files.write_text(workdir / 'study.md', text)
  finished = {r['member'] for r in rows if _trained_row(r, metric)}
  plots.plot_study(epoch_curves([r for r in per_epoch
                                 if r['member'] in finished], points, metric),
                   target if metric is tasks.TEST_ACCURACY else None,
                   workdir / 'study.png', heatmap(varied, summary), metric)
  return text


def read_csv(path) -> list[dict]:
  if not path.is_file():
    raise errors.WorkdirError(f'{path} is missing: is it a study folder that '
                              'tools/study.py wrote or published?')
  with open(path, newline='') as f:
    return list(csv.DictReader(f))


def counts(row: dict) -> bool:
  """Whether a study.csv row is a number to pool: a member that finished
  and did not diverge (a diverged one is reported, never averaged)."""
  return bool(int(row['finished'])) and not int(row.get('diverged') or 0)


def _number(text, kind=float):
  return '' if text in ('', None) else kind(float(text))


def rebuild(folder) -> str:
  """Rewrites study.json, study.md and study.png of a finished study from
  its study.csv, study_epochs.csv and study_spec.json alone (no members,
  no training): a published study's tables and pictures can always be
  rebuilt from its committed files. Returns study.md."""
  folder = pathlib.Path(folder)
  spec_path = folder / SPEC_JSON
  if not spec_path.is_file():
    raise errors.WorkdirError(f'{spec_path} is missing: is {folder} a study '
                              'folder that tools/study.py wrote or published?')
  try:
    spec = json.loads(spec_path.read_text())
    typed = {field: {str(v): v for v in values}
             for field, values in spec['vary']}
    for key in ('baseline', 'seeds', 'target_accuracy'):
      spec[key]  # pylint: disable=pointless-statement
  except (ValueError, KeyError, TypeError, AttributeError):
    raise errors.WorkdirError(
        f'{spec_path} is damaged (not the JSON tools/study.py writes, cut '
        'short?): restore it from where the study was published.') from None
  rows = [_rebuilt_row(row, typed, folder / 'study.csv', i)
          for i, row in enumerate(read_csv(folder / 'study.csv'), start=2)]
  point_of = {r['member']: label({f: r[f] for f in typed}) for r in rows}
  per_epoch = []
  for i, r in enumerate(read_csv(folder / 'study_epochs.csv'), start=2):
    try:
      per_epoch.append({
          'member': r['member'], 'point': point_of[r['member']],
          'epoch': int(r['epoch']),
          **{key: float(r[key]) for key in EPOCH_ROW_FIELDS[2:]}})
    except (KeyError, ValueError, TypeError):
      raise _damaged_row(folder / 'study_epochs.csv', i) from None
  return write_tables(folder, rows, per_epoch, spec)


def _rebuilt_row(row, typed, path, line) -> dict:
  """A study.csv row with its values typed as the study wrote them."""
  try:
    out = {key: row[key] for key in ('member', 'data_fingerprint')}
    out.update({field: typed[field][row[field]] for field in typed})
    out.update(seed=int(row['seed']), finished=int(row['finished']),
               diverged=int(row.get('diverged') or 0))
    for key in ('final_test_accuracy', 'best_test_accuracy',
                'final_test_loss', 'wall_s'):
      if row[key] != '':
        out[key] = float(row[key])
    for key in ('best_epoch', 'epochs_to_target'):
      out[key] = _number(row[key], int)
  except (KeyError, ValueError, TypeError):
    raise _damaged_row(path, line) from None
  if None in out.values():
    raise _damaged_row(path, line)
  return out


def _damaged_row(path, line) -> errors.WorkdirError:
  return errors.WorkdirError(
      f'{path} is damaged at line {line} (a row cut short, or a value that '
      'is not the study\'s): restore it from where the study was published.')


def publish(workdir, members_, destination) -> pathlib.Path:
  """Copies a study's results to `destination` (e.g. docs/studies/NAME):
  its REPORT_FILES, SPEC_JSON and every member's config.json (small; no
  checkpoints), so that the tables and pictures can be rebuilt and every
  member rerun from what is committed."""
  workdir, destination = pathlib.Path(workdir), pathlib.Path(destination)
  destination.mkdir(parents=True, exist_ok=True)
  for name in (*REPORT_FILES, SPEC_JSON):
    files.write_bytes(destination / name, files.read_bytes(workdir / name))
  for member in members_:
    folder = files.make_folder_below(destination,
                                     destination / 'members' / member.name)
    files.write_bytes(folder / run_logs.CONFIG_JSON, files.read_bytes(
        member.check_folder() / run_logs.CONFIG_JSON))
  return destination


def epoch_rows(member):
  epochs = run_logs.read_epochs(member.workdir, allow_empty=True)
  return [{'member': member.name, 'point': label(member.point),
           'epoch': int(e), 'test_accuracy': float(a), 'test_loss': float(l),
           'train_loss': float(t)}
          for e, a, l, t in zip(epochs['epoch'], epochs['test_accuracy'],
                                epochs['test_loss'], epochs['train_loss'])]
