"""Training a budget sweep: one trunk per seed paused at every cooldown
start, a branch made from it at each (its records and its state there,
under the branch's own config), each branch's cooldown; the folders, the
wall time they cost, and carrying a finished seed between machines."""

import json
import pathlib
import shutil
import time

from absl import logging

from budgets.plan import Branch
from budgets.plan import branch_config
from budgets.plan import branches_of
from budgets.plan import cooldown_start
from budgets.plan import cooldowns_of
from budgets.plan import trunk_config
from machinery import checkpoints
from machinery import errors
from machinery import files
from machinery import run_logs
import studies
import train

TRUNK = 'trunk'
PARTIAL = '.partial'           # a branch being made; renamed when complete
MARKER = '.made_by_budgets'    # what this tool made (and may remove)
COST_JSON = 'cost.json'


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
