"""How many epochs? A whole budget curve from one WSD trunk per seed.

Up to its decay a warmup-stable-decay run does not depend on its length
(schedules.wsd_schedule): with the cooldown a fixed share of the run
(`decay_fraction`), a B-epoch run is the peak-rate run up to its own
S_B = T_B - round(decay_fraction x T_B), then a short cooldown. So one trunk
per seed, trained at the peak up to the largest S_B and paused at every S_B,
can be branched into every budget: each branch copies the trunk's records
and its state at S_B into a run directory of its own, with the config of
the B-epoch run, and resumes there (exact resume), which makes it that run
step for step (MiniCPM, arXiv 2404.06395; Hägele et al., arXiv 2405.18392).

The trunk is the longest budget's own run, paused (train.train_group's
`until_step`): its config.json says what it is. Layout under the workdir:

  seed<S>/trunk/          the trunk (checkpoints at every S_B)
  seed<S>/budget<B>/      one normal run directory per budget (main.py's)
  budgets.csv, budgets.json, budgets.md, budgets.png, cost.json

Several cooldowns (decay fractions x shapes, Hagele et al.'s comparison)
branch from the same trunk too: every (fraction, shape) of every budget is
a branch `budget<B>_<shape>_<fraction>`, the trunk trained up to the latest
cooldown start of them all. With one cooldown the names, rows and report
are those of a plain budget sweep.

Everything resumes: a trunk from its last checkpoint, a branch already made
is not made again, a finished branch is not trained again. With a carry
folder (carry_out, carry_in) a seed whose branches all finished on one
machine is not trained again on the next: on 2 CPU cores a sweep outlives
a session.
"""

import dataclasses
import json
import math
import pathlib
import shutil
import time

from absl import logging

from machinery import checkpoints
from machinery import errors
from machinery import files
from machinery import parallel
from machinery import plots
from machinery import run_logs
from machinery import stats
from machinery import validation
import schedules
import studies
import tasks
import train

TRUNK = 'trunk'
PARTIAL = '.partial'           # a branch being made; renamed when complete
MARKER = '.made_by_budgets'    # what this tool made (and may remove)
COST_JSON = 'cost.json'
ROW_FIELDS = ('budget', 'seed', 'final_test_accuracy', 'best_test_accuracy',
              'final_test_loss', 'cooldown_start_step',
              'cooldown_epochs_trained')
COOLDOWN_FIELDS = ('decay_shape', 'decay_fraction')  # rows, several cooldowns
REPORT_FILES = ('budgets.csv', 'budgets.json', 'budgets.md', 'budgets.png')


@dataclasses.dataclass(frozen=True)
class Cooldown:
  """A cooldown: the last `fraction` of each budget, of this `shape`."""
  fraction: float
  shape: str

  @property
  def name(self) -> str:
    return f'{self.shape}_{self.fraction:g}'


def cooldowns_of(config, decay_fraction) -> tuple:
  """`decay_fraction`: one fraction (the config's decay_shape), or the
  sweep's Cooldowns already."""
  if isinstance(decay_fraction, (tuple, list)):
    return tuple(decay_fraction)
  return (Cooldown(decay_fraction, config.decay_shape),)


def parse_cooldowns(config, fractions: list, shapes: list) -> tuple:
  """--decay_fraction=0.1,0.2 x --decay_shapes=linear,1-sqrt -> every
  (fraction, shape) as a Cooldown; no shapes: the config's decay_shape."""
  try:
    values = [float(f) for f in fractions]
  except ValueError:
    raise errors.ConfigError(
        f'--decay_fraction={",".join(fractions)} is invalid: must be '
        'fractions in (0, 1), e.g. --decay_fraction=0.1,0.2,0.4.') from None
  if not values or len(set(values)) != len(values):
    raise errors.ConfigError(
        f'--decay_fraction={",".join(fractions)} is invalid: must name each '
        'fraction once.')
  if len(set(shapes)) != len(shapes):
    raise errors.ConfigError(f'--decay_shapes={",".join(shapes)} is invalid: '
                             'must name each shape once.')
  for shape in shapes:
    if shape not in schedules.DECAY_SHAPES:
      raise errors.ConfigError(
          f'--decay_shapes={",".join(shapes)} is invalid: each must be one '
          f'of {", ".join(schedules.DECAY_SHAPES)}.')
  return tuple(Cooldown(f, shape) for f in values
               for shape in (shapes or [config.decay_shape]))


