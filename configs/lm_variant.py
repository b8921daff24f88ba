"""A language-model method config changed in the ways the LM studies vary
together: the peak with its floor, the warmup as a share of the run, the
length, Adam's beta2.

  --config=configs/lm_variant.py:lm_cosine_10:peak=2
  --config=configs/lm_variant.py:lm:warmup=0.025:epochs=2:b2=0.999

The first part names a config of configs/ (`lm`, `lm_wsd`, ...); each
further `key=value` changes it:

- `peak=F`: the peak is F x configs/lm.py's REFERENCE_PEAK (2e-3, the
  default until the peak studies; the default 4e-3 is peak=2), and
  min_learning_rate and warmup_init_lr scale with it. Of the reference,
  not of the default, so that every study's `peak=F` names the runs it
  named when it trained (tests/test_lm_records.py). lm_cosine_10's floor
  stays 10% of the peak, as the peaks study means (a verdict must not hinge
  on one peak, and the method is "cosine to 10% of the peak").
- `warmup=S`: the warmup is the share S of the run (0.025 = 2.5%), so that
  "2.5% warmup" means the same at every length.
- `epochs=N`: num_epochs (steps_per_epoch stays 250: N x 250 steps). With
  `warmup`, the share is of the new length, whatever the order.
- `b2=X`: Adam's beta2.

In a study, a method is what its file sets apart from the study's
--config file (tools/study.py): `warmup=0.25:epochs=4` is warmup_epochs
1.0, configs/default.py's value, and still a change over configs/lm.py's
0.4. (Until 2026-12-06 a method was read against configs/default.py, and
such a value was silently dropped: docs/lm.md says which runs it cost.)

Study members differ by these fields alone, so --reuse still finds a run
of another study with the same fields (configs/lm.py itself is
`lm_variant.py:lm`).
"""

import importlib

from configs import lm

KEYS = ('peak', 'warmup', 'epochs', 'b2')


def get_config(argument=None):
  method, *changes = str(argument).split(':')
  if not method.startswith('lm'):
    raise ValueError(f'name a language-model config of configs/ (lm, '
                     f'lm_wsd, ...), not {method!r}: --config=configs/'
                     'lm_variant.py:lm:peak=2')
  config = importlib.import_module(f'configs.{method}').get_config()
  values = {}
  for change in changes:
    key, _, value = change.partition('=')
    if key not in KEYS or not value:
      raise ValueError(f'{change!r}: write KEY=VALUE with KEY one of '
                       f'{", ".join(KEYS)}')
    values[key] = float(value)
  if 'peak' in values:
    # A power-of-two F scales every field exactly: the same floats as when
    # F multiplied the reference peak itself.
    scale = values['peak'] * lm.REFERENCE_PEAK / config.learning_rate
    for field in ('learning_rate', 'min_learning_rate', 'warmup_init_lr'):
      config[field] = config[field] * scale
  if 'epochs' in values:
    config.num_epochs = int(values['epochs'])
  if 'warmup' in values:
    config.warmup_epochs = round(values['warmup'] * config.num_epochs, 6)
  if 'b2' in values:
    config.b2 = values['b2']
  return config
