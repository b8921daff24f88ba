"""A schedule study: a grid of configs x seeds, with confidence intervals.

  python tools/study.py --config=configs/default.py --workdir=runs/study \
      --seeds=5 --vary=schedule=constant,warmup_cosine,sgdr \
      [--vary=warmup_epochs=0,1,2] [--baseline=schedule=constant] \
      [--config.num_epochs=5 ...]

Trains every grid point (the cross product of the --vary values) for seeds
0..N-1 (see studies.py for how: one after another, or stacked into one
program with jax.vmap), then reports only what the statistics support: each
point's mean final test accuracy with its 95% Student-t interval, and each
point against its baseline as a paired difference over the same seeds —
"better" or "worse" only when that interval excludes zero, otherwise "no
detectable difference with N seeds".

The baseline names some varied fields (default: all, at their first values);
every point is compared with the point that has the baseline's values in
those fields and its own in the others.

Writes into WORKDIR: study.csv (a row per member), study_epochs.csv (per
member and epoch), study.json (the statistics), study.md (the table a person
reads), study.png (test accuracy per epoch, mean and 95% band per point; with
two numeric varied fields also a heatmap). Members live in WORKDIR/members/,
each a workdir as main.py writes it. Run the same command again to resume:
finished members are not trained again.
"""

import csv
import json
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags
from absl import logging
import numpy as np

from machinery import cli
from machinery import errors
from machinery import plots
from machinery import run_logs
from machinery import stats
from machinery import workdir as workdir_lib
import studies

FLAGS = flags.FLAGS

flags.DEFINE_string('workdir', None, 'Folder of the study and its members.')
flags.DEFINE_integer('seeds', 5, 'Seeds 0..N-1 for every grid point.',
                     lower_bound=1)
flags.DEFINE_multi_string('vary', [], 'FIELD=V1,V2,... (repeatable): the '
                          'grid is the cross product.')
flags.DEFINE_string('baseline', None, 'FIELD=V[,FIELD=V]: what each point is '
                    'compared with; default: the first value of every field.')
flags.DEFINE_float('target_accuracy', 0.99, 'For epochs_to_target.',
                   lower_bound=0, upper_bound=1)
flags.DEFINE_enum('mode', 'auto', studies.MODES, 'auto: stacked (vmap) on '
                  'GPU/TPU, sequential on CPU, the faster there.')
flags.mark_flag_as_required('workdir')
cli.define_config_flag()

FILES = ('study.csv', 'study_epochs.csv', 'study.json', 'study.md',
         'study.png')


def parse_baseline(text, varied) -> dict:
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
    typed = studies.parse_vary(f'{field}={value}', FLAGS.config)[1][0]
    if typed not in values[field]:
      raise errors.ConfigError(f'--baseline={text!r} is invalid: {typed!r} '
                               f'is not among the values of {field}.')
    baseline[field] = typed
  return baseline


# ------------------------------------------------------------ statistics


def summarize(rows, points, baseline, seeds) -> dict:
  """study.json: per point its interval and its paired difference."""
  by_point = {}
  for row in rows:
    if row.get('finished') and 'final_test_accuracy' in row:
      key = studies.label({f: row[f] for f in points[0]})
      by_point.setdefault(key, {})[row['seed']] = row['final_test_accuracy']
  summary = {'seeds': seeds, 'baseline': studies.label(baseline),
             'points': {}}
  for point in points:
    key = studies.label(point)
    accuracy = by_point.get(key, {})
    entry = {'fields': point,
             **stats.mean_interval(list(accuracy.values()) or [np.nan])
             .as_dict()}
    base_key = studies.label({**point, **baseline})
    entry['baseline'] = base_key
    if base_key != key:
      base = by_point.get(base_key, {})
      common = sorted(set(accuracy) & set(base))
      if common:
        difference = stats.paired_difference(
            [accuracy[s] for s in common], [base[s] for s in common])
        entry['vs_baseline'] = {**difference.as_dict(),
                                'excludes_zero': difference.excludes_zero,
                                'verdict': stats.verdict(difference)}
    summary['points'][key] = entry
  return summary


def _pp(value):
  return f'{100 * value:+.2f}'


def markdown(summary, rows, target) -> str:
  """study.md: the ranking with intervals and one sentence per comparison."""
  points = summary['points']
  ranked = sorted(points, key=lambda k: -np.nan_to_num(points[k]['mean'],
                                                       nan=-1))
  pct = f'{100 * target:g}%'
  lines = [
      f'Final test accuracy over seeds 0..{summary["seeds"] - 1} '
      f'(mean and 95% Student-t interval); paired differences against '
      f'the baseline ({summary["baseline"]} in its fields).', '',
      f'| rank | grid point | n | final test acc. | 95% CI | epochs to {pct} '
      '(mean) | vs baseline: paired diff. (pp) [95% CI] |',
      '|---|---|---|---|---|---|---|']
  for rank, key in enumerate(ranked, start=1):
    e = points[key]
    member_rows = [r for r in rows if r.get('finished') and studies.label(
        {f: r[f] for f in e['fields']}) == key]
    reached = [r['epochs_to_target'] for r in member_rows
               if r.get('epochs_to_target') != '']
    to_target = (f'{np.mean(reached):.1f} ({len(reached)}/{e["n"]} reached)'
                 if reached else f'not reached (0/{e["n"]})')
    versus = e.get('vs_baseline')
    diff = (f'{_pp(versus["mean"])} [{_pp(versus["ci95_low"])}, '
            f'{_pp(versus["ci95_high"])}]' if versus else '(baseline)')
    lines.append(
        f'| {rank} | `{key}` | {e["n"]} | {100 * e["mean"]:.2f}% | '
        f'[{100 * e["ci95_low"]:.2f}, {100 * e["ci95_high"]:.2f}] | '
        f'{to_target} | {diff} |')
  lines.append('')
  for key in ranked:
    versus = points[key].get('vs_baseline')
    if not versus:
      continue
    if versus['verdict'] == 'no detectable difference':
      sentence = (f'no detectable difference with {versus["n"]} seeds '
                  f'({_pp(versus["mean"])} pp, interval '
                  f'[{_pp(versus["ci95_low"])}, {_pp(versus["ci95_high"])}] '
                  'contains 0)')
    else:
      sentence = (f'{versus["verdict"]}, by {_pp(versus["mean"])} pp '
                  f'[{_pp(versus["ci95_low"])}, {_pp(versus["ci95_high"])}] '
                  f'over {versus["n"]} paired seeds')
    lines.append(f'- `{key}` vs `{points[key]["baseline"]}`: {sentence}.')
  return '\n'.join(lines) + '\n'