@dataclasses.dataclass(frozen=True)
class Branch:
  """One run of the sweep: a budget with a cooldown; `name` its folder."""
  budget: int
  cooldown: Cooldown
  name: str


def branches_of(budgets, cooldowns) -> list:
  """Every (budget, cooldown): `budget<B>` alone when there is one
  cooldown (a plain budget sweep), else `budget<B>_<shape>_<fraction>`."""
  return [Branch(b, c, f'budget{b}' if len(cooldowns) == 1
                 else f'budget{b}_{c.name}')
          for c in cooldowns for b in budgets]


def parse_budgets(text: str) -> tuple[int, ...]:
  """'2,3,5,10' -> (2, 3, 5, 10): whole epochs, increasing."""
  allowed = ('must be whole epochs >= 1 in increasing order, e.g. '
             '--budgets=2,3,5,10')
  try:
    budgets = tuple(int(v) for v in str(text).split(','))
  except ValueError:
    raise errors.ConfigError(f'--budgets={text} is invalid: {allowed}.'
                             ) from None
  if not budgets or any(b < 1 for b in budgets) or any(
      b <= a for a, b in zip(budgets, budgets[1:])):
    raise errors.ConfigError(f'--budgets={text} is invalid: {allowed}.')
  return budgets


def budget_config(config, budget: int, decay_fraction: float, seed: int,
                  decay_shape: str | None = None):
  """The config of the B-epoch run that branch B must equal."""
  config = config.copy_and_resolve_references()
  config.num_epochs = budget
  config.decay_fraction = decay_fraction
  if decay_shape is not None:
    config.decay_shape = decay_shape
  config.seed = seed
  return config


def branch_config(config, branch: Branch, seed: int):
  return budget_config(config, branch.budget, branch.cooldown.fraction, seed,
                       branch.cooldown.shape)


def trunk_config(config, budgets, cooldowns, seed: int):
  """The trunk: the longest budget's run with the latest cooldown start
  (the smallest fraction), paused at every branch's start."""
  latest = min(cooldowns, key=lambda c: c.fraction)
  return budget_config(config, budgets[-1], latest.fraction, seed,
                       latest.shape)


def check_plan(config, budgets, decay_fraction, seeds) -> None:
  """Every refusal before any training: one line each."""
  if config.schedule != 'wsd':
    raise errors.ConfigError(
        f"config.schedule={config.schedule!r} is invalid for "
        "tools/budgets.py: it branches warmup-stable-decay runs, whose rate "
        "before the cooldown does not depend on the run's length; use "
        "--config=configs/wsd.py (or --config.schedule=wsd).")
  cooldowns = cooldowns_of(config, decay_fraction)
  for fraction in sorted({c.fraction for c in cooldowns}):
    if not (isinstance(fraction, (int, float)) and 0 < fraction < 1):
      raise errors.ConfigError(
          f'--decay_fraction={fraction} is invalid: must lie in (0, 1) '
          '(the share of each budget its cooldown takes; a cooldown of the '
          'whole run leaves no trunk to branch from: train such runs with '
          'tools/study.py --vary=num_epochs=...).')
  if seeds < 1:
    raise errors.ConfigError(f'--seeds={seeds} is invalid: must be >= 1.')
  for branch in branches_of(budgets, cooldowns):
    budget, fraction = branch.budget, branch.cooldown.fraction
    cooldown = fraction * budget
    if config.warmup_epochs + cooldown > budget:
      raise errors.ConfigError(
          f'--budgets: a budget of {budget} epoch(s) is shorter than '
          f'warmup_epochs ({config.warmup_epochs:g}) plus its cooldown '
          f'({cooldown:g} = {fraction:g} x {budget}); drop it or '
          'shorten the warmup.')
    validation.validate_config(branch_config(config, branch, 0))


