"""The language-model task: a byte-level transformer on the State of the
Union addresses, trained with AdamW under warmup + cosine.

`python main.py --config=configs/lm.py --workdir=runs/lm` (any field
overridable, e.g. `--config.text_path=my_text/` to learn your own text).

Why these values:
- Size (4 layers, width 128, 4 heads, context 128: 0.88M parameters; batch
  32 windows = 4,096 tokens a step): the largest nanoGPT-shaped model
  whose default run fits in about 6 minutes on 2 CPU cores, and large
  enough that the schedule matters (docs/lm.md).
- An epoch is `steps_per_epoch` = 250 steps (1.0M tokens), not a pass over
  the 9.4M training bytes: the validation loss is measured after every
  epoch, as nanoGPT's eval_interval; 4 epochs = 1,000 steps = 4.1M
  tokens, 44% of a pass, so no window is seen twice.
- Each evaluation reads `eval_examples` = 2,048 of the 10,637 validation
  windows (262k bytes, evenly spaced over the 23 held-out addresses, the
  same ones in every run): the whole split would cost 35 s an epoch.
- AdamW with b2 = 0.95, weight decay 0.1 and gradient clipping at 1.0:
  the GPT-3 / nanoGPT recipe for transformers, with a warmup of a third of
  an epoch (100 steps, 10% of the run), cosine to zero.
- Peak 4e-3: where warmup + cosine to zero ended lowest among 1e-3 to
  1.6e-2 (5 paired seeds each; docs/lm.md, "Results"), and where a
  constant rate ends detectably worse than it (+0.26 bits per byte): a
  default that shows what a schedule does. It was 2e-3 until the peak
  studies measured it: REFERENCE_PEAK below.
"""

from configs import default

# The peak the LM studies' multiples are of (configs/lm_variant.py's
# `peak=F` is F x 2e-3; the studies peaks_lm_x0.5 ... large_peaks_lm_x8),
# and at which methods_lm and the schedule-law benchmark trained: this
# config's peak when they were specified. The default is twice it.
REFERENCE_PEAK = 2e-3


def get_config():
  """Returns the language-model configuration."""
  config = default.get_config()
  config.task = 'language_model'
  config.dataset = 'sotu'
  config.context_length = 128
  config.num_layers = 4
  config.width = 128
  config.num_heads = 4

  config.optimizer = 'adamw'
  config.learning_rate = 2 * REFERENCE_PEAK  # 4e-3: see the docstring
  config.b1 = 0.9
  config.b2 = 0.95
  config.weight_decay = 0.1
  config.grad_clip_norm = 1.0

  config.batch_size = 32
  config.eval_batch_size = 128
  config.eval_examples = 2048
  config.num_epochs = 4
  config.steps_per_epoch = 250
  config.warmup_epochs = 0.4
  config.schedule = 'warmup_cosine'
  # Method configs derived from this one (configs/lm_*.py) set these.
  config.decay_epochs = 1.0
  config.step_epochs = (2, 3)
  config.cycle_epochs = 1.0
  config.log_every_steps = 50
  return config