def epoch_curves(epoch_rows, points) -> dict:
  """{label: (epochs, mean, low, high)} of test accuracy over seeds."""
  curves = {}
  for point in points:
    key = studies.label(point)
    per_epoch = {}
    for row in epoch_rows:
      if row['point'] == key:
        per_epoch.setdefault(row['epoch'], []).append(row['test_accuracy'])
    epochs = sorted(per_epoch)
    intervals = [stats.mean_interval(per_epoch[e]) for e in epochs]
    curves[key] = (epochs, [i.mean for i in intervals],
                   [i.ci95_low for i in intervals],
                   [i.ci95_high for i in intervals])
  return curves


def heatmap(varied, summary):
  """(x, xs, y, ys, means) when exactly two numeric fields vary."""
  if len(varied) != 2 or not all(
      isinstance(v[0], (int, float)) and not isinstance(v[0], bool)
      for _, v in varied):
    return None
  (y_name, ys), (x_name, xs) = varied
  means = [[summary['points'][studies.label({y_name: y, x_name: x})]['mean']
            for x in xs] for y in ys]
  return x_name, xs, y_name, ys, means


# ----------------------------------------------------------------- output


def write_csv(path, rows, fields):
  with open(path, 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=fields, extrasaction='ignore')
    writer.writeheader()
    writer.writerows(rows)


def epoch_rows(member):
  epochs = run_logs.read_epochs(member.workdir, allow_empty=True)
  return [{'member': member.name, 'point': studies.label(member.point),
           'epoch': int(e), 'test_accuracy': float(a), 'test_loss': float(l),
           'train_loss': float(t)}
          for e, a, l, t in zip(epochs['epoch'], epochs['test_accuracy'],
                                epochs['test_loss'], epochs['train_loss'])]


def report(workdir, members, varied, points, baseline, extra) -> str:
  rows = [studies.member_result(m, FLAGS.target_accuracy) for m in members]
  fields = [f for f, _ in varied]
  write_csv(workdir / 'study.csv', rows,
            ['member', 'seed', *fields, 'final_test_accuracy',
             'best_test_accuracy', 'best_epoch', 'epochs_to_target',
             'final_test_loss', 'wall_s', 'finished'])
  per_epoch = [r for m in members for r in epoch_rows(m)]
  write_csv(workdir / 'study_epochs.csv', per_epoch,
            ['member', 'epoch', 'test_accuracy', 'test_loss', 'train_loss'])
  summary = {**summarize(rows, points, baseline, FLAGS.seeds), **extra}
  (workdir / 'study.json').write_text(json.dumps(summary, indent=2))
  text = markdown(summary, rows, FLAGS.target_accuracy)
  (workdir / 'study.md').write_text(text)
  plots.plot_study(epoch_curves(per_epoch, points), FLAGS.target_accuracy,
                   workdir / 'study.png', heatmap(varied, summary))
  return text


def main(argv):
  del argv
  workdir = pathlib.Path(FLAGS.workdir)
  with cli.one_line_errors():
    workdir_lib.check_usable(workdir)
    varied = [studies.parse_vary(text, FLAGS.config) for text in FLAGS.vary]
    fields = [f for f, _ in varied]
    if len(set(fields)) != len(fields):
      raise errors.ConfigError('--vary names a field twice.')
    points = studies.grid(varied)
    baseline = parse_baseline(FLAGS.baseline, varied)
    members = studies.members(FLAGS.config, points, FLAGS.seeds, workdir)
    with workdir_lib.locked(workdir):
      todo = [m for m in members if not studies.is_finished(m)]
      mode = studies.choose_mode(FLAGS.mode)
      logging.info('Study: %d grid point(s) x %d seed(s) = %d members, %d to '
                   'train (%s).', len(points), FLAGS.seeds, len(members),
                   len(todo), mode)
      start = time.perf_counter()
      studies.train_members(todo, mode)
      extra = {'mode': mode, 'members_trained_now': len(todo),
               'wall_s_now': round(time.perf_counter() - start, 1)}
      text = report(workdir, members, varied, points, baseline, extra)
  print(text)
  print('Wrote ' + ', '.join(str(workdir / f) for f in FILES))


if __name__ == '__main__':
  cli.run(main)
