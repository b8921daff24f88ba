"""A stacked study group on one device against the same group over all of them.

  XLA_FLAGS=--xla_force_host_platform_device_count=4 \
      python tools/benchmark_stacked.py --config=configs/default.py \
      [--members=4] [--steps=50] [--repeats=2] [--output=FILE.md]

Trains --members members of --config stacked into one program (a study's
`--mode=stacked`) for --steps steps on a 1-device members mesh and on a mesh
of every device, alternated --repeats times in this one process, on
generated data of MNIST's shapes, and prints models x steps per second of
each with their ratio. On a GPU machine that is one GPU against all of
them; on a CPU, with XLA_FLAGS forcing several host devices, it is the
overhead (or gain) of splitting the CPU into simulated devices.
"""

import pathlib
import statistics
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
# pylint: disable=g-import-not-at-top,wrong-import-position

from absl import flags
from absl import logging

from machinery import cli
from machinery import files

FLAGS = flags.FLAGS
flags.DEFINE_integer('members', 4, 'Members in the stacked group.',
                     lower_bound=1)
flags.DEFINE_integer('steps', 50, 'Timed steps per measurement (at most '
                     'the rest of one epoch).', lower_bound=1)
flags.DEFINE_integer('repeats', 2, 'Alternations of the two placements.',
                     lower_bound=1)
flags.DEFINE_string('output', None, 'Also write the table (markdown) here.')
cli.define_config_flag()


def measure(config, members_count, steps, repeats):
  """({placement: [models x steps per second, one per repeat]}, the
  devices' kind)."""
  import jax
  import input_pipeline
  import studies
  studies.split_cpu([config])  # as a study would, before JAX starts
  data = input_pipeline.synthetic_datasets(60000, 'benchmark_stacked')
  with tempfile.TemporaryDirectory() as unused:
    group = studies.members(config, studies.grid([]), members_count, unused)
  devices = jax.devices()
  meshes = {'1 device': studies.member_mesh(devices[:1]),
            f'{len(devices)} devices': studies.member_mesh(devices)}
  rates = {name: [] for name in meshes}
  for repeat in range(repeats):
    for name, mesh in meshes.items():
      seconds = studies.stacked_seconds_per_step(group, data, mesh, steps)
      rates[name].append(members_count / seconds)
      logging.info('Repeat %d, %s: %.1f models x steps/s.', repeat + 1, name,
                   rates[name][-1])
  return rates, devices[0].device_kind


def table(rates, members_count, steps, device_kind) -> str:
  one, many = rates.values()
  names = list(rates)
  lines = [f'{members_count} stacked members, {steps} steps each time, on '
           f'{device_kind} (models x steps per second; min / median / max of '
           f'{len(one)}, alternated):', '',
           f'| {names[0]} | {names[1]} | {names[1]} / {names[0]} (medians) |',
           '|---|---|---|']
  spread = lambda r: ' / '.join(f'{v:.1f}' for v in (min(r),
                                                      statistics.median(r),
                                                      max(r)))
  lines.append(f'| {spread(one)} | {spread(many)} | '
               f'{statistics.median(many) / statistics.median(one):.2f}x |')
  return '\n'.join(lines) + '\n'


def main(argv):
  del argv
  with cli.one_line_errors():
    from machinery import validation
    validation.validate_config(FLAGS.config)
    if FLAGS.output:
      files.check_not_directory(FLAGS.output)  # before minutes of work
    rates, kind = measure(FLAGS.config, FLAGS.members, FLAGS.steps,
                             FLAGS.repeats)
    text = table(rates, FLAGS.members, FLAGS.steps, kind)
    if FLAGS.output:
      files.write_text(FLAGS.output, text)
  print(text)
  if FLAGS.output:
    print(f'Wrote {FLAGS.output}')


if __name__ == '__main__':
  cli.run(main)
