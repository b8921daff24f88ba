"""How well does a schedule law predict here? tools/laws_benchmark.py's
library: the frozen benchmark of docs/laws/benchmark.json, measured.

For each task, each law is fitted on the benchmark's fit set (every seed at
once, and each seed alone for the interval: prediction.LawFit) and asked
for the final training-loss level of every held-out schedule, which is then
trained with 5 seeds. The final level of a run is its mean loss over its
last bin of steps (prediction.last_bin_steps), measured and predicted alike.
Per law and task:

- error: |predicted - measured 5-seed mean| in units of that schedule's
  seed-to-seed standard deviation (median and largest over the held-out
  schedules);
- coverage: the share of held-out schedules whose measured mean lies in
  the predicted 95% interval;
- ranking accuracy: over the pairs of held-out schedules of the fit length
  whose paired 95% interval (paired by seed) excludes zero, the share the
  law orders the same way;
- Kendall's tau between predicted and measured means, over the held-out
  schedules of the fit length (scipy.stats.kendalltau);
- regret: the measured mean of the schedule of the fit length the law
  predicts lowest, minus the lowest measured mean; where the pick is not
  the best, their paired difference by seed with its 95% interval and
  t-test, the laws of a task one Holm family.

Each held-out schedule's curve is kept too, binned after the warmup as a
law is fitted (laws.curve): the seeds' mean loss per bin and each law's
mean over the same steps, for `write`'s picture of the curves.

Ranking, tau and regret use the schedules of the fit length only (decided
with the benchmark, before any number): a longer run is trivially lower.

The verdict per task (`verdict`; its rule fixed on 2026-12-06, before any
benchmark number): a user can pick a schedule from the fit here when
OPTIMIZE_LAW, the law tools/predict.py uses unless told otherwise, (1)
picks the measured best schedule of the fit length or one not detectably
worse than it (Holm-adjusted p >= 0.05; "not detectably worse", never "as
good as", with the smallest difference the test could detect), and (2)
orders at least RANKING_BAR of the separable pairs right. Beside it,
whether it beats each baseline on ranking accuracy and on the median error,
and the held-out schedules it misses: measured mean outside its interval.
"""

import copy
import dataclasses
import itertools
import json
import math
import pathlib

import numpy as np
import scipy.stats

from configs import laws_benchmark
from machinery import errors
from machinery import files
from machinery import plots
from machinery import run_logs
from machinery import stats
import laws
import prediction
import studies

# Besides where the data lives and what is logged (a study's reuse rule),
# how the batch is split over CPU devices may differ: the schedule is the
# same run's.
MAY_DIFFER = studies.REUSE_MAY_DIFFER | {'cpu_devices', 'micro_batch_size',
                                         'steps_per_call'}


# Where runs lie in a folder: a study's members, or tools/budgets.py's
# branches (each the run of its own config, step for step).
RUN_FOLDERS = ('members/*', 'seed*/budget*')


def find_runs(folders, expected, names, seeds) -> dict:
  """{name: {seed: prediction.Run}} of the finished runs under `folders`
  (study or budget sweep workdirs, or their --carry folders: RUN_FOLDERS)
  whose config is `expected(name)` with that seed; where there is none,
  the first steps of a longer run that holds it (`_prefix_run`)."""
  candidates = []
  for folder in folders:
    for member in sorted(path for pattern in RUN_FOLDERS
                         for path in pathlib.Path(folder).glob(pattern)):
      if member.is_dir() and not member.is_symlink():
        recorded = run_logs.read_config(member)
        if recorded:
          candidates.append((member, recorded))
  found = {}
  for name in names:
    config = expected(name)
    for seed in seeds:
      config.seed = seed
      for member, recorded in candidates:
        if studies.is_same_run(recorded, config, MAY_DIFFER):
          try:
            found.setdefault(name, {})[seed] = prediction.load_run(member)
          except errors.WorkdirError:
            continue  # unfinished or diverged: not ground truth
          break
      else:
        prefix = _prefix_run(candidates, config)
        if prefix is not None:
          found.setdefault(name, {})[seed] = prefix
  return found


