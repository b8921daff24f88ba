"""The config a run recorded in its config.json, to run it again.

  python main.py --config=configs/recorded.py:docs/studies/NAME/members/M/config.json \
      --workdir=runs/again

A study publishes every member's config.json (see tools/study.py --publish);
this turns one back into a config: configs/default.py's fields with the
recorded values (lists back to the tuples the defaults use), without the
run_environment the run also wrote. Any field can still be overridden with
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
  recorded.pop('run_environment', None)
  for key, value in recorded.items():
    if key not in config:
      raise ValueError(f'{path} records field {key!r}, which '
                       'configs/default.py does not have')
    config[key] = tuple(value) if isinstance(value, list) else value
  return config
