"""Schedule studies: a grid of configs x seeds, trained and summarised.

A study is the cross product of `--vary` values (its grid points), each run
for seeds 0..N-1: its members. Member (point, seed) is exactly the run of
`python main.py --config=... --config.seed=seed` with the point's fields: the
same initial parameters, the same data order, the same schedule.

Two ways to train the members, with the same records (a workdir per member,
as main.py writes it):

- `sequential`: one `train.train_and_evaluate` after another, with all of
  the project's machinery (micro-batches, CPU devices, exact resume). The
  faster way on a CPU, where one model already keeps the cores busy.
- `stacked`: members that share the shapes of their computation (batch size,
  number of steps, optimizer, data) are trained together in one program:
  `jax.vmap` over their stacked parameters, optimizer states, data orders and
  learning rates, each read from that member's own schedule at its step, so
  the model is compiled once and a GPU sees one larger program. On XLA:CPU
  batched convolutions per member are slow (see the README), so `auto` uses
  it only on accelerators.

Finished members are never trained again; interrupted ones resume from their
checkpoints (a stacked group resumes together).
"""

import csv
import dataclasses
import itertools
import pathlib
import time

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

import input_pipeline
from machinery import bookkeeping
from machinery import checkpoints
from machinery import errors
from machinery import run_logs
from machinery import stats
from machinery import validation
import schedules
import train

MODES = ('auto', 'stacked', 'sequential')
# Fields that give members the same shapes of computation (one program).
GROUP_FIELDS = ('batch_size', 'num_epochs', 'eval_batch_size', 'optimizer',
                'nesterov', 'dataset', 'data_source', 'data_dir', 'idx_dir')


# ----------------------------------------------------------------- the grid


def parse_vary(text: str, config) -> tuple[str, list]:
  """'FIELD=V1,V2,...' -> (field, [values typed like config.FIELD])."""
  field, sep, values = text.partition('=')
  field = field.strip()
  if not sep or not values.strip():
    raise errors.ConfigError(f'--vary={text!r} is invalid: write '
                             'FIELD=VALUE1,VALUE2,...')
  if field not in config:
    raise errors.ConfigError(f'--vary={text!r} is invalid: config has no '
                             f'field {field!r}.')
  if field == 'seed':
    raise errors.ConfigError('--vary=seed=... is invalid: use --seeds=N, '
                             'which pairs the seeds across the grid.')
  return field, [_typed(field, v.strip(), config[field])
                 for v in values.split(',')]


def _typed(field, text, like):
  try:
    if isinstance(like, bool):
      if text.lower() not in ('true', 'false'):
        raise ValueError(text)
      return text.lower() == 'true'
    if isinstance(like, int):
      return int(text)
    if isinstance(like, float):
      return float(text)
    if isinstance(like, str):
      return text
  except ValueError:
    pass
  raise errors.ConfigError(f'--vary: {field}={text!r} is not a '
                           f'{type(like).__name__} like config.{field}.')


def grid(varied: list[tuple[str, list]]) -> list[dict]:
  """The cross product of the varied fields' values, in flag order."""
  fields = [field for field, _ in varied]
  return [dict(zip(fields, values))
          for values in itertools.product(*[v for _, v in varied])]


def label(point: dict) -> str:
  """'schedule=sgdr, warmup_epochs=1' (or 'base' for an empty grid)."""
  return ', '.join(f'{k}={v:g}' if isinstance(v, float) else f'{k}={v}'
                   for k, v in point.items()) or 'base'


@dataclasses.dataclass(frozen=True)
class Member:
  """One (grid point, seed) of a study and where its run lives."""
  point: dict
  seed: int
  config: ml_collections.ConfigDict
  workdir: pathlib.Path

  @property
  def name(self) -> str:
    parts = [f'{k}-{v}' for k, v in self.point.items()]
    return '_'.join(parts + [f'seed{self.seed}'])


def members(base, points, seeds: int, workdir) -> list[Member]:
  """Every (point, seed), each config validated before anything runs."""
  out = []
  for point in points:
    for seed in range(seeds):
      config = base.copy_and_resolve_references()
      with config.unlocked():
        config.update(point)
        config.seed = seed
        config.progress_bar = 'never'  # a bar per member would be noise
      validation.validate_config(config)
      member = Member(point, seed, config, pathlib.Path(workdir))
      out.append(dataclasses.replace(
          member, workdir=pathlib.Path(workdir) / 'members' / member.name))
  return out