def _prefix_run(candidates, config):
  """The run of `config` as the first steps of a longer finished run, or
  None. A run differing from `config` in num_epochs alone, whose schedule
  at each of `config`'s steps is `config`'s, trained those steps as
  `config`'s run does: the data order, the initial parameters and every
  random key depend on the seed, epoch and step, never on the length
  (tools/budgets.py's branches rest on the same, byte for byte:
  tests/test_budgets.py). A constant rate at 2x the length is the first
  two thirds of the run at 3x, so the benchmark trains it once."""
  for member, recorded in candidates:
    longer = int(recorded.get('num_epochs', 0))
    if longer <= config.num_epochs:
      continue
    stretched = copy.deepcopy(config)
    stretched.num_epochs = longer
    if not studies.is_same_run(recorded, stretched, MAY_DIFFER):
      continue
    try:
      run = prediction.load_run(member)
    except errors.WorkdirError:
      continue  # unfinished or diverged: not ground truth
    # Both schedules built the same way: the rates train.py recorded (a
    # jitted schedule, float32) differ from these in their last bits.
    rates = prediction.schedule_rates(config, [run])
    steps = len(rates)
    longer_rates = prediction.schedule_rates(stretched, [run])
    if not np.allclose(longer_rates[:steps], rates, rtol=1e-6, atol=0):
      continue  # its rates depend on the length (a decay): another run
    return prediction.Run(
        f'{run.path} (its first {steps} steps)',
        {**run.config, 'num_epochs': config.num_epochs},
        run.rates[:steps], run.losses[:steps])
  return None


@dataclasses.dataclass(frozen=True)
class Truth:
  """A held-out schedule's measured final levels, by seed."""
  name: str
  length: float
  rates: np.ndarray
  finals: dict            # seed -> measured final level
  losses: np.ndarray      # the seeds' mean loss at every step

  @property
  def mean(self) -> float:
    return float(np.mean(list(self.finals.values())))

  @property
  def std(self) -> float:
    return float(np.std(list(self.finals.values()), ddof=1))


def truths(runs: dict, lengths: dict, seeds) -> list:
  """The held-out schedules with every seed finished."""
  out = []
  for name, length in lengths.items():
    by_seed = runs.get(name, {})
    if all(s in by_seed for s in seeds):
      out.append(Truth(name, length, by_seed[seeds[0]].rates,
                       {s: prediction.measured_final(by_seed[s])
                        for s in seeds},
                       np.mean([by_seed[s].losses for s in seeds], axis=0)))
  return out


def binned_curves(law_fit, truth: Truth) -> dict:
  """The measured mean curve of `truth` in the bins a law is fitted on
  (the loss after t updates, t the last step of each bin) and the law's
  mean over each bin's steps."""
  binned = laws.curve(truth.rates[:-1], truth.losses[1:])
  predicted = law_fit.predict(truth.rates, binned.steps.ravel())
  return {'steps': binned.steps[:, -1].tolist(),
          'measured': binned.losses.tolist(),
          'predicted': predicted.reshape(binned.steps.shape).mean(1).tolist()}


def separable_pairs(held_out: list) -> list:
  """Pairs (a, b) of schedules of the fit length whose paired 95% interval
  of measured finals excludes zero, with the sign of a - b."""
  same = [t for t in held_out if t.length == 1.0]
  pairs = []
  for a, b in itertools.combinations(same, 2):
    d = _paired(a.finals, b.finals)
    if d.ci95_low > 0 or d.ci95_high < 0:
      pairs.append((a.name, b.name, 1 if d.mean > 0 else -1))
  return pairs


def score(law_fit, held_out: list, pairs: list) -> dict:
  """Every measure of the module docstring for one fitted law."""
  rows = {}
  for truth in held_out:
    level = prediction.predicted_final_bin(law_fit, truth.rates)
    low, high = level['interval'] or (math.nan, math.nan)
    rows[truth.name] = {
        'predicted': level['final_loss'], 'interval': level['interval'],
        'measured_mean': truth.mean, 'measured_std': truth.std,
        'error_in_std': abs(level['final_loss'] - truth.mean) / truth.std,
        'inside': bool(low <= truth.mean <= high),
        'curve': binned_curves(law_fit, truth)}
  errors_ = [r['error_in_std'] for r in rows.values()]
  same = [t.name for t in held_out if t.length == 1.0]
  predicted = [rows[n]['predicted'] for n in same]
  measured = [rows[n]['measured_mean'] for n in same]
  right = [np.sign(rows[a]['predicted'] - rows[b]['predicted']) == sign
           for a, b, sign in pairs]
  pick = same[int(np.argmin(predicted))] if same else None
  best = same[int(np.argmin(measured))] if same else None
  finals = {t.name: t.finals for t in held_out}
  return {
      'schedules': rows,
      'error_in_std_median': float(np.median(errors_)) if errors_ else None,
      'error_in_std_max': float(np.max(errors_)) if errors_ else None,
      'coverage': (sum(r['inside'] for r in rows.values()) / len(rows)
                   if rows else None),
      'separable_pairs': len(pairs),
      'ranking_accuracy': float(np.mean(right)) if right else None,
      'kendall_tau': (float(scipy.stats.kendalltau(predicted, measured)[0])
                      if len(same) > 2 else None),
      'pick': pick,
      'best': best,
      'regret': (rows[pick]['measured_mean'] - min(measured)
                 if pick else None),
      'regret_test': (_paired(finals[pick], finals[best])
                      if pick != best else None)}


