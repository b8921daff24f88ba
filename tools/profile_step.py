"""Where a training step's time goes, by part of the model (jax.profiler).

  python tools/profile_step.py --config=configs/default.py [--steps=50] \
      [--config.batch_size=32] [--output=docs/profile_batch128.md]

Builds the run exactly as main.py would (devices, micro-batches, steps per
call: train.setup's policy) on generated data of the training split's shape
(60,000 images, or windows of random bytes for the language model: the
gather is real, the pixels need not be), compiles, then
traces --steps steps of train.train_epoch with jax.profiler and prints
milliseconds per step for each part of the model — each convolution's
forward and backward, pooling, the dense layers, the loss, the optimizer
update, the batch gather, the all-reduce between devices, the rest — read
from the compiled step's HLO metadata (machinery/profiling.py); for the
transformer the embeddings, each block's attention, MLP and LayerNorms, the
output layer, the loss, clipping and AdamW. With several
devices the parts add up every device's time, so they sum to more than the
wall time. The tracer slows the step a little: the untraced throughput is
printed too.
"""

import pathlib
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
# pylint: disable=g-import-not-at-top,wrong-import-position

from absl import flags

from machinery import cli
from machinery import files
from machinery import validation
import tasks

FLAGS = flags.FLAGS
flags.DEFINE_integer('steps', 50, 'Steps to trace.', lower_bound=1)
flags.DEFINE_integer('train_size', 60000, 'Examples (images, windows) in '
                     'the generated training split.', lower_bound=1)
flags.DEFINE_string('output', None, 'Also write the table (markdown) here.')
cli.define_config_flag()


def profile(config, steps, train_size):
  """(table, traced img/s, untraced img/s, the run's setup)."""
  import jax  # pylint: disable=g-import-not-at-top
  from machinery import parallel  # pylint: disable=g-import-not-at-top
  from machinery import profiling  # pylint: disable=g-import-not-at-top
  import train  # pylint: disable=g-import-not-at-top
  # The profile's epoch is exactly `steps` steps over their own examples,
  # whatever the config's evaluation interval (steps_per_epoch).
  config.steps_per_epoch = 0
  data = tasks.task_of(config).synthetic_data(config, train_size,
                                               'profile_step')
  run = train.setup(config, data=data)
  train_ds = parallel.put_replicated(data.train, run.mesh)
  size = steps * config.batch_size  # an "epoch" of exactly `steps` steps
  subset = jax.tree.map(lambda x: x[:size], train_ds)

  def epoch(state, seed):
    state, _ = train.train_epoch(
        state, subset, config.batch_size, jax.random.key(seed),
        run.learning_rate_fn, mesh=run.mesh, micro_batches=run.micro_batches,
        steps_per_call=run.steps_per_call, report_every=config.log_every_steps)
    return jax.block_until_ready(state)

  state = epoch(run.state, 0)  # compiles
  start = time.perf_counter()
  state = epoch(state, 1)
  untraced = size / (time.perf_counter() - start)
  with tempfile.TemporaryDirectory() as directory:
    with jax.profiler.trace(directory, create_perfetto_trace=True):
      start = time.perf_counter()
      epoch(state, 2)
      traced = size / (time.perf_counter() - start)
    events = profiling.trace_events(directory)
  indices = train.epoch_indices(jax.random.key(0), size, config.batch_size,
                                parallel.replicated(run.mesh))
  sharding = parallel.batch_sharded(run.mesh) if run.mesh.size > 1 else None
  compiled = train.train_step_on_device.lower(
      state, subset, indices, run.learning_rate_fn, run.micro_batches,
      sharding).compile()
  names = profiling.op_names(compiled.as_text())
  if run.steps_per_call > 1:
    names.update(profiling.op_names(train.train_steps_on_device.lower(
        state, subset, indices, run.learning_rate_fn, run.micro_batches,
        sharding, num_steps=run.steps_per_call).compile().as_text()))
  table = profiling.step_table(events, names, steps,
                               profiling.parameter_parts(state.params))
  return table, traced, untraced, run


def main(argv):
  del argv
  from machinery import profiling  # pylint: disable=g-import-not-at-top
  config = FLAGS.config
  with cli.one_line_errors():
    validation.validate_config(config)
    table, traced, untraced, run = profile(config, FLAGS.steps,
                                           FLAGS.train_size)
  title = (f'batch {config.batch_size}: {run.mesh.size} device(s), '
           f'{run.micro_batches} micro-batch(es), {run.steps_per_call} '
           'step(s) per call')
  unit = 'images/s'
  if config.task == 'language_model':  # windows/s -> tokens/s
    unit, untraced, traced = ('tokens/s', untraced * config.context_length,
                              traced * config.context_length)
  text = (profiling.markdown(table, title) +
          f'\n{untraced:,.0f} {unit} untraced, {traced:,.0f} traced '
          f'({FLAGS.steps} steps, on generated data).\n')
  print(text)
  if FLAGS.output:
    files.write_text(FLAGS.output, text)
    print(f'Wrote {FLAGS.output}')


if __name__ == '__main__':
  cli.run(main)
