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
import claims
from claims.pairing import LM_VARIANT
from configs import laws_benchmark
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

# Studies docs/studies/run_lm.sh and docs/laws/run_benchmark.sh train
# after the published ones: their --config and --vary as those scripts
# write them (run_lm.sh's at its chosen peak, x2; the laws benchmark's at
# the reference peak), so that their carried members are checked too.
LAWS = 'configs/laws_benchmark.py:language_model:'
OPTIMIZED = 'configs/recorded.py:docs/laws/language_model_optimized.schedule.json'


def _warmup_study(b2, epochs):
  return (claims.lm_config('lm', '2', f'b2={b2}'), [['config', [
      claims.lm_config('lm', '2', f'warmup={share}:epochs={epochs}:b2={b2}')
      for share in ('0', '0.01', '0.025', '0.05', '0.1', '0.25')]]])


IN_FLIGHT_STUDIES = {
    'straight_to_zero_lm_4x': ('configs/lm.py', [['config', [
        claims.lm_config('lm_cosine_10', '2', 'epochs=16'),
        claims.lm_config('lm_linear', '2', 'epochs=16')]]]),
    **{f'warmup_lm_b2_{b2}_{epochs}ep': _warmup_study(b2, epochs)
       for b2 in ('0.95', '0.999') for epochs in (2, 4)},
    'laws_lm': (LM_VARIANT + 'lm:peak=1', [['config', [
        LAWS + name for name in laws_benchmark.entries()
        if not name.startswith('wsd_')]]]),
}
if (PROJECT_DIR / OPTIMIZED.partition(':')[2]).is_file():
  IN_FLIGHT_STUDIES['laws_optimized_lm'] = (
      LM_VARIANT + 'lm:peak=1', [['config', [
          OPTIMIZED, LAWS + 'cosine_to_zero', LAWS + 'wsd_1sqrt_20',
          LAWS + 'linear_to_zero']]])


def restated(name, spec: str) -> str:
  """A config as written at the time of study `name`, as written today."""
  if name not in AT_THE_OLD_DEFAULT or 'lm_variant.py' in spec:
    return spec
  method = re.fullmatch(r'configs/(lm\w*)\.py', spec)
  assert method, spec
  return f'{LM_VARIANT}{method[1]}:peak=1'


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
  members = studies.members(base, studies.grid(today), 5, '/nowhere',
                            reference=base)
  folders = [studies.member_folder_name(point, seed)
             for point in studies.grid(vary) for seed in range(5)]
  return {folder: member.config for folder, member in zip(folders, members)}


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
  out = {}
  for path in sorted(BUDGETS.glob('*/budgets.json')):
    spec = json.loads(path.read_text())['spec']
    if spec.get('task') == 'language_model':
      cooldowns = spec['decay_fraction']  # one fraction, or the sweep's
      out[f'budgets_{path.parent.name}'] = (
          config_flag(spec['command']), spec['budgets'],
          [tuple(c) for c in cooldowns] if isinstance(cooldowns, list)
          else cooldowns)
  return out


def test_every_carried_lm_budget_sweep_is_checked():
  carried = {p.name for p in PROGRESS.glob('budgets_*lm')}
  assert 'budgets_wsd_cooldowns_lm' in carried
  assert carried <= set(budget_sweeps())


@pytest.mark.parametrize('name', sorted(budget_sweeps()))
def test_each_lm_budget_branch_record_is_its_spec_today(name):
  config_path, budget_list, cooldowns = budget_sweeps()[name]
  config = cli.load_config_file(str(PROJECT_DIR / restated(name,
                                                           config_path)))
  if isinstance(cooldowns, list):
    cooldowns = tuple(budgets.Cooldown(f, shape) for f, shape in cooldowns)
  branches = budgets.branches_of(budget_list,
                                 budgets.cooldowns_of(config, cooldowns))
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
  assert checked == 5 * len(branches), name  # published: every branch
