"""The language model's study records stay the runs their specs name.

Every published and carried member of an LM study, and every carried
branch of an LM budget sweep, must be — field for field — the run its
spec resolves to at this commit (studies.members on the study's --config
and --vary; budgets.branch_config on the sweep's --config). Otherwise a
chain resumed on a new machine would not find its carried members, --reuse
(and the laws benchmark) would not find their runs, and a published
command would name other runs than its records. This guards every change
to configs/lm*.py: the default peak moved from the studies' reference
2e-3 to 4e-3 while the studies ran.
"""

import json
import pathlib
import re

import pytest

import budgets
import studies
from conftest import PROJECT_DIR
from machinery import cli
from studies import records

STUDIES = PROJECT_DIR / 'docs' / 'studies'
BUDGETS = PROJECT_DIR / 'docs' / 'budgets'
PROGRESS = STUDIES / 'progress'

# Trained when configs/lm.py's peak was 2e-3, before the default became
# 4e-3 (configs/lm.py's REFERENCE_PEAK says why): the same runs are written
# today as configs/lm_variant.py:METHOD:peak=1 (docs/lm.md says so).
AT_THE_OLD_DEFAULT = ('methods_lm', 'budgets_wsd_cooldowns_lm')

# Studies docs/studies/run_lm.sh is training, not published yet: their
# --config and --vary as run_lm.sh writes them (at its chosen peak, x2).
IN_FLIGHT_STUDIES = {
    'cosine_budgets_lm': ('configs/lm_variant.py:lm:peak=2',
                          [['num_epochs', [1, 2, 4, 8]]]),
    'straight_to_zero_lm': (
        'configs/lm.py',
        [['config', ['configs/lm_variant.py:lm_cosine_10:peak=2',
                     'configs/lm_variant.py:lm_linear:peak=2']]]),
}
# Budget sweeps in flight: (--config, budgets, [(fraction, shape)]).
IN_FLIGHT_BUDGETS = {
    'budgets_lm': ('configs/lm_variant.py:lm_wsd:peak=2', [1, 2, 4, 8],
                   [(0.2, '1-sqrt')]),
}


def restated(name, spec: str) -> str:
  """A config as written at the time of study `name`, as written today."""
  if name not in AT_THE_OLD_DEFAULT or 'lm_variant.py' in spec:
    return spec
  method = re.fullmatch(r'configs/(lm\w*)\.py', spec)
  assert method, spec
  return f'configs/lm_variant.py:{method[1]}:peak=1'


def config_flag(command: str) -> str:
  [path] = re.findall(r'--config=(\S+)', command)
  return path


def published_lm_studies() -> dict:
  """{name: (--config, vary)} of every published LM study."""
  out = {}
  for spec_path in sorted(STUDIES.glob('*/study_spec.json')):
    spec = json.loads(spec_path.read_text())
    if spec.get('task') == 'language_model':
      out[spec_path.parent.name] = (config_flag(spec['command']),
                                    spec['vary'])
  return out


def member_configs(name, config_path, vary) -> dict:
  """{member folder name: its config today} of study `name`; the folder
  names are the study's own spec strings'."""
  base = cli.load_config_file(str(PROJECT_DIR / restated(name, config_path)))
  today = [[field, [restated(name, v) if field == 'config' else v
                    for v in values]] for field, values in vary]
  members = studies.members(base, studies.grid(today), 5, '/nowhere')
  names = [studies.member_folder_name(point, seed)
           for point in studies.grid(vary) for seed in range(5)]
  return {name: member.config for name, member in zip(names, members)}


def published_or_in_flight() -> dict:
  return {**IN_FLIGHT_STUDIES, **published_lm_studies()}


def checked_folders(name) -> list[pathlib.Path]:
  return sorted(folder for root in (STUDIES / name, PROGRESS / name)
                for folder in (root / 'members').glob('*')
                if (folder / 'config.json').is_file())


def test_every_published_lm_study_is_checked():
  names = set(published_lm_studies())
  assert {'methods_lm', 'peaks_lm_x2', 'peaks_lm_x0.5', 'large_peaks_lm_x4',
          'large_peaks_lm_x8'} <= names
  carried = {p.name for p in PROGRESS.glob('*_lm*')
             if not p.name.startswith('budgets_')}
  unknown = carried - set(published_or_in_flight())
  assert not unknown, (f'carried LM studies {unknown} are neither published '
                       'nor in IN_FLIGHT_STUDIES: add their spec')


@pytest.mark.parametrize('name', sorted(published_or_in_flight()))
def test_each_lm_members_record_is_its_spec_today(name):
  config_path, vary = published_or_in_flight()[name]
  expected = member_configs(name, config_path, vary)
  folders = checked_folders(name)
  if name in published_lm_studies():
    assert {f.name for f in folders} >= set(expected), name
  for folder in folders:
    assert folder.name in expected, folder
    recorded = json.loads((folder / 'config.json').read_text())
    assert records.is_same_run(recorded, expected[folder.name]), folder


def budget_sweeps() -> dict:
  """{carried folder name: (--config, budgets, cooldowns)} of LM sweeps."""
  out = dict(IN_FLIGHT_BUDGETS)
  for path in sorted(BUDGETS.glob('*/budgets.json')):
    spec = json.loads(path.read_text())['spec']
    if spec.get('task') == 'language_model':
      cooldowns = spec['decay_fraction']
      out[f'budgets_{path.parent.name}'] = (
          config_flag(spec['command']), spec['budgets'],
          [tuple(c) for c in cooldowns])
  return out


def test_every_carried_lm_budget_sweep_is_checked():
  carried = {p.name for p in PROGRESS.glob('budgets_*_lm')} | {
      p.name for p in PROGRESS.glob('budgets_lm')}
  assert 'budgets_wsd_cooldowns_lm' in carried
  assert carried <= set(budget_sweeps())


@pytest.mark.parametrize('name', sorted(budget_sweeps()))
def test_each_lm_budget_branch_record_is_its_spec_today(name):
  config_path, budget_list, cooldowns = budget_sweeps()[name]
  config = cli.load_config_file(str(PROJECT_DIR / restated(name,
                                                           config_path)))
  branches = budgets.branches_of(
      budget_list, tuple(budgets.Cooldown(f, s) for f, s in cooldowns))
  checked = 0
  for seed_dir in sorted((PROGRESS / name).glob('seed*')):
    seed = int(seed_dir.name.removeprefix('seed'))
    for branch in branches:
      recorded = seed_dir / branch.name / 'config.json'
      if recorded.is_file():
        assert records.is_same_run(
            json.loads(recorded.read_text()),
            budgets.branch_config(config, branch, seed)), recorded
        checked += 1
  if name not in IN_FLIGHT_BUDGETS:
    assert checked == 5 * len(branches), name