def _paired(finals, baseline) -> stats.Difference:
  """finals - baseline ({seed: final level}) over the seeds both have."""
  seeds = sorted(set(finals) & set(baseline))
  return stats.paired_difference([finals[s] for s in seeds],
                                 [baseline[s] for s in seeds])


def _regret_tests_in_family(laws_results: dict) -> None:
  """Each law's pick against the best, Holm-adjusted over the task's laws,
  kept as a dict (TASK_results.json)."""
  tested = [row for row in laws_results.values() if row['regret_test']]
  adjusted = stats.in_family([row['regret_test'] for row in tested])
  for row, test in zip(tested, adjusted):
    row['regret_test'] = {k: v for k, v in test.as_dict().items()
                          if k in ('mean', 'ci95_low', 'ci95_high', 'n',
                                   'p_value', 'p_holm', 'detectable')}


# The law whose --optimize schedule the benchmark trains: tools/predict.py's
# default, the one a user reaches for.
OPTIMIZE_LAW = 'multi_power'
# The config --optimize starts from: the fit length, the task's warmup and
# peak (the benchmark's cosine to zero).
OPTIMIZE_FROM = 'cosine_to_zero'


def optimized(law_fit, config, fit_runs, reference: Truth | None) -> dict:
  """prediction.optimize's schedule for `config` (its knots, predicted
  final level and the config to train), beside the law's prediction for
  the measured reference schedule over the same last bin."""
  knots, found = prediction.optimize(law_fit, config, fit_runs)
  rates = prediction.schedule_rates(found, fit_runs)
  out = {'law': law_fit.pooled.law, 'from': OPTIMIZE_FROM,
         'knots': list(knots),
         'predicted': prediction.predicted_final_bin(law_fit, rates),
         'config': json.loads(found.to_json_best_effort())}
  if reference is not None:
    out['reference'] = {
        'name': reference.name, 'measured_mean': reference.mean,
        'predicted': prediction.predicted_final_bin(
            law_fit, reference.rates)['final_loss']}
  return out


def run_task(runs: dict, fit_names, held_out_lengths: dict, seeds,
             law_names=tuple(laws.LAWS), optimize_config=None) -> dict:
  """The benchmark of one task, every law in `law_names`; with
  `optimize_config`, also OPTIMIZE_LAW's best schedule from it (`optimized`).

  Raises:
    ConfigError: a fit schedule lacks a finished run of some seed.
  """
  fit_runs = []
  for name in fit_names:
    missing = [s for s in seeds if s not in runs.get(name, {})]
    if missing:
      raise errors.ConfigError(
          f'the fit schedule {name!r} has no finished run of seed(s) '
          f'{", ".join(map(str, missing))}: train the benchmark first '
          '(docs/laws/run_benchmark.sh)')
    fit_runs += [runs[name][s] for s in seeds]
  prediction.check_fit_set(fit_runs)
  held_out = truths(runs, held_out_lengths, seeds)
  pairs = separable_pairs(held_out)
  result = {'seeds': list(seeds), 'fit': list(fit_names),
            'held_out': [t.name for t in held_out],
            'missing': [n for n in held_out_lengths
                        if n not in {t.name for t in held_out}],
            'laws': {}}
  for law in law_names:
    law_fit = prediction.fit_runs(law, fit_runs)
    result['laws'][law] = {'params': law_fit.pooled.params,
                           **score(law_fit, held_out, pairs)}
    if law == OPTIMIZE_LAW and optimize_config is not None:
      # Its starting schedule, measured (a fit run: not a held-out truth).
      [reference] = truths(runs, {OPTIMIZE_FROM: 1.0}, seeds) or [None]
      result['optimized'] = optimized(law_fit, optimize_config, fit_runs,
                                      reference)
  _regret_tests_in_family(result['laws'])
  result['verdict'] = verdict(result)
  return result


