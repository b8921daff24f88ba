"""Entry point: trains the MNIST CNN under the configured learning-rate schedule.

  python main.py --config=configs/default.py --workdir=runs/default

Any config field can be overridden, e.g. `--config.num_epochs=3`.
"""

from machinery import cli  # pylint: disable=g-bad-import-order

cli.quit_quietly_on_ctrl_c()  # before the slow imports below
# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags
from absl import logging

from machinery import parallel
from machinery import validation
import train

FLAGS = flags.FLAGS

flags.DEFINE_string('workdir', None, 'Directory for the run\'s logs and metrics.')
flags.mark_flag_as_required('workdir')
cli.define_config_flag()
# Multi-host data parallelism (see machinery/parallel.py).
cli.define_distributed_flags()


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Too many command-line arguments.')
  with cli.one_line_errors():
    validation.validate_config(FLAGS.config)  # before the config's log
    logging.info('Config:\n%s', FLAGS.config)
    parallel.maybe_initialize_distributed(
        FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id,
        FLAGS.distributed_timeout_s)
    try:
      train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
    except Exception as e:  # pylint: disable=broad-except
      message = parallel.lost_peer_message(e)
      if message is None:
        raise
      cli.exit_now(f'Error: {message}', 1)  # JAX's shutdown would wait


if __name__ == '__main__':
  cli.run(main)