def is_finished(member: Member) -> bool:
  """Whether the member's epochs.csv already holds its last epoch.

  Raises:
    ResumeError: the member's folder holds a run of another config (the
      study's config file or flags changed since): it is never counted as
      this member's result.
  """
  recorded = run_logs.read_config(member.workdir)
  if recorded:
    recorded.pop('run_environment', None)
    checkpoints.check_same_config(recorded, member.config,
                                  f'The study member in {member.workdir}')
  try:
    epochs = run_logs.read_epochs(member.workdir, allow_empty=True)
  except errors.WorkdirError:
    return False
  return bool(len(epochs['epoch'])) and int(epochs['epoch'][-1]) == (
      member.config.num_epochs)


def choose_mode(mode: str) -> str:
  """'auto': stacked on GPU/TPU, sequential on CPU (measured: README)."""
  if mode != 'auto':
    return mode
  return 'sequential' if jax.default_backend() == 'cpu' else 'stacked'


def train_members(todo: list[Member], mode: str) -> None:
  """Trains every member of `todo` (none finished) in `mode`."""
  if choose_mode(mode) == 'sequential':
    for member in todo:
      _train_one(member)
    return
  groups = {}
  for member in todo:
    key = tuple(str(member.config[f]) for f in GROUP_FIELDS)
    groups.setdefault(key, []).append(member)
  for group in groups.values():
    if group[0].config.optimizer != 'sgd':  # its state cannot be injected
      for member in group:
        _train_one(member)
    else:
      train_stacked(group)


def _train_one(member: Member) -> None:
  logging.info('Member %s (sequential).', member.name)
  try:
    train.train_and_evaluate(member.config, str(member.workdir))
  except errors.NonFiniteLoss as e:  # one diverged member ends no study
    logging.warning('Member %s diverged: %s', member.name, e)


# ------------------------------------------------------- stacked training


def _stack(trees):
  return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def _unstack(tree, i):
  return jax.tree.map(lambda x: x[i], tree)


def injected_sgd(momentum: float,
                 nesterov: bool) -> optax.GradientTransformation:
  """optax.sgd with its rate (and momentum) as state a step can set."""
  return optax.inject_hyperparams(optax.sgd, static_args=('nesterov',))(
      learning_rate=0.0, momentum=momentum, nesterov=nesterov)


def _with_rate(state, rate):
  hyper = dict(state.opt_state.hyperparams, learning_rate=rate)
  return state.replace(opt_state=state.opt_state._replace(hyperparams=hyper))


def _member_step(state, train_ds, indices, rates):
  """One member's step: train's own device step, its rate set from `rates`.

  The rate of step t is injected into the optimizer state before the step,
  and the same table is the learning_rate_fn the step logs from, so the
  logged rate is the applied one, as in a single run.
  """
  rate_at = lambda step: rates[step]
  return train._step_on_device(  # pylint: disable=protected-access
      _with_rate(state, rate_at(state.step)), train_ds, indices, rate_at)


@jax.jit
def stacked_step(states, train_ds, indices, rates):
  """Every member's step at once: vmap over states, data orders and rates."""
  return jax.vmap(_member_step, in_axes=(0, None, 0, 0))(
      states, train_ds, indices, rates)


@jax.jit
def stacked_eval_step(states, batch):
  return jax.vmap(train.eval_step, in_axes=(0, None))(states, batch)


def _member_states(group, plans):
  """Fresh states as train.setup makes them, but with the rate injected."""
  tx = injected_sgd(group[0].config.momentum, group[0].config.nesterov)
  states, rngs = [], []
  for member, plan in zip(group, plans):
    init_rng, data_rng = jax.random.split(jax.random.key(member.config.seed))
    state = train.create_train_state(init_rng, member.config,
                                     plan.learning_rate_fn, tx=tx)
    hyper = dict(state.opt_state.hyperparams,
                 momentum=jnp.asarray(member.config.momentum, jnp.float32))
    shared = states[0] if states else state  # one apply_fn and tx: stackable
    states.append(state.replace(
        apply_fn=shared.apply_fn, tx=shared.tx,
        opt_state=state.opt_state._replace(hyperparams=hyper)))
    rngs.append(data_rng)
  return states, rngs


