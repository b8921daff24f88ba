"""The grid of a study: --vary values, their cross product, and the members
(point, seed), each config validated before anything runs.
"""

import dataclasses
import hashlib
import itertools
import json
import math
import pathlib
import re

import ml_collections

import tasks
from configs import default
from machinery import cli
from machinery import errors
from machinery import files
from machinery import validation


# Above this many members a study is refused unless asked for
# (--allow_large_study): a typo in --vary should not build for minutes.
MAX_MEMBERS = 10_000


# A member folder's readable part is cut to this many characters; a hash of
# the exact values makes the name unique.
MAX_NAME_CHARS = 80


# The axis whose values are whole config files: a method, which may be
# several fields at once (schedule-free SGD: optimizer, schedule, rate).
CONFIG_AXIS = 'config'


def method_fields(path, reference=None) -> dict:
  """The fields the config file at `path` sets apart from `reference`: the
  study's own --config file as written (default configs/default.py).

  That difference is the method: over configs/default.py, configs/wsd.py
  is schedule, decay_epochs and decay_shape, and configs/default.py itself
  is no field at all. Against the study's own file, not always against
  configs/default.py: a method that sets a field back to configs/default.py's
  value (a 25% warmup of 4 epochs is warmup_epochs=1.0, the default's) over
  a --config that does not (configs/lm.py's 0.4) still sets it.

  Raises:
    ConfigError: the file cannot be loaded, or sets a field the defaults
      do not have.
  """
  where = f'--vary={CONFIG_AXIS}=...{path}'
  config = cli.load_config_file(path, where)
  defaults = default.get_config()
  unknown = sorted(set(config.keys()) - set(defaults.keys()))
  if unknown:
    raise errors.ConfigError(f'{where} sets {unknown[0]!r}, which '
                             'configs/default.py has no field for.')
  reference = defaults if reference is None else reference
  return {key: value for key, value in config.items()
          if key not in reference
          or _normal(value) != _normal(reference[key])}


def _normal(value):
  return list(value) if isinstance(value, tuple) else value


def parse_vary(text: str, config) -> tuple[str, list]:
  """'FIELD=V1,V2,...' -> (field, [values typed like config.FIELD]).

  `config=FILE1,FILE2,...` varies whole config files (see method_fields).
  """
  field, sep, values = text.partition('=')
  field = field.strip()
  if not sep or not values.strip():
    raise errors.ConfigError(f'--vary={text!r} is invalid: write '
                             'FIELD=VALUE1,VALUE2,...')
  if field == CONFIG_AXIS:
    paths = [v.strip() for v in values.split(',')]
    for path in paths:
      method_fields(path)  # one line now, not in the middle of the study
    return field, _without_repeats(text, field, paths)
  if field not in config:
    raise errors.ConfigError(f'--vary={text!r} is invalid: config has no '
                             f'field {field!r}.')
  if field == 'seed':
    raise errors.ConfigError('--vary=seed=... is invalid: use --seeds=N, '
                             'which pairs the seeds across the grid.')
  typed = [_typed(field, v.strip(), config[field]) for v in values.split(',')]
  return field, _without_repeats(text, field, typed)


def _without_repeats(text, field, values):
  repeated = sorted({_text(v) for v in values if values.count(v) > 1})
  if repeated:
    raise errors.ConfigError(f'--vary={text!r} is invalid: {field} takes the '
                             f'value {repeated[0]} twice.')
  return values


def _typed(field, text, like):
  try:
    if isinstance(like, bool):
      if text.lower() not in ('true', 'false'):
        raise ValueError(text)
      return text.lower() == 'true'
    if isinstance(like, int):
      return int(text)
    if isinstance(like, float):
      return float(text)
    if isinstance(like, str):
      return text
  except ValueError:
    pass
  raise errors.ConfigError(f'--vary: {field}={text!r} is not a '
                           f'{type(like).__name__} like config.{field}.')


def grid_size(varied: list[tuple[str, list]], seeds: int) -> int:
  """How many members the grid has, without building it."""
  return math.prod(len(values) for _, values in varied) * seeds


def check_grid_size(count: int, allow_large: bool) -> None:
  if count > MAX_MEMBERS and not allow_large:
    raise errors.ConfigError(
        f'The study has {count:,} members (grid points x seeds), more than '
        f'{MAX_MEMBERS:,}: check --vary and --seeds, or pass '
        '--allow_large_study to train them all.')


def grid(varied: list[tuple[str, list]]) -> list[dict]:
  """The cross product of the varied fields' values, in flag order."""
  fields = [field for field, _ in varied]
  return [dict(zip(fields, values))
          for values in itertools.product(*[v for _, v in varied])]