def cooldown_start(config, steps_per_epoch: int) -> int:
  """S_B: the first step of the budget's cooldown (its last step at the
  peak), as its own schedule computes it."""
  total = config.num_epochs * steps_per_epoch
  start, _ = schedules.wsd_decay_start(
      total, config.decay_epochs * steps_per_epoch, config.decay_fraction)
  return start


def check_call_grouping(config, starts, steps_per_epoch) -> None:
  """With several steps per jitted call a branch point must lie on a call
  boundary, or the branch would group its steps unlike the B-epoch run."""
  k = parallel.steps_per_call(config)
  for start in starts:
    if k > 1 and start % steps_per_epoch % k:
      raise errors.ConfigError(
          f'config.steps_per_call={k} is invalid here: a cooldown starts at '
          f'step {start}, inside a call of {k} steps, so its branch would '
          'not be the run it stands for; use --config.steps_per_call=1.')


def seed_dir(workdir, seed) -> pathlib.Path:
  return pathlib.Path(workdir) / f'seed{seed}'


def branch_dir(workdir, seed, budget) -> pathlib.Path:
  """Branch `budget` (a budget, or a Branch) of `seed`."""
  name = budget.name if isinstance(budget, Branch) else f'budget{budget}'
  return seed_dir(workdir, seed) / name


def is_finished(run_dir, config, fingerprint=None) -> bool:
  """Whether `run_dir` holds this config's run, complete: its own
  config.json (written when the branch itself trained; a branch just made
  has none, and holds only the trunk's records up to its cooldown start)
  and its last epoch recorded.

  Raises:
    ResumeError: it holds a run of another config, or (given `fingerprint`)
      one trained on other data.
  """
  run_dir = pathlib.Path(run_dir)
  if not (run_dir / run_logs.CONFIG_JSON).is_file():
    return False
  studies.check_recorded_config(run_dir, config, f'The run in {run_dir}')
  recorded = run_logs.read_config(run_dir).get('run_environment') or {}
  if fingerprint and recorded.get('data_fingerprint') not in (None,
                                                              fingerprint):
    raise errors.ResumeError(
        f'The run in {run_dir} was trained on other data (data fingerprint '
        f'{recorded["data_fingerprint"]} there, {fingerprint} now); use the '
        'data it was trained on, or a new --workdir (or --carry).')
  return studies.last_epoch_recorded(run_dir, config)


def make_branch(trunk, trunk_config, destination, config, start) -> None:
  """destination: a run directory of `config` paused at step `start`.

  The trunk's records up to `start` (the trunk may be further on) and its
  state at `start`, saved under the branch's own config.
  Built in a `.partial` folder and renamed into place, so a crash leaves
  either nothing or a whole branch.
  """
  partial = destination.with_name(destination.name + PARTIAL)
  if partial.exists() or partial.is_symlink():
    if partial.is_symlink() or not (partial / MARKER).is_file():
      raise errors.WorkdirError(
          f'{partial} is in the way and was not made by tools/budgets.py: '
          'move it away.')
    shutil.rmtree(partial)  # an unfinished branch of ours
  partial.mkdir(parents=True)
  files.write_text(partial / MARKER, 'made by tools/budgets.py\n')
  for name in (run_logs.STEP_LOG, run_logs.EPOCH_LOG):
    if (trunk / name).is_file():
      files.write_bytes(partial / name, files.read_bytes(trunk / name))
  run_logs.truncate_records(partial, start)
  if (trunk / run_logs.TENSORBOARD_DIR).is_dir():
    shutil.copytree(trunk / run_logs.TENSORBOARD_DIR,
                    partial / run_logs.TENSORBOARD_DIR, symlinks=True)
    run_logs.purge_events(partial / run_logs.TENSORBOARD_DIR, start)
  run = train.setup(config)
  source = checkpoints.CheckpointStore(trunk, trunk_config.keep_checkpoints,
                                       run.data.fingerprint)
  try:
    restored = source.restore_latest(run.state, trunk_config, at_most=start)
  finally:
    source.close()
  if restored is None or restored.step != start:
    raise errors.ResumeError(
        f'The trunk in {trunk} no longer holds its checkpoint of step '
        f'{start} (the start of budget {config.num_epochs}\'s cooldown): '
        f'remove {trunk} to train it again, or use a new --workdir.')
  target = checkpoints.CheckpointStore(partial, config.keep_checkpoints,
                                       run.data.fingerprint)
  try:
    target.save(restored.state, restored.data_rng, restored.epoch, config)
  finally:
    target.close()
  partial.rename(destination)


