"""Paired benchmark: this project's training loop against the seed's.

  python tools/benchmark.py --config=configs/default.py --output=runs/benchmark
  python tools/benchmark.py --config=configs/default.py --output=runs/benchmark \
      --time_to_accuracy --fast_config=configs/fast.py

Throughput: repetitions alternate seed, project, seed, project, ..., each in
a fresh subprocess (so compile time and peak RSS are each program's own) on
the same data, batch size, model and seed. The seed-style loop is the Flax
guide's: a host-side permutation, a host-side gather of each batch, one
jitted `train_step` per batch, one `jax.device_get` of all metrics at the end
of the epoch. The project's loop is `train.train_epoch`: device-resident data
gathered on the device, donated state, micro-batches, metrics fetched every
`log_every_steps`, and the CPU split into `config.cpu_devices` devices.
With PyTorch importable (see --torch_python; it is never a requirement:
`python3 -m venv .venv-torch && .venv-torch/bin/pip install torch==2.13.0
numpy`), each repetition also runs the same CNN in PyTorch, eager and with
torch.compile (machinery/torch_peer.py), on the same training split.
Reported: steps/s, images/s, GFLOP/s (27.4 MFLOP per image) and its share
of a float32 matmul's GFLOP/s measured in the same run (before and after
each batch size), epoch wall time (one full epoch after compilation),
compile time (the first step), peak RSS; min/median/max over --repeats;
and the project against the fastest other loop, by the medians.

Time to accuracy (--time_to_accuracy): wall time from the start of training
(after data loading; compilation and evaluation included) until the test
accuracy after an epoch first reaches --target_accuracy, for the seed loop on
--config, the project on --config, and the project on --fast_config (each
run for its full num_epochs, to report final accuracy too).

The language model (--config=configs/lm.py): the same loops over the
config's steps_per_epoch, the PyTorch peer the same transformer with AdamW
and clipping; tokens/s, and GFLOP/s by XLA's FLOP count of the seed-style
step (cost_analysis: the same model and math in every loop). Time to
accuracy is the image task's measure.

Writes OUTPUT/benchmark.md and OUTPUT/benchmark.json, and prints the table.
"""

import json
import math
import os
import pathlib
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
# pylint: disable=g-import-not-at-top,wrong-import-position

from absl import flags
from absl import logging
import numpy as np

from machinery import cli
from machinery import errors
from machinery import files
from machinery import validation
import tasks

FLAGS = flags.FLAGS

flags.DEFINE_string('output', 'runs/benchmark', 'Folder for the results.')
flags.DEFINE_integer('repeats', 3, 'Throughput repetitions per loop.',
                     lower_bound=1)
flags.DEFINE_bool('time_to_accuracy', False, 'Also measure time to accuracy.')
flags.DEFINE_string('fast_config', 'configs/fast.py',
                    'Config for the third time-to-accuracy run.')
flags.DEFINE_list('batch_sizes', [], 'Throughput at these batch sizes too '
                  '(default: only the config\'s), e.g. 128,64,32.')
flags.DEFINE_string('speedrun_config', None,
                    'Also time this config (e.g. configs/speedrun.py) to the '
                    'target accuracy.')
flags.DEFINE_float('target_accuracy', 0.99, 'Target test accuracy.',
                   lower_bound=0, upper_bound=1)
flags.DEFINE_string('torch_python', None, 'A Python that has torch, for the '
                    'PyTorch rows; default: .venv-torch/bin/python, else this '
                    'one if it has torch, else no PyTorch rows.')
flags.DEFINE_enum('worker', None, ['seed', 'project', 'seed_tta',
                                   'project_tta', 'matmul_peak'],
                  'Internal: run one measurement and print it as JSON.')
flags.DEFINE_string('worker_workdir', None,
                    'Internal: workdir of a project_tta run.')
cli.define_config_flag()

RESULT_PREFIX = 'BENCHMARK_RESULT '


def peak_rss_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ----------------------------------------------------------------- workers