class _Group:
  """The bookkeeping of a stacked group: a store and writer per member."""

  def __init__(self, group, states, rngs, data):
    self.members = group
    self.stores = [checkpoints.CheckpointStore(
        m.workdir, m.config.keep_checkpoints, data.fingerprint)
                   for m in group]
    # A crash between two members' saves leaves them at different steps:
    # the group goes on from the newest step that every member has.
    common = set.intersection(*[set(store.steps()) for store in self.stores])
    self.step = max(common, default=0)
    restored = [store.restore_latest(state, m.config, at_most=self.step)
                if self.step else None
                for store, state, m in zip(self.stores, states, group)]
    if any(r is not None and r.step != self.step for r in restored):
      raise errors.ResumeError(
          f'The members of a stacked group cannot all resume from step '
          f'{self.step}; rerun with --mode=sequential.')
    if self.step:
      states = [r.state for r in restored]
      rngs = [r.data_rng for r in restored]
    self.states, self.rngs = states, rngs
    environment = {'data_fingerprint': data.fingerprint,
                   'data_source': data.source, 'jax_version': jax.__version__,
                   'backend': jax.default_backend(), 'devices': 1,
                   'stacked_members': len(group)}
    for m in group:
      run_logs.write_config(m.workdir, m.config, environment)
    self.writers = [run_logs.MetricsWriter(m.workdir, self.step,
                                           m.config.tensorboard)
                    for m in group]

  def close(self):
    for writer in self.writers:
      writer.close()
    for store in self.stores:
      store.close()


def train_stacked(group: list[Member]) -> None:
  """Trains `group` (same GROUP_FIELDS, optimizer sgd) as one program."""
  logging.info('Stacked group of %d members: %s.', len(group),
               ', '.join(m.name for m in group))
  config = group[0].config
  data = input_pipeline.load_datasets(config)
  train_size = len(data.train['label'])
  for m in group:
    validation.validate_placement(m.config, train_size)
  plans = [schedules.plan(m.config, train_size) for m in group]
  steps_per_epoch = plans[0].steps_per_epoch
  rates = jnp.asarray(np.stack([
      np.asarray(p.learning_rate_fn(np.arange(p.total_steps + 1)),
                 np.float32) for p in plans]))
  states, rngs = _member_states(group, plans)
  for m in group:
    m.workdir.mkdir(parents=True, exist_ok=True)
  book = _Group(group, states, rngs, data)
  try:
    _stacked_epochs(book, data, rates, steps_per_epoch, config)
  finally:
    book.close()


