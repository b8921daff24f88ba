"""Run by test_parallel.py in a subprocess with 4 forced CPU devices.

Trains one epoch of the generated data from the same initial state twice,
on a 4-device mesh and on a 1-device mesh, with the same global batch, and
prints both trajectories as JSON, and saves every parameter of each run to
the .npz file named by its second argument. Not a test module (no test_ prefix).
"""

import json
import sys

import jax
import numpy as np

import conftest
import input_pipeline
from machinery import parallel
from machinery import validation
import train


def trajectory(config, data, mesh, micro_batches):
  steps_per_epoch = len(data.train['label']) // config.batch_size
  lr_fn = train.create_learning_rate_fn(config, config.learning_rate,
                                        steps_per_epoch)
  state = parallel.put_replicated(
      train.create_train_state(jax.random.key(0), config, lr_fn), mesh)
  rows = {}

  def report(first_step, metrics):
    for key, values in metrics.items():
      rows.setdefault(key, []).extend(values.tolist())

  state, _ = train.train_epoch(
      state, data.train, config.batch_size, jax.random.key(1), lr_fn,
      report=report, report_every=4, mesh=mesh, micro_batches=micro_batches)
  test_loss, test_accuracy = train.eval_model(state, data.test,
                                              config.eval_batch_size, mesh)
  rows['params'] = np.concatenate(
      [np.asarray(leaf).ravel() for leaf in jax.tree.leaves(state.params)])
  rows['test'] = [test_loss, test_accuracy]
  rows['devices'] = mesh.size
  rows['replicated'] = all(leaf.sharding.is_fully_replicated and
                          len(leaf.sharding.device_set) == mesh.size
                          for leaf in jax.tree.leaves(state))
  return rows


def main(idx_dir, output):
  config = conftest.small_config(idx_dir, batch_size=32, eval_batch_size=64,
                                 warmup_epochs=0.5)
  data = input_pipeline.load_datasets(config)
  result = {
      'four': trajectory(config, data, parallel.create_mesh(), 1),
      'one': trajectory(config, data,
                        parallel.create_mesh(jax.devices()[:1]), 1),
      'one_micro': trajectory(config, data,
                              parallel.create_mesh(jax.devices()[:1]), 4),
  }
  bad = conftest.small_config(idx_dir, batch_size=30)
  try:
    validation.validate_batch_for_mesh(bad, parallel.create_mesh())
    result['error'] = None
  except validation.ConfigError as e:
    result['error'] = str(e)
  # Every parameter, to compare the runs' parameters themselves.
  np.savez(output, **{name: run.pop('params') for name, run in result.items()
                      if isinstance(run, dict)})
  print('RESULT ' + json.dumps(result))


if __name__ == '__main__':
  main(sys.argv[1], sys.argv[2])