def seed_train_step_fn():
  """The Flax guide's train_step, verbatim in spirit: no extras."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top

  @jax.jit
  def train_step(state, batch):
    # The task's inputs and targets (images / 255 and labels; a window's
    # bytes and each one's next byte), as train.py reads them.
    inputs, targets = tasks.inputs_and_targets(batch)

    def loss_fn(params):
      logits = state.apply_fn({'params': params}, inputs)
      loss = optax.softmax_cross_entropy_with_integer_labels(
          logits, targets).mean()
      return loss, logits
    (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params)
    state = state.apply_gradients(grads=grads)
    accuracy = jnp.mean(jnp.argmax(logits, -1) == targets)
    return state, {'loss': loss, 'accuracy': accuracy}
  return train_step


def seed_train_epoch(train_step, state, train_ds, batch_size, rng,
                     steps_per_epoch=None):
  """The Flax guide's train_epoch: host permutation and gather per batch
  (`steps_per_epoch` of them: the config's, for the language model)."""
  import jax  # pylint: disable=g-import-not-at-top
  train_ds_size = tasks.num_examples(train_ds)
  steps_per_epoch = steps_per_epoch or train_ds_size // batch_size
  perms = jax.random.permutation(rng, train_ds_size)
  perms = perms[:steps_per_epoch * batch_size]
  perms = perms.reshape((steps_per_epoch, batch_size))
  batch_metrics = []
  for perm in perms:
    batch = {k: v[perm, ...] for k, v in train_ds.items()}
    state, metrics = train_step(state, batch)
    batch_metrics.append(metrics)
  batch_metrics = jax.device_get(batch_metrics)
  return state, {k: np.mean([m[k] for m in batch_metrics])
                 for k in batch_metrics[0]}


def _setup(config, seed_style=False):
  """train.setup: data, schedule, mesh and a fresh state for every worker.

  The seed-style loop runs on one CPU device, as the seed did.
  """
  import train  # pylint: disable=g-import-not-at-top
  if seed_style:
    config.cpu_devices = 1
  return train.setup(config)


def seed_throughput(config) -> dict:
  import jax  # pylint: disable=g-import-not-at-top
  run = _setup(config, seed_style=True)
  data, state, data_rng = run.data, run.state, run.data_rng
  train_step = seed_train_step_fn()
  first = {k: v[:config.batch_size] for k, v in data.train.items()}
  start = time.perf_counter()
  jax.block_until_ready(train_step(state, first))
  compile_s = time.perf_counter() - start
  flops = train_step.lower(state, first).compile().cost_analysis()
  start = time.perf_counter()
  state, _ = seed_train_epoch(train_step, state, data.train,
                              config.batch_size, jax.random.fold_in(data_rng, 1),
                              run.steps_per_epoch)
  jax.block_until_ready(state)
  return _throughput(config, run.steps_per_epoch, compile_s,
                     time.perf_counter() - start, devices=1, micro_batches=1,
                     xla_flops=_flops(flops) / config.batch_size)


def project_throughput(config) -> dict:
  import jax  # pylint: disable=g-import-not-at-top
  from machinery import parallel  # pylint: disable=g-import-not-at-top
  import train  # pylint: disable=g-import-not-at-top
  run = _setup(config)
  data, lr_fn, state, data_rng = (run.data, run.learning_rate_fn, run.state,
                                  run.data_rng)
  mesh, micro = run.mesh, run.micro_batches
  train_ds = parallel.put_replicated(data.train, mesh)
  indices = train.epoch_indices(data_rng, tasks.num_examples(data.train),
                                config.batch_size, parallel.replicated(mesh),
                                run.steps_per_epoch)
  sharding = parallel.batch_sharded(mesh) if mesh.size > 1 else None
  throwaway = jax.tree.map(lambda x: x.copy(), state)  # donated below
  start = time.perf_counter()
  jax.block_until_ready(train.train_step_on_device(
      throwaway, train_ds, indices, lr_fn, micro, sharding))
  if run.steps_per_call > 1:  # the multi-step call compiles separately
    throwaway = jax.tree.map(lambda x: x.copy(), state)
    jax.block_until_ready(train.train_steps_on_device(
        throwaway, train_ds, indices, lr_fn, micro, sharding,
        num_steps=run.steps_per_call))
  compile_s = time.perf_counter() - start
  start = time.perf_counter()
  state, _ = train.train_epoch(
      state, train_ds, config.batch_size, jax.random.fold_in(data_rng, 1),
      lr_fn, report=lambda first, metrics: None,
      report_every=config.log_every_steps, mesh=mesh, micro_batches=micro,
      steps_per_call=run.steps_per_call,
      steps_per_epoch=run.steps_per_epoch)
  jax.block_until_ready(state)
  return _throughput(config, run.steps_per_epoch, compile_s,
                     time.perf_counter() - start, devices=mesh.size,
                     micro_batches=micro, steps_per_call=run.steps_per_call)


def _throughput(config, steps, compile_s, epoch_s, devices, micro_batches,
                steps_per_call=1, xla_flops=None):
  """A loop's numbers. 'images_per_s' counts examples (images, or windows
  of text); the language model adds 'tokens_per_s' (the bytes predicted)
  and its FLOPs per example as XLA counts them ('flops_per_example')."""
  out = {'batch_size': config.batch_size, 'steps_per_s': steps / epoch_s,
         'images_per_s': steps * config.batch_size / epoch_s,
         'epoch_s': epoch_s, 'compile_s': compile_s,
         'peak_rss_mb': peak_rss_mb(), 'devices': devices,
         'micro_batches': micro_batches, 'steps_per_call': steps_per_call}
  if config.task == 'language_model':
    out['tokens_per_s'] = out['images_per_s'] * config.context_length
    out['flops_per_example'] = xla_flops
  return out


def _flops(cost) -> float:
  """XLA's FLOP count of a compiled computation (a dict, or a list of one
  per module in older JAX)."""
  if isinstance(cost, (list, tuple)):
    return sum(float(c.get('flops', 0.0)) for c in cost)
  return float(cost.get('flops', 0.0))


def seed_time_to_accuracy(config, target) -> dict:
  """Seed loop + per-epoch evaluation until `target` (or num_epochs)."""
  import jax  # pylint: disable=g-import-not-at-top
  import train  # pylint: disable=g-import-not-at-top
  run = _setup(config, seed_style=True)
  data, state, data_rng = run.data, run.state, run.data_rng
  train_step = seed_train_step_fn()
  start = time.perf_counter()
  curve = []
  for epoch in range(1, config.num_epochs + 1):
    state, _ = seed_train_epoch(train_step, state, data.train,
                                config.batch_size,
                                jax.random.fold_in(data_rng, epoch))
    _, accuracy = train.eval_model(state, data.test, config.eval_batch_size)
    curve.append((epoch, time.perf_counter() - start, accuracy))
    if accuracy >= target:
      break
  return _tta_result(curve, target)


def project_time_to_accuracy(config, target, workdir) -> dict:
  """train.train_and_evaluate as main.py runs it, read from epochs.csv."""
  from machinery import run_logs  # pylint: disable=g-import-not-at-top
  import train  # pylint: disable=g-import-not-at-top
  train.train_and_evaluate(config, workdir)
  epochs = run_logs.read_epochs(workdir)
  curve = list(zip(epochs['epoch'].astype(int), epochs['elapsed_s'],
                   epochs['test_accuracy']))
  return _tta_result(curve, target)


def _tta_result(curve, target) -> dict:
  curve = [(int(e), float(t), float(a)) for e, t, a in curve]  # JSON-ready
  reached = [(e, t, a) for e, t, a in curve if a >= target]
  epoch, seconds, _ = reached[0] if reached else (None, None, None)
  return {'epochs_to_target': epoch, 'seconds_to_target': seconds,
          'final_accuracy': curve[-1][2], 'epochs_run': curve[-1][0],
          'total_s': curve[-1][1], 'peak_rss_mb': peak_rss_mb()}


def run_worker(kind, config, target, workdir) -> None:
  with cli.one_line_errors():
    if kind == 'seed':
      result = seed_throughput(config)
    elif kind == 'project':
      result = project_throughput(config)
    elif kind == 'matmul_peak':
      result = {'gflops': matmul_peak_gflops()}
    elif kind == 'seed_tta':
      result = seed_time_to_accuracy(config, target)
    else:
      result = project_time_to_accuracy(config, target, workdir)
  print(RESULT_PREFIX + json.dumps(result), flush=True)


# ------------------------------------------------------------- the driver


def spawn(kind, config_path, overrides=(), workdir=None) -> dict:
  """Runs one worker in a fresh process; returns its JSON result."""
  command = [sys.executable, __file__, f'--worker={kind}',
             f'--config={config_path}', *overrides,
             f'--target_accuracy={FLAGS.target_accuracy}']
  if workdir:
    command.append(f'--worker_workdir={workdir}')
  result = subprocess.run(command, capture_output=True, text=True,
                          check=False)
  lines = [line for line in result.stdout.splitlines()
           if line.startswith(RESULT_PREFIX)]
  if result.returncode or not lines:
    sys.exit(f'Error: benchmark worker {kind} failed:\n'
             f'{result.stderr[-3000:]}')
  return json.loads(lines[-1][len(RESULT_PREFIX):])


def config_overrides(argv) -> list[str]:
  """The --config.* flags given to this command, passed on to workers.

  Read from sys.argv: absl has already taken them out of main's argv.
  """
  return [arg for arg in argv[1:] if arg.startswith('--config.')]


def summarize(runs: list[dict], key) -> dict:
  values = [run[key] for run in runs]
  return {'min': min(values), 'median': statistics.median(values),
          'max': max(values)}


# FLOPs of one training image (forward and backward) of models.CNN,
# counted by hand: forward multiply-adds conv1 28*28*32*9 = 225,792, conv2
# 14*14*64*9*32 = 3,612,672, dense1 3136*256 = 802,816, dense2 256*10 =
# 2,560 (4,643,840 in all); the backward is twice that, less conv1's input
# gradient (the data needs none): 3 * 4,643,840 - 225,792 multiply-adds.
FLOPS_PER_IMAGE = 2 * (3 * 4_643_840 - 225_792)


def throughput_table(seed_runs, project_runs, peers=None,
                     matmul_peak=None) -> str:
  """min / median / max per loop; the project against the fastest other.

  `peers`: {column name: runs} besides the seed-style loop (PyTorch);
  `matmul_peak`: GFLOP/s of a float32 matmul in the same run, for the
  achieved share of it.
  """
  columns = {'seed-style loop': seed_runs, **(peers or {})}
  text = 'tokens_per_s' in project_runs[0]
  # FLOPs per example: counted by hand for the CNN; for the transformer as
  # XLA counts the seed-style step (the same model and math in every loop).
  flops = (seed_runs[0]['flops_per_example'] if text else FLOPS_PER_IMAGE)
  project = project_runs[0]
  name = (f'this project ({project["devices"]} CPU device(s), '
          f'{project["micro_batches"]} micro-batch(es), '
          f'{project.get("steps_per_call", 1)} step(s) per call)')
  columns[name] = project_runs
  for runs in columns.values():
    for run in runs:
      run.setdefault('gflops', run['images_per_s'] * flops / 1e9)
      if text:
        run.setdefault('tokens_per_s', run['images_per_s'] * (
            project_runs[0]['tokens_per_s'] / project_runs[0]['images_per_s']))
      if matmul_peak:
        run.setdefault('peak_share', run['gflops'] / matmul_peak)
  rows = [('steps/s', 'steps_per_s', '{:.1f}')]
  if text:
    rows += [('tokens/s', 'tokens_per_s', '{:,.0f}'),
             (f'GFLOP/s ({flops / 1e6:.1f} MFLOP per window, XLA\'s count)',
              'gflops', '{:.0f}')]
  else:
    rows += [('images/s', 'images_per_s', '{:,.0f}'),
             ('GFLOP/s (27.4 MFLOP per image)', 'gflops', '{:.0f}')]
  if matmul_peak:
    rows.append((f'share of the matmul peak ({matmul_peak:.0f} GFLOP/s)',
                 'peak_share', '{:.0%}'))
  rows += [('epoch wall time (s)', 'epoch_s', '{:.1f}'),
           ('compile time (s)', 'compile_s', '{:.2f}'),
           ('peak RSS (MB)', 'peak_rss_mb', '{:,.0f}')]
  fastest = max((runs for key, runs in columns.items() if key != name),
                key=lambda runs: statistics.median(r['images_per_s']
                                                   for r in runs))
  lines = [f'| metric (min / median / max of {len(seed_runs)}) | ' +
           ' | '.join(columns) + ' | this project / the fastest other loop '
           '(medians) |', '|---' * (len(columns) + 2) + '|']
  for label, key, fmt in rows:
    cells = []
    for runs in columns.values():
      s = summarize(runs, key)
      cells.append(' / '.join(fmt.format(s[k]) for k in ('min', 'median',
                                                          'max')))
    ratio = (statistics.median(r[key] for r in project_runs) /
             statistics.median(r[key] for r in fastest))
    lines.append(f'| {label} | ' + ' | '.join(cells) + f' | {ratio:.2f}x |')
  return '\n'.join(lines) + '\n'


def tta_table(results: dict, target) -> str:
  pct = f'{100 * target:g}%'
  lines = [f'| run | epochs to {pct} | time to {pct} | epochs run | final '
           'test acc. | total time |', '|---|---|---|---|---|---|']
  for name, r in results.items():
    to_target = (f'{r["seconds_to_target"]:.0f} s'
                 if r['seconds_to_target'] is not None else 'not reached')
    lines.append(f'| {name} | {r["epochs_to_target"] or "-"} | {to_target} | '
                 f'{r["epochs_run"]} | {100 * r["final_accuracy"]:.2f}% | '
                 f'{r["total_s"]:.0f} s |')
  return '\n'.join(lines) + '\n'


def throughput_runs(config_path, overrides, torch_python=None,
                    torch_data=None, batch_size=None):
  """--repeats of the loops, alternated: seed, project, then PyTorch eager
  and compiled where `torch_python` is given; ([seed], [project], {peers},
  {peer that failed: its last error line})."""
  seed_runs, project_runs = [], []
  peers = {'PyTorch eager': [], 'PyTorch torch.compile': []} if (
      torch_python) else {}
  failed = {}
  for repeat in range(FLAGS.repeats):
    seed_runs.append(spawn('seed', config_path, overrides))
    project_runs.append(spawn('project', config_path, overrides))
    for name, runs in list(peers.items()):
      run = spawn_torch(torch_python, torch_data, batch_size,
                        compiled='compile' in name,
                        model_args=torch_model_args(FLAGS.config))
      if isinstance(run, str):  # a peer's own bug ends its column, not ours
        logging.warning('%s failed at batch %d: %s', name, batch_size, run)
        failed[name] = run
        del peers[name]
      else:
        runs.append(run)
    logging.info('Batch %d, repeat %d: seed %.0f img/s, project %.0f img/s%s.',
                 project_runs[-1]['batch_size'], repeat + 1,
                 seed_runs[-1]['images_per_s'],
                 project_runs[-1]['images_per_s'],
                 ''.join(f', {n} {r[-1]["images_per_s"]:.0f} img/s'
                         for n, r in peers.items()))
  return seed_runs, project_runs, peers, failed


def matmul_peak_gflops() -> float:
  """GFLOP/s of a float32 2048 x 2048 matmul (jnp.dot), best of 10."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  a = jnp.ones((2048, 2048), jnp.float32)
  dot = jax.jit(jnp.dot)
  dot(a, a).block_until_ready()
  best = math.inf
  for _ in range(10):
    start = time.perf_counter()
    dot(a, a).block_until_ready()
    best = min(best, time.perf_counter() - start)
  return 2 * 2048**3 / best / 1e9


TORCH_PEER = pathlib.Path(__file__).resolve().parent.parent / 'machinery' / (
    'torch_peer.py')
TORCH_VENV_PYTHON = pathlib.Path(__file__).resolve().parent.parent / (
    '.venv-torch/bin/python')
TORCH_INSTALL = ('python3 -m venv .venv-torch && .venv-torch/bin/pip install '
                 'torch==2.13.0 numpy')


def find_torch_python(flag):
  """The Python that has torch: --torch_python, else .venv-torch, else this
  one if it imports torch; None (with how to get one) if there is none."""
  candidates = [flag] if flag else [str(TORCH_VENV_PYTHON), sys.executable]
  for python in candidates:
    if python and pathlib.Path(python).exists() and subprocess.run(
        [python, '-c', 'import torch, numpy'], capture_output=True,
        check=False).returncode == 0:
      return python
  if flag:
    raise errors.ConfigError(f'--torch_python={flag} cannot import torch and '
                             'numpy.')
  logging.warning('No PyTorch rows: torch is not importable here. It stays '
                  'out of requirements.txt; for the rows, install it apart: '
                  '%s', TORCH_INSTALL)
  return None


def torch_model_args(config) -> list[str]:
  """The peer's model: the CNN, or the config's transformer and AdamW."""
  if config.task != 'language_model':
    return []
  return ['--task=language_model', f'--layers={config.num_layers}',
          f'--width={config.width}', f'--heads={config.num_heads}',
          f'--learning_rate={config.learning_rate}', f'--b1={config.b1}',
          f'--b2={config.b2}', f'--eps={config.eps}',
          f'--weight_decay={config.weight_decay}',
          f'--grad_clip_norm={config.grad_clip_norm}',
          f'--steps={config.steps_per_epoch}']


def spawn_torch(python, data, batch_size, compiled,
                model_args=()) -> dict | str:
  """The PyTorch peer's result, or the last line of its error if it failed
  (torch.compile has crashed in its own backward at batch 64 here)."""
  command = [python, str(TORCH_PEER), f'--data={data}',
             f'--batch_size={batch_size}',
             f'--threads={os.cpu_count() or 1}', *model_args] + (
                 ['--compile'] if compiled else [])
  result = subprocess.run(command, capture_output=True, text=True,
                          check=False)
  lines = [line for line in result.stdout.splitlines()
           if line.startswith(RESULT_PREFIX)]
  if result.returncode or not lines:
    errors_seen = [line.strip() for line in result.stderr.splitlines()
                   if line.strip()]
    return (errors_seen or [f'exit status {result.returncode}'])[-1][:300]
  return json.loads(lines[-1][len(RESULT_PREFIX):])


def save_training_split(config, path) -> None:
  """The config's training split, as the project loads it, for the peer."""
  data = tasks.task_of(config).load_data(config)
  np.savez(path, **data.train)


# Written into each time-to-accuracy workdir the benchmark makes: only
# folders carrying it are ever removed (a rerun starts them afresh).
MADE_BY_BENCHMARK = '.made_by_benchmark'


def fresh_workdir(output, name) -> pathlib.Path:
  """output/name, emptied if the benchmark made it; refused if a user did."""
  workdir = pathlib.Path(output) / name
  if workdir.is_symlink() or (workdir.exists() and not (
      workdir / MADE_BY_BENCHMARK).is_file()):
    raise errors.WorkdirError(
        f'{workdir} exists and was not made by the benchmark: move it away '
        'or pass another --output (the benchmark removes only its own runs).')
  if workdir.exists():
    shutil.rmtree(workdir)
  workdir.mkdir()
  files.write_text(workdir / MADE_BY_BENCHMARK, 'tools/benchmark.py\n')
  return workdir


def prepare_output(output) -> pathlib.Path:
  """The --output folder, made only once the config is known to be valid."""
  output = pathlib.Path(output)
  if output.exists() and not output.is_dir():
    raise errors.WorkdirError(f'--output={output} is a file, not a folder.')
  try:
    output.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise errors.WorkdirError(f'Cannot create --output={output}: '
                              f'{e.strerror or e}.') from None
  return output


def run_driver(argv) -> None:
  config_path = flags.FLAGS['config'].config_filename
  del argv
  with cli.one_line_errors():  # the workers would each fail on it
    validation.validate_config(FLAGS.config)
    output = prepare_output(FLAGS.output)
    if FLAGS.time_to_accuracy:
      tasks.require(FLAGS.config, ('image_classification',),
                    'tools/benchmark.py --time_to_accuracy')
      names = ['tta_default', 'tta_fast'] + (
          ['tta_speedrun'] if FLAGS.speedrun_config else [])
      workdirs = {name: fresh_workdir(output, name) for name in names}
    torch_python = find_torch_python(FLAGS.torch_python)
  overrides = config_overrides(sys.argv)
  report, text = {'throughput': {}}, ''
  peaks = [float(spawn('matmul_peak', config_path, overrides)['gflops'])]
  batch_sizes = FLAGS.batch_sizes or [str(FLAGS.config.batch_size)]
  with tempfile.TemporaryDirectory() as tmp:
    torch_data = pathlib.Path(tmp) / 'train.npz'
    if torch_python:
      with cli.one_line_errors():
        save_training_split(FLAGS.config, torch_data)
    for batch_size in batch_sizes:
      extra = [] if batch_size == str(FLAGS.config.batch_size) else [
          f'--config.batch_size={batch_size}']
      seed_runs, project_runs, peers, failed = throughput_runs(
          config_path, overrides + extra, torch_python, torch_data,
          int(batch_size))
      peaks.append(float(spawn('matmul_peak', config_path,
                               overrides)['gflops']))
      report['throughput'][batch_size] = {'seed': seed_runs,
                                          'project': project_runs, **peers,
                                          'failed': failed}
      text += (f'## Throughput, batch {batch_size}\n\n' +
               throughput_table(seed_runs, project_runs, peers,
                                statistics.median(peaks)) + '\n' +
               ''.join(f'{name} failed (no column): `{line}`\n\n'
                       for name, line in failed.items()))
  report['matmul_peak_gflops'] = peaks
  text += (f'Matmul peak (float32 2048 x 2048 `jnp.dot`, best of 10, measured '
           f'{len(peaks)} times in this run): {min(peaks):.0f}–'
           f'{max(peaks):.0f} GFLOP/s; the table uses the median so far.\n\n')
  if FLAGS.time_to_accuracy:
    tta = {
        f'seed-style loop, {config_path}': spawn('seed_tta', config_path,
                                                 overrides),
        f'this project, {config_path}': spawn(
            'project_tta', config_path, overrides,
            workdir=workdirs['tta_default']),
        f'this project, {FLAGS.fast_config}': spawn(
            'project_tta', FLAGS.fast_config, overrides,
            workdir=workdirs['tta_fast']),
    }
    if FLAGS.speedrun_config:
      tta[f'this project, {FLAGS.speedrun_config}'] = spawn(
          'project_tta', FLAGS.speedrun_config, overrides,
          workdir=workdirs['tta_speedrun'])
    report['time_to_accuracy'] = tta
    text += ('\n## Time to accuracy\n\n' +
             tta_table(tta, FLAGS.target_accuracy))
  files.write_text(output / 'benchmark.json', json.dumps(report, indent=2))
  files.write_text(output / 'benchmark.md', text)
  print(text)
  print(f'Wrote {output / "benchmark.md"} and {output / "benchmark.json"}')


def main(argv):
  if FLAGS.worker:
    run_worker(FLAGS.worker, FLAGS.config, FLAGS.target_accuracy,
               FLAGS.worker_workdir)
  else:
    run_driver(argv)


if __name__ == '__main__':
  cli.run(main)