def _stacked_epochs(book, data, rates, steps_per_epoch, config):
  states = _stack(book.states)
  train_ds = jax.device_put({k: np.asarray(v) for k, v in data.train.items()})
  run_start = time.perf_counter()
  for epoch in range(book.step // steps_per_epoch + 1, config.num_epochs + 1):
    start = time.perf_counter()
    indices = jnp.stack([train.epoch_indices(
        jax.random.fold_in(rng, epoch), len(data.train['label']),
        config.batch_size) for rng in book.rngs])
    first = int(states.step[0])
    steps_run = steps_per_epoch - first % steps_per_epoch
    pending = []
    for i in range(first % steps_per_epoch, steps_per_epoch):
      states, metrics = stacked_step(states, train_ds, indices, rates)
      pending.append(metrics)
      if len(pending) == config.log_every_steps or i == steps_per_epoch - 1:
        _record_steps(book, epoch, first, jax.device_get(pending))
        first += len(pending)
        pending = []
    losses, accuracies = stacked_eval(states, data.test,
                                      config.eval_batch_size)
    elapsed = time.perf_counter() - start
    images = steps_run * config.batch_size
    for i, m in enumerate(book.members):
      summary = bookkeeping.epoch_summary(
          book.writers[i], epoch, int(states.step[i]), losses[i],
          accuracies[i], elapsed, images)
      summary['elapsed_s'] = round(time.perf_counter() - run_start, 3)
      book.writers[i].write_epoch(summary)
      every = m.config.checkpoint_every_epochs
      if (every and epoch % every == 0) or epoch == config.num_epochs:
        state = _unstack(states, i)
        if bookkeeping.all_finite(state):  # a diverged member keeps its last
          book.stores[i].save(state, book.rngs[i], epoch, m.config)
    logging.info('Stacked epoch %d/%d: test accuracy %s, %.1fs.', epoch,
                 config.num_epochs,
                 ' '.join(f'{100 * a:.2f}' for a in accuracies), elapsed)


def _record_steps(book, epoch, first_step, fetched):
  """Each member's rows of a group of steps ([steps] of [members])."""
  for i, writer in enumerate(book.writers):
    writer.write_steps(epoch, first_step,
                       {key: np.array([m[key][i] for m in fetched])
                        for key in fetched[0]})


def stacked_eval(states, test_ds, batch_size):
  """Each member's mean test loss and accuracy (as train.eval_model)."""
  num_examples = len(test_ds['label'])
  batch_size = min(batch_size, num_examples)
  loss, correct = 0.0, 0
  for batch in train.eval_batches(test_ds, batch_size):
    totals = jax.device_get(stacked_eval_step(states, batch))
    loss = loss + totals['loss'].astype(np.float64)
    correct = correct + totals['correct'].astype(np.int64)
  return list(loss / num_examples), list(correct / num_examples)


# --------------------------------------------------------------- results


def _fingerprint(workdir) -> str:
  """The data fingerprint a member's config.json records ('' if none)."""
  return run_logs.read_config(workdir).get('run_environment', {}).get(
      'data_fingerprint', '')


def member_result(member: Member, target: float) -> dict:
  """One row of study.csv, read back from the member's epochs.csv."""
  epochs = run_logs.read_epochs(member.workdir, allow_empty=True)
  accuracy = epochs['test_accuracy']
  finished = len(accuracy) == member.config.num_epochs
  row = {'member': member.name, 'seed': member.seed, **member.point,
         'finished': int(finished),
         'data_fingerprint': _fingerprint(member.workdir)}
  if not len(accuracy):
    return row
  best = int(np.argmax(accuracy))
  hits = np.flatnonzero(accuracy >= target)
  row.update({
      'final_test_accuracy': float(accuracy[-1]),
      'best_test_accuracy': float(accuracy[best]),
      'best_epoch': int(epochs['epoch'][best]),
      'epochs_to_target': int(epochs['epoch'][hits[0]]) if hits.size else '',
      'final_test_loss': float(epochs['test_loss'][-1]),
      'wall_s': round(float(epochs['epoch_time_s'].sum()), 1),
  })
  return row


# ----------------------------------------------------------- the report


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


def summarize(rows, points, baseline, seeds) -> dict:
  """study.json: per point its interval and its paired difference."""
  by_point = {}
  for row in rows:
    if row.get('finished') and 'final_test_accuracy' in row:
      key = label({f: row[f] for f in points[0]})
      by_point.setdefault(key, {})[row['seed']] = row['final_test_accuracy']
  summary = {'seeds': seeds, 'baseline': label(baseline),
             'points': {}}
  for point in points:
    key = label(point)
    accuracy = by_point.get(key, {})
    entry = {'fields': point,
             **stats.mean_interval(list(accuracy.values()) or [np.nan])
             .as_dict()}
    base_key = label({**point, **baseline})
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


def _interval(low, high, fmt) -> str:
  """'[low, high]', or 'n/a' where one seed leaves no interval (nan)."""
  if np.isnan(low) or np.isnan(high):
    return 'n/a'
  return f'[{fmt(low)}, {fmt(high)}]'


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
    member_rows = [r for r in rows if r.get('finished') and label(
        {f: r[f] for f in e['fields']}) == key]
    reached = [r['epochs_to_target'] for r in member_rows
               if r.get('epochs_to_target') != '']
    to_target = (f'{np.mean(reached):.1f} ({len(reached)}/{e["n"]} reached)'
                 if reached else f'not reached (0/{e["n"]})')
    versus = e.get('vs_baseline')
    diff = (f'{_pp(versus["mean"])} '
            f'{_interval(versus["ci95_low"], versus["ci95_high"], _pp)}'
            if versus else '(baseline)')
    accuracy_ci = _interval(e['ci95_low'], e['ci95_high'],
                            lambda v: f'{100 * v:.2f}')
    lines.append(
        f'| {rank} | `{key}` | {e["n"]} | {100 * e["mean"]:.2f}% | '
        f'{accuracy_ci} | {to_target} | {diff} |')
  lines.append('')
  for key in ranked:
    versus = points[key].get('vs_baseline')
    if not versus:
      continue
    if versus['n'] < 2:
      sentence = (f'{_pp(versus["mean"])} pp on 1 seed: no interval, no '
                  'verdict (run --seeds=2 or more)')
    elif versus['verdict'] == 'no detectable difference':
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
    key = label(point)
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
  means = [[summary['points'][label({y_name: y, x_name: x})]['mean']
            for x in xs] for y in ys]
  return x_name, xs, y_name, ys, means


def write_csv(path, rows, fields):
  with open(path, 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=fields, extrasaction='ignore')
    writer.writeheader()
    writer.writerows(rows)


def epoch_rows(member):
  epochs = run_logs.read_epochs(member.workdir, allow_empty=True)
  return [{'member': member.name, 'point': label(member.point),
           'epoch': int(e), 'test_accuracy': float(a), 'test_loss': float(l),
           'train_loss': float(t)}
          for e, a, l, t in zip(epochs['epoch'], epochs['test_accuracy'],
                                epochs['test_loss'], epochs['train_loss'])]
