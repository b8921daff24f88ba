"""The config a run recorded in its config.json, to run it again.

  python main.py --config=configs/recorded.py:docs/studies/NAME/members/M/config.json \
      --workdir=runs/again

A study publishes every member's config.json (see tools/study.py --publish);
this turns one back into a config: configs/default.py's fields with the
recorded values (lists back to the tuples the defaults use), and on a CPU
the device count, micro-batches and steps per call its run_environment
recorded in place of 'automatic'. Any field can still be overridden with
--config.X=Y, e.g. a data path on another machine.
"""

import json
import pathlib

from configs import default


def get_config(path=None):
  config = default.get_config()
  if path is None:
    raise ValueError('name the recorded file: '
                     '--config=configs/recorded.py:PATH/config.json')
  recorded = json.loads(pathlib.Path(path).read_text())
  environment = recorded.pop('run_environment', None) or {}
  for key, value in recorded.items():
    if key not in config:
      raise ValueError(f'{path} records field {key!r}, which '
                       'configs/default.py does not have')
    config[key] = tuple(value) if isinstance(value, list) else value
  _same_placement(config, environment)
  return config


def _same_placement(config, environment):
  """On a CPU, the run's own placement instead of 'automatic': the device
  count, micro-batches and steps per call it recorded, so that a machine
  with another number of cores still sums the gradients in the same order
  (the same digits). GPU runs keep their automatic placement."""
  if environment.get('backend') != 'cpu' or environment.get(
      'processes', 1) != 1:
    return
  devices = environment.get('devices')
  micro_batches = environment.get('micro_batches')
  if devices and not config.cpu_devices:
    config.cpu_devices = devices
  if micro_batches and not config.micro_batch_size:
    config.micro_batch_size = config.batch_size // micro_batches
  if environment.get('steps_per_call') and not config.steps_per_call:
    config.steps_per_call = environment['steps_per_call']