class Cost:
  """Measured wall time per run segment, kept across invocations."""

  def __init__(self, workdir):
    self.path = pathlib.Path(workdir) / COST_JSON
    self.seconds = {}
    if self.path.is_file():
      try:
        self.seconds = dict(json.loads(self.path.read_text()))
      except (ValueError, TypeError):
        raise errors.WorkdirError(
            f'{self.path} is damaged (not the JSON this tool writes): move '
            'it away to start its count of wall time over.') from None

  def add(self, seconds: dict) -> None:
    """Wall times measured elsewhere (a carried seed's)."""
    self.seconds.update({k: float(v) for k, v in seconds.items()})
    files.write_text(self.path, json.dumps(self.seconds, indent=2))

  def timed(self, key, fn):
    start = time.perf_counter()
    try:
      return fn()
    finally:
      self.seconds[key] = round(self.seconds.get(key, 0.0)
                                + time.perf_counter() - start, 2)
      files.write_text(self.path, json.dumps(self.seconds, indent=2))


def train_seed(config, budgets, decay_fraction, seed, workdir, cost,
               steps_per_epoch, fingerprint=None) -> None:
  """The trunk of one seed, its branches (in the order of their cooldown
  starts), and their cooldowns."""
  cooldowns = cooldowns_of(config, decay_fraction)
  trunk = files.check_no_links_below(workdir, seed_dir(workdir, seed) / TRUNK)
  trunk_run = trunk_config(config, budgets, cooldowns, seed)
  branches = sorted(branches_of(budgets, cooldowns), key=lambda b: (
      cooldown_start(branch_config(config, b, seed), steps_per_epoch),
      b.budget))
  for branch in branches:
    destination = files.check_no_links_below(
        workdir, branch_dir(workdir, seed, branch))
    if destination.exists():
      continue
    run_config = branch_config(config, branch, seed)
    start = cooldown_start(run_config, steps_per_epoch)
    logging.info('Seed %d: trunk to step %d (%s starts its cooldown there).',
                 seed, start, branch.name)
    cost.timed(f'seed{seed}/{TRUNK}', lambda s=start: train.train_and_evaluate(
        trunk_run, str(trunk), until_step=s))
    cost.timed(f'seed{seed}/{branch.name}', lambda d=destination,
               c=run_config, s=start: make_branch(trunk, trunk_run, d, c, s))
  for branch in branches:
    destination = branch_dir(workdir, seed, branch)
    run_config = branch_config(config, branch, seed)
    if is_finished(destination, run_config, fingerprint):
      continue
    logging.info('Seed %d: cooldown of %s.', seed, branch.name)
    cost.timed(f'seed{seed}/{branch.name}',
               lambda d=destination, c=run_config: train.train_and_evaluate(
                   c, str(d)))