def _text(value) -> str:
  """A value as a label shows it: exact (floats round-trip), short."""
  if isinstance(value, float):
    text = repr(value)
    return text[:-2] if text.endswith('.0') else text
  return str(value)


def label(point: dict) -> str:
  """'schedule=sgdr, warmup_epochs=1' (or 'base' for an empty grid).

  Exact: two points whose values differ never share a label (0.05 and
  0.05000001 print as themselves), so the label can key the statistics.
  """
  return ', '.join(f'{k}={_text(v)}' for k, v in point.items()) or 'base'


def member_folder_name(point: dict, seed: int) -> str:
  """A member's folder: a readable, safe part and a hash of the exact values.

  The readable part keeps letters, digits and `.-_=+` of `field-value` pairs
  (anything else, '/' and '..' included, becomes '_'), cut to
  MAX_NAME_CHARS; the hash of the exact (field, value) pairs and the seed
  keeps names unique whatever the cut or the replaced characters were. So a
  member lives in workdir/members/ whatever its values hold.
  """
  parts = [f'{k}-{_text(v)}' for k, v in point.items()] + [f'seed{seed}']
  readable = re.sub(r'[^A-Za-z0-9.=+_-]', '_', '_'.join(parts))
  readable = re.sub(r'\.{2,}', '_', readable).lstrip('.-')[:MAX_NAME_CHARS]
  exact = json.dumps([[k, repr(v)] for k, v in point.items()] + [seed])
  digest = hashlib.sha256(exact.encode()).hexdigest()[:10]
  return f'{readable}-{digest}'


@dataclasses.dataclass(frozen=True)
class Member:
  """One (grid point, seed) of a study and where its run lives."""
  point: dict
  seed: int
  config: ml_collections.ConfigDict
  workdir: pathlib.Path
  index: int = 0  # its place in the study's member list

  @property
  def name(self) -> str:
    return self.workdir.name

  @property
  def study_dir(self) -> pathlib.Path:
    """The study's workdir (the member lives in its members/ folder)."""
    return self.workdir.parent.parent

  def check_folder(self) -> pathlib.Path:
    """The member's folder, refused (one line) if it or members/ is a link:
    a whole run is never written into a user's folder through one."""
    return files.check_no_links_below(self.study_dir, self.workdir)


def members(base, points, seeds: int, workdir,
            reference=None) -> list[Member]:
  """Every (point, seed), each config validated before anything runs.

  A member's config is `base` (the study's --config and --config.X), then
  the fields of its `config` axis file that differ from `reference` (its
  method: see method_fields; `reference` is the study's --config file
  without its --config.X, default configs/default.py), then its other
  varied fields, the most specific last.
  """
  out = []
  root = pathlib.Path(workdir) / 'members'
  methods = {}
  for point in points:
    for seed in range(seeds):
      config = base.copy_and_resolve_references()
      fields = dict(point)
      if CONFIG_AXIS in fields:
        path = fields.pop(CONFIG_AXIS)
        if path not in methods:
          methods[path] = method_fields(path, reference)
        fields = {**methods[path], **fields}
      with config.unlocked():
        config.update(fields)
        config.seed = seed
        config.progress_bar = 'never'  # a bar per member would be noise
      validation.validate_config(config)
      out.append(Member(point, seed, config,
                        root / member_folder_name(point, seed), len(out)))
  _check_points_differ(out)
  names = sorted({m.config.task for m in out})
  if len(names) > 1:
    raise errors.ConfigError(
        f'The study mixes tasks ({", ".join(names)}): a study compares runs '
        'of one task on one primary metric; give every method file the '
        'same task (e.g. --config=configs/lm.py with configs/lm_*.py).')
  return out


def _check_points_differ(members_: list[Member]) -> None:
  """Two grid points that resolve to the same run, field for field, would
  be a study comparing a run with itself under two names: refused (a
  method file whose field did not apply trained another cell's runs so)."""
  seen = {}
  for member in members_:
    if member.seed:
      continue
    key = json.dumps(member.config.to_dict(), sort_keys=True, default=repr)
    if key in seen:
      raise errors.ConfigError(
          f'--vary points `{label(seen[key])}` and `{label(member.point)}` '
          'are the same run, field for field: the study would compare a run '
          'with itself. Give each point a value that changes its config.')
    seen[key] = member.point


def task_spec(members_: list[Member]) -> dict:
  """study_spec.json's 'task' (tasks.spec_entry)."""
  return tasks.spec_entry(members_[0].config)