# The share of separable pairs a law must order right for a user to pick by
# it (the verdict's rule, fixed before any benchmark number).
RANKING_BAR = 0.8
BASELINES = ('step_power', 's1_power')


def verdict(result) -> dict:
  """The module docstring's verdict for OPTIMIZE_LAW on one task:
  {'answer': 'yes' | 'no' | 'not measured', 'reasons': [sentences]}."""
  row = result['laws'].get(OPTIMIZE_LAW)
  if row is None or row['pick'] is None:
    return {'answer': 'not measured',
            'reasons': [f'{OPTIMIZE_LAW} was not scored on schedules of the '
                        'fit length']}
  reasons, good = [], True
  test = row['regret_test']
  if test is None:
    reasons.append(f'it picks {row["pick"]}, the measured best')
  elif test['p_holm'] >= stats.ALPHA:
    reasons.append(
        f'it picks {row["pick"]}, not detectably worse than the measured '
        f'best, {row["best"]} ({_paired_text(test)}; could detect '
        f'±{test["detectable"]:.4f})')
  else:
    good = False
    reasons.append(f'it picks {row["pick"]}, worse than the measured best, '
                   f'{row["best"]} ({_paired_text(test)})')
  pairs, accuracy = row['separable_pairs'], row['ranking_accuracy']
  if not pairs:
    reasons.append('no two schedules of the fit length are separable by '
                   'their seeds: nothing to rank')
  else:
    right = round(accuracy * pairs)
    ok = accuracy >= RANKING_BAR
    good = good and ok
    reasons.append(f'it orders {right} of the {pairs} separable pairs right '
                   f'({"at least" if ok else "below"} '
                   f'{RANKING_BAR:.0%})')
  for baseline in BASELINES:
    other = result['laws'].get(baseline)
    if other is None:
      continue
    beats = [what for what, mine, theirs, higher in (
        ('ranking accuracy', accuracy, other['ranking_accuracy'], True),
        ('median error', row['error_in_std_median'],
         other['error_in_std_median'], False))
             if mine is not None and theirs is not None
             and (mine > theirs if higher else mine < theirs)]
    reasons.append(f'against `{baseline}` it is better on '
                   + (' and '.join(beats) if beats else 'neither ranking '
                      'accuracy nor median error'))
  missed = [name for name, scored in row['schedules'].items()
            if scored['interval'] and not scored['inside']]
  if missed:
    reasons.append('measured means outside its interval: '
                   + ', '.join(missed))
  return {'answer': 'yes' if good else 'no', 'reasons': reasons}


def _number(value, digits=2) -> str:
  if value is None or (isinstance(value, float) and math.isnan(value)):
    return '—'
  return f'{value:.{digits}f}'


def markdown(results: dict) -> str:
  """The table per task: a row per law, the baselines included."""
  lines = []
  for task, result in results.items():
    n = len(result['held_out'])
    lines += [f'### {task}', '',
              f'Fitted on {", ".join(result["fit"])} (seeds '
              f'{", ".join(map(str, result["seeds"]))}); {n} held-out '
              'schedules' + (f' ({", ".join(result["missing"])} not trained '
                             'yet)' if result['missing'] else '') + '.', '',
              '| law | error, median (σ) | error, largest (σ) | coverage | '
              'ranking accuracy (pairs) | Kendall τ | pick | regret |',
              '|---|---|---|---|---|---|---|---|']
    for law, row in result['laws'].items():
      coverage = (f'{round(100 * row["coverage"])}%'
                  if row['coverage'] is not None else '—')
      lines.append(
          f'| `{law}` | {_number(row["error_in_std_median"], 1)} | '
          f'{_number(row["error_in_std_max"], 1)} | {coverage} | '
          f'{_number(row["ranking_accuracy"])} ({row["separable_pairs"]}) | '
          f'{_number(row["kendall_tau"])} | {row["pick"] or "—"} | '
          f'{_regret(row)} |')
    lines.append('')
    if 'verdict' in result:
      found = result['verdict']
      lines += [f'Can a user pick a schedule from the fit here, by '
                f'`{OPTIMIZE_LAW}`? **{found["answer"]}**: '
                + '; '.join(found['reasons']) + '.', '']
    if 'optimized' in result:
      lines += [_optimized_line(task, result['optimized']), '']
  return '\n'.join(lines)


def _paired_text(test) -> str:
  """'+0.0200 [+0.0100, +0.0300], Holm p=0.010'."""
  return (f'{test["mean"]:+.4f} [{test["ci95_low"]:+.4f}, '
          f'{test["ci95_high"]:+.4f}], Holm {stats.p_text(test["p_holm"])}')