def branch_rows(config, budgets, decay_fraction, seeds, workdir,
                steps_per_epoch) -> list[dict]:
  """A row per (budget, seed) from the branches' epochs.csv (per budget,
  cooldown and seed with several cooldowns)."""
  rows = []
  cooldowns = cooldowns_of(config, decay_fraction)
  for seed in range(seeds):
    for branch in branches_of(budgets, cooldowns):
      budget = branch.budget
      run_config = branch_config(config, branch, seed)
      epochs = run_logs.read_epochs(branch_dir(workdir, seed, branch))
      start = cooldown_start(run_config, steps_per_epoch)
      rows.append({
          'budget': budget, 'seed': seed,
          **({'decay_shape': branch.cooldown.shape,
              'decay_fraction': branch.cooldown.fraction}
             if len(cooldowns) > 1 else {}),
          'final_test_accuracy': float(epochs['test_accuracy'][-1]),
          'best_test_accuracy': float(max(epochs['test_accuracy'])),
          'final_test_loss': float(epochs['test_loss'][-1]),
          'cooldown_start_step': start,
          'cooldown_epochs_trained': round(budget - start / steps_per_epoch,
                                           4)})
  return rows


def carry_out(carry, config, budgets, decay_fraction, seed, workdir,
              cost, fingerprint=None) -> bool:
  """Copies a seed's finished branches' records (no checkpoints) to
  `carry`, with the machine that trained them and their wall times: commit
  that folder, and carry_in takes the seed on any machine. Returns whether
  the seed was finished (and so carried)."""
  branches = _branch_configs(config, budgets, decay_fraction, seed)
  if not all(is_finished(branch_dir(workdir, seed, b), c, fingerprint)
             for b, c in branches.items()):
    return False
  for branch in branches:
    studies.copy_records_out(branch_dir(workdir, seed, branch),
                             branch_dir(carry, seed, branch), carry)
  mine = {k: v for k, v in cost.seconds.items()
          if k.startswith(f'seed{seed}/')}
  files.write_text(files.check_no_links_below(carry, seed_dir(carry, seed))
                   / COST_JSON, json.dumps(mine, indent=2))
  return True


def carry_in(carry, config, budgets, decay_fraction, seed, workdir,
             cost, fingerprint=None) -> bool:
  """Takes a seed that finished on another machine from `carry`: its
  branches' records and wall times, and the machine that trained them.
  Only a seed with no folder here yet and every branch finished there, of
  this very config: a half-done seed is trained here, never stitched.
  Returns whether it was taken.

  Raises:
    ResumeError: a carried branch's config is not this sweep's, or (given
      `fingerprint`) it was trained on other data.
  """
  source = seed_dir(carry, seed)
  branches = _branch_configs(config, budgets, decay_fraction, seed)
  if (seed_dir(workdir, seed).exists()
      or not all(is_finished(branch_dir(carry, seed, b), c, fingerprint)
                 for b, c in branches.items())):
    return False
  for branch in branches:
    studies.copy_records_in(branch_dir(carry, seed, branch),
                            branch_dir(workdir, seed, branch), workdir)
  if (source / COST_JSON).is_file():
    cost.add(json.loads((source / COST_JSON).read_text()))
  return True


def trained_on(budgets, seeds, workdir, cooldowns=(None,)) -> list[dict]:
  """The machines (distinct) that trained the branches: this one, unless
  every seed was carried in, and those of the seeds carried in."""
  folders = [branch_dir(workdir, seed, branch) for seed in range(seeds)
             for branch in branches_of(budgets, cooldowns)]
  carried = studies.carried_machines(folders)
  if all((f / studies.MACHINE_JSON).is_file() for f in folders):
    return carried
  here = studies.machine()
  return [here] + [m for m in carried if m != here]


def _branch_configs(config, budgets, decay_fraction, seed) -> dict:
  """{Branch: its run's config} of one seed."""
  return {b: branch_config(config, b, seed) for b in branches_of(
      budgets, cooldowns_of(config, decay_fraction))}


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
      study = pathlib.Path(__file__).resolve().parent / study
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