def _regret(row) -> str:
  """The regret, and where the pick is not the best its Holm p."""
  test = row.get('regret_test')
  text = _number(row['regret'], 4)
  return text + (f' (Holm {stats.p_text(test["p_holm"])})' if test else '')


def optimized_path(output, task) -> pathlib.Path:
  """Where `write` puts a task's optimized schedule, for configs/recorded.py."""
  return pathlib.Path(output) / f'{task}_optimized.schedule.json'


def _optimized_line(task, found) -> str:
  predicted = found['predicted']
  interval = predicted['interval']
  around = f' [{interval[0]:.4f}, {interval[1]:.4f}]' if interval else ''
  line = (f'`{found["law"]}`\'s best non-increasing schedule after the '
          f'warmup (knots {", ".join(f"{k:g}" for k in found["knots"])} of '
          f'the peak): predicted final level {predicted["final_loss"]:.4f}'
          f'{around}')
  reference = found.get('reference')
  if reference:
    line += (f', against {reference["predicted"]:.4f} predicted and '
             f'{reference["measured_mean"]:.4f} measured for '
             f'{reference["name"]}')
  return (line + '. docs/laws/run_benchmark.sh trains it (`configs/'
          f'recorded.py:docs/laws/{optimized_path("", task)}`), 5 seeds, '
          'against cosine to zero, WSD 1-sqrt 20% and linear to zero.')


def benchmark(runs: dict, law_names, expected=None) -> dict:
  """{task: prediction_benchmark.run_task's result}. `expected(task,
  name)`: the config of a benchmark run (default configs/laws_benchmark.py;
  tests shrink it)."""
  expected = expected or (lambda task, name: laws_benchmark.get_config(
      f'{task}:{name}'))
  frozen = json.loads(laws_benchmark.BENCHMARK.read_text())
  fit_names = [e['name'] for e in frozen['fit']]
  lengths = {e['name']: e['length'] for e in frozen['held_out']}
  results = {}
  for task, folders in runs.items():
    seeds = frozen['tasks'][task]['seeds']
    found = find_runs(
        folders, lambda name, t=task: expected(t, name),
        fit_names + list(lengths), seeds)
    results[task] = run_task(found, fit_names, lengths, seeds, law_names,
                             expected(task, OPTIMIZE_FROM))
  return results


def results_path(output, task, suffix) -> pathlib.Path:
  """A task's results file: each task is measured on its own (its ground
  truth lands hours apart from the other's), so each has its own files."""
  return pathlib.Path(output) / f'{task}_results.{suffix}'


def write(results: dict, output) -> str:
  """Writes each task's TASK_results.json and .md, its pictures and its
  optimized schedule into `output`; returns the tables."""
  output = pathlib.Path(output)
  output.mkdir(exist_ok=True)
  tables = []
  for task, result in results.items():
    tables.append(markdown({task: result}))
    files.write_text(results_path(output, task, 'json'),
                     json.dumps({task: result}, indent=1))
    files.write_text(results_path(output, task, 'md'), tables[-1])
    if 'optimized' in result:
      files.write_text(optimized_path(output, task),
                       json.dumps(result['optimized']['config'], indent=2))
    points = {law: [(r['measured_mean'], r['measured_std'], r['predicted'],
                     *(r['interval'] or (np.nan, np.nan)))
                    for r in row['schedules'].values()]
              for law, row in result['laws'].items()}
    plots.plot_law_benchmark(
        points, f'{task}: each law fitted on {", ".join(result["fit"])}, '
        f'predicting {len(result["held_out"])} held-out schedules',
        output / f'{task}_predicted.png')
    if result['held_out']:
      plots.plot_law_curves(
          _curves(result), f'{task}: the training loss of each held-out '
          f'schedule, measured (mean of {len(result["seeds"])} seeds) and '
          f'predicted by each law fitted on {", ".join(result["fit"])}',
          output / f'{task}_curves.png')
  return '\n'.join(tables)  # markdown(results): its tasks' tables, joined


def _curves(result) -> dict:
  """{schedule: (steps, measured, {law: predicted})} of a task's result."""
  curves = {}
  for law, row in result['laws'].items():
    for name, scored in row['schedules'].items():
      curve = scored['curve']
      curves.setdefault(name, (curve['steps'], curve['measured'], {}))[2][
          law] = curve['predicted']
  return curves
