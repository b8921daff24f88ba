"""The claims package: literature claims checked against published study files."""

import csv
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
import scipy.stats

import claims
from conftest import PROJECT_DIR
from machinery import errors
from machinery import stats
from runs import run_tool
import tasks

WSD, COSINE = 'configs/wsd.py', 'configs/default.py'
ROW = ('member', 'seed', 'config', 'final_test_accuracy', 'finished',
       'diverged')


def write_study(folder, members, epochs=()):
  """members: (name, seed, config, final accuracy, finished, diverged)."""
  folder.mkdir(parents=True)
  with open(folder / 'study.csv', 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(ROW)
    writer.writerows(members)
  with open(folder / 'study_epochs.csv', 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(('member', 'epoch', 'test_accuracy', 'test_loss',
                     'train_loss'))
    writer.writerows((m, e, a, 0.1, 0.1) for m, e, a in epochs)


def wsd_claim():
  return claims.CLAIMS[0], claims.CLAIMS[0].comparisons[0]


def test_a_study_not_run_yet_is_said_so(tmp_path):
  claim, comparison = wsd_claim()
  assert claims.check(claim, comparison, tmp_path)['status'].startswith(
      'not run yet')


TRAINED = [('w0', 0, WSD, 0.9930, 1, 0), ('c0', 0, COSINE, 0.9920, 1, 0),
           ('w1', 1, WSD, 0.9925, 1, 0), ('c1', 1, COSINE, 0.9915, 1, 0),
           ('w2', 2, WSD, 0.9935, 1, 0), ('c2', 2, COSINE, 0.9925, 1, 0)]


def test_paired_by_seed_with_unfinished_left_out(tmp_path):
  claim, comparison = wsd_claim()
  write_study(tmp_path / comparison.study, [
      *TRAINED,
      ('w4', 4, WSD, 0.5, 0, 0), ('c4', 4, COSINE, 0.9920, 1, 0)])  # unfinished
  result = claims.check(claim, comparison, tmp_path)
  assert result['n'] == 3
  assert result['difference']['mean'] == pytest.approx(0.001)
  assert result['verdict'] == 'better'  # +0.1 pp on each of the 3 seeds


@pytest.mark.parametrize('row', [
    ('w3', 3, WSD, 0.1, 0, 1),       # diverged
    ('w3', 3, WSD, 0.1135, 1, 0)])   # finished at chance
def test_a_run_that_did_not_train_is_counted_not_averaged(tmp_path, row):
  """A diverged or at-chance member turns the comparison into counts (4
  paired seeds: 3 trained against 4), tested exactly, never an interval."""
  claim, comparison = wsd_claim()
  write_study(tmp_path / comparison.study, [
      *TRAINED, row, ('c3', 3, COSINE, 0.9920, 1, 0)])
  result = claims.check(claim, comparison, tmp_path)
  counts = result['result']
  assert (counts.n, counts.trained, counts.baseline_trained) == (4, 3, 4)
  assert counts.p_value == 1.0  # one discordant seed
  assert result['verdict'] == 'no detectable difference'
  assert 'ci95_low' not in result['difference']


def test_fewer_epochs_to_the_target_is_better(tmp_path):
  claim = next(c for c in claims.CLAIMS if c.metric == 'epochs_to_target')
  comparison = claim.comparisons[0]
  sgdr = comparison.point['config']
  members, epochs = [], []
  for seed, (mine, theirs) in enumerate([(2, 4), (2, 5), (2, 4), (3, None)]):
    # SGDR reaches 99% at epoch 2, cosine at 4-5 (seed 3's never).
    members += [(f's{seed}', seed, sgdr, 0.99, 1, 0),
                (f'c{seed}', seed, COSINE, 0.99, 1, 0)]
    for name, hit in ((f's{seed}', mine), (f'c{seed}', theirs)):
      epochs += [(name, e, 0.995 if hit and e >= hit else 0.98)
                 for e in range(1, 7)]
  write_study(tmp_path / comparison.study, members, epochs)
  result = claims.check(claim, comparison, tmp_path)
  assert result['n'] == 3  # seed 3's cosine never reached 99%
  assert result['difference']['mean'] == pytest.approx((-2 - 3 - 2) / 3)
  # Whole epochs: the exact sign test, whose smallest p with 3 seeds is
  # 0.25, whatever the t interval says.
  assert result['difference']['p_value'] == pytest.approx(0.25)
  assert result['verdict'] == 'no detectable difference'


def test_one_paired_seed_gives_no_interval(tmp_path):
  claim, comparison = wsd_claim()
  write_study(tmp_path / comparison.study, [
      ('w0', 0, WSD, 0.99, 1, 0), ('c0', 0, COSINE, 0.98, 1, 0)])
  assert claims.check(claim, comparison, tmp_path)['status'] == (
      '1 paired seed(s): no test')


def write_page(studies_dir) -> str:
  """tools/claims.py run as a user runs it on `studies_dir`, writing
  claims.md (and its pictures) there; the page it wrote."""
  output = studies_dir / 'claims.md'
  result = run_tool('tools/claims.py', f'--studies_dir={studies_dir}',
                    f'--output={output}', config=None)
  assert result.returncode == 0, result.stderr[-2000:]
  return output.read_text()


def test_the_tool_writes_the_page(tmp_path):
  claim, comparison = wsd_claim()
  write_study(tmp_path / comparison.study, [
      (f'{k}{s}', s, config, acc + 0.001 * s, 1, 0)
      for s in range(5) for k, config, acc in (('w', WSD, 0.99),
                                               ('c', COSINE, 0.9905))])
  page = write_page(tmp_path)
  assert ('| MNIST | `config=configs/wsd.py` vs `config=configs/default.py`, '
          'final_test_accuracy | -0.05 pp [-0.05, -0.05], n=5, p<0.001 | '
          # Detectably lower, and yet within the margin: both are said.
          'worse; **shown within ±0.2 pp** (TOST, p<0.001) |'
          ) in page
  assert 'not run yet (docs/studies/methods_fashion/)' in page
  assert 'Not testable here' in page


def test_the_answer_table_pairs_every_method_with_cosine(tmp_path):
  linear = 'configs/linear.py'
  write_study(tmp_path / 'methods_mnist', [
      (f'{k}{s}', s, config, acc + 0.001 * s, 1, 0)
      for s in range(5) for k, config, acc in (('l', linear, 0.992),
                                               ('c', COSINE, 0.990))])
  table = claims.methods_table(tmp_path)
  rows = {line.split(' | ')[0]: line for line in table.splitlines()}
  assert rows["| warmup + cosine (the seed's)"].startswith(
      "| warmup + cosine (the seed's) | 99.20% [99.00, 99.40] | (baseline) "
      '| not run yet |')
  assert ('| 99.40% [99.20, 99.60] | +0.20 [+0.20, +0.20], p<0.001: '
          '**better** |') in rows[
      '| linear to zero']
  assert '| — | 0 paired seed(s) |' in rows['| step']


@pytest.mark.parametrize('output,message', [
    ('nowhere/claims.md', 'is not a folder'), ('.', 'is a folder')])
def test_a_bad_output_is_one_line(tmp_path, output, message):
  result = run_tool('tools/claims.py', f'--studies_dir={tmp_path}',
                    f'--output={tmp_path / output}', config=None)
  assert result.returncode == 1
  assert message in result.stderr.strip().splitlines()[-1]
  assert 'Traceback' not in result.stderr


def write_peak_study(folder, config, accuracies):
  """accuracies: {rate: final accuracy of seed 0; seed s adds 0.001 s}."""
  folder.mkdir(parents=True)
  with open(folder / 'study.csv', 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(('member', 'seed', 'config', 'learning_rate',
                     'final_test_accuracy', 'finished', 'diverged'))
    writer.writerows((f'{rate}-{s}', s, config, rate, acc + 0.001 * s, 1, 0)
                     for rate, acc in accuracies.items() for s in range(5))


def test_the_ranking_is_checked_at_half_and_twice_each_peak(tmp_path):
  free, sgdr = 'configs/schedule_free.py', 'configs/sgdr.py'
  write_study(tmp_path / 'methods_fashion', [
      (f'{k}{s}', s, config, acc + 0.001 * s, 1, 0) for s in range(5)
      for k, config, acc in (('f', free, 0.905), ('g', sgdr, 0.902),
                             ('c', COSINE, 0.900))])
  assert claims.best_other_method(tmp_path) == free
  assert claims.peak_multiples(free) == [1.5, 6.0]
  assert claims.peak_multiples(COSINE) == [0.05, 0.2]
  table = claims.peaks_table(tmp_path)
  assert '| x0.5 | not run yet (docs/studies/peaks_fashion_schedule_free/)' in (
      table)
  write_peak_study(tmp_path / 'peaks_fashion_schedule_free', free,
                   {1.5: 0.903, 6.0: 0.880})
  write_peak_study(tmp_path / 'peaks_fashion_default', COSINE,
                   {0.05: 0.899, 0.2: 0.890})
  rows = claims.peaks_table(tmp_path).splitlines()
  assert rows[2:] == [
      f'| x0.5 | `{free}`: +0.40 [+0.40, +0.40], n=5, p<0.001 | better |',
      f'| x1 | `{free}`: +0.50 [+0.50, +0.50], n=5, p<0.001 | better |',
      f'| x2 | `{free}`: -1.00 [-1.00, -1.00], n=5, p<0.001 | worse |']
  result = run_tool('tools/claims.py', f'--studies_dir={tmp_path}',
                    '--best_method', config=None)
  assert result.stdout.strip() == free


def test_the_committed_claims_page_is_the_committed_studies_page(tmp_path):
  """docs/claims.md is rebuilt from docs/studies/ whenever a study lands: a
  stale page (a published study it does not show) fails here."""
  output = tmp_path / 'claims.md'
  result = run_tool('tools/claims.py', '--studies_dir=docs/studies',
                    f'--output={output}', config=None)
  assert result.returncode == 0, result.stderr[-2000:]
  committed = (PROJECT_DIR / 'docs' / 'claims.md').read_text()
  assert output.read_text() == committed


def test_the_seeds_question_pairs_each_warmup_with_none_per_budget(tmp_path):
  """Study 3's table: a warmup's difference is against no warmup at the
  same num_epochs; only intervals that exclude zero get a verdict."""
  folder = tmp_path / 'warmup_mnist'
  folder.mkdir()
  base = {2: 0.980, 10: 0.990}
  # At 2 epochs one epoch of warmup costs 0.3 pp on every seed; at 10 it
  # is +0.1 pp on some seeds and -0.1 on others: no verdict.
  effect = {(2, 1.0): lambda s: -0.003, (10, 1.0): lambda s: (
      0.001 if s % 2 else -0.001)}
  with open(folder / 'study.csv', 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(('member', 'seed', 'warmup_epochs', 'num_epochs',
                     'final_test_accuracy', 'finished', 'diverged'))
    for epochs in (2, 10):
      for warmup in (0.0, 1.0):
        for s in range(5):
          acc = base[epochs] + 0.001 * s + effect.get(
              (epochs, warmup), lambda s: 0)(s)
          writer.writerow((f'{warmup}-{epochs}-{s}', s, warmup, epochs, acc,
                           1, 0))
  lines = claims.warmup_table(tmp_path, 'warmup_mnist').splitlines()
  assert lines[0] == '| num_epochs | warmup 0 epochs | warmup 1 epochs |'
  assert lines[2] == ('| 2 | 98.20% [98.00, 98.40] | 97.90% [97.70, 98.10]'
                      '<br>-0.30 [-0.30, -0.30], p<0.001: **worse** |')
  assert lines[3].startswith('| 10 | 99.20% [99.00, 99.40] | ')
  assert '**' not in lines[3]
  assert lines[-2:] == [
      '- 2 epochs: 1 (worse, -0.30 pp, p<0.001)',
      '- 10 epochs: no warmup differs detectably from none with 5 seeds']
  assert claims.warmup_table(tmp_path, 'warmup_fashion') == (
      'Not run yet (docs/studies/warmup_fashion/).\n')


def test_every_study_the_claims_read_is_one_run_all_runs():
  """A claim whose study run_all.sh never runs would read "not run yet"
  forever."""
  script = (PROJECT_DIR / 'docs' / 'studies' / 'run_all.sh').read_text()
  lm_script = (PROJECT_DIR / 'docs' / 'studies' / 'run_lm.sh').read_text()
  read = {c.study for claim in claims.CLAIMS for c in claim.comparisons
          if not c.budgets}
  read |= {study for _, study in claims.METHOD_STUDIES + claims.WARMUP_STUDIES}
  for sweep in {c.study for claim in claims.CLAIMS for c in claim.comparisons
                if c.budgets}:
    assert f'budgets {sweep} ' in lm_script, sweep
  # Study 5: run_lm.sh's loops over beta2 and lengths.
  assert ('BASE="$(at_peak "lm:b2=$b2")" study '
          '"warmup_lm_b2_${b2}_${epochs}ep"') in lm_script
  assert (f'for b2 in {" ".join(claims.LM_WARMUP_B2)}; do' in lm_script and
          f'for epochs in {" ".join(map(str, claims.LM_WARMUP_EPOCHS))}; do'
          in lm_script)
  read |= set(claims.LM_COSINE_PEAK_STUDIES.values())
  for study in sorted(read):
    # run_lm.sh's functions over peaks: `large_peaks 4`, `peaks 2`.
    for function, name in (('large_peaks', 'large_peaks_lm_x$1'),
                           ('peaks', 'peaks_lm_x$peak')):
      if study.startswith(name.split('$')[0]):
        assert f'study "{name}"' in lm_script
        assert f'\n{function} {study.rsplit("x", 1)[1]}\n' in lm_script, study
        break
    else:
      assert f'study {study} ' in (lm_script if '_lm' in study else script), (
          study)
  assert 'study "peaks_fashion_$(basename "$method" .py)"' in script


def test_run_all_reuses_only_the_carried_studies_that_exist(tmp_path):
  """reuse() of run_all.sh, run_lm.sh and run_benchmark.sh (sourced from
  docs/studies/reuse.sh): --reuse names only carry folders that exist (a
  missing one would stop the study with an error)."""
  (tmp_path / 'docs/studies/progress/warmup_mnist/members').mkdir(
      parents=True)
  script = PROJECT_DIR / 'docs' / 'studies' / 'reuse.sh'
  for runner in ('docs/studies/run_all.sh', 'docs/studies/run_lm.sh',
                 'docs/laws/run_benchmark.sh'):
    assert 'source docs/studies/reuse.sh' in (PROJECT_DIR / runner).read_text()

  def reuse(*names):
    return subprocess.run(
        ['bash', '-c', f'source {script}; reuse "$@"', 'reuse', *names], cwd=tmp_path, capture_output=True,
        text=True, check=True).stdout.strip()
  assert reuse('warmup_mnist', 'methods_mnist') == (
      '--reuse=docs/studies/progress/warmup_mnist')
  assert reuse('methods_mnist') == ''


def test_a_committed_result_is_not_trained_again(tmp_path):
  """committed() of docs/studies/reuse.sh, under set -e as the runners
  use it: a study whose study.json is committed returns before training;
  one not committed goes on."""
  (tmp_path / 'docs/studies/done').mkdir(parents=True)
  (tmp_path / 'docs/studies/done/study.json').write_text('{}')
  script = PROJECT_DIR / 'docs' / 'studies' / 'reuse.sh'
  run = ('set -euo pipefail; source {}; study() {{ committed "$1" '
         '"docs/studies/$1/study.json" && return; echo "training $1"; }}; '
         'study done; study new').format(script)
  out = subprocess.run(['bash', '-c', run], cwd=tmp_path, capture_output=True,
                       text=True, check=True).stdout.splitlines()
  assert out == ['done: committed in docs/studies/done/, not rerun',
                 'training new']


def test_the_tool_runs_from_another_folder(tmp_path):
  """The claims name the project's config files relative to the project:
  run from elsewhere, the tool writes the same page (no traceback)."""
  output = tmp_path / 'claims.md'
  result = subprocess.run(
      [sys.executable, str(PROJECT_DIR / 'tools' / 'claims.py'),
       f'--studies_dir={PROJECT_DIR / "docs" / "studies"}',
       f'--output={output}'], capture_output=True, text=True, timeout=300,
      cwd=tmp_path)
  assert result.returncode == 0, result.stderr[-2000:]
  assert output.read_text() == (PROJECT_DIR / 'docs' / 'claims.md').read_text()


def test_the_language_models_margin_is_the_one_fixed_before_its_numbers():
  """Pre-registered on 2026-12-05 (claims/pairing.py says why): changing it after
  the LM studies are read is a visible edit of this test."""
  assert claims.LM_MARGIN_BITS == 0.01


def write_lm_study(folder, members, column='final_test_loss'):
  """members: (name, seed, config, final validation loss in nats), all
  finished; or another metric's final value, in `column`."""
  folder.mkdir(parents=True)
  with open(folder / 'study.csv', 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(('member', 'seed', 'config', column, 'finished',
                     'diverged'))
    writer.writerows((*member, 1, 0) for member in members)


def test_a_language_model_row_reads_bits_per_byte_lower_is_better(tmp_path):
  """methods_lm's WSD against warmup + cosine: the loss in nats read as
  bits per byte; WSD 0.002 nats lower on every seed is 'better'; the
  equivalence margin is LM_MARGIN_BITS."""
  claim = claims.CLAIMS[0]
  [comparison] = [c for c in claim.comparisons if c.study == 'methods_lm']
  write_lm_study(tmp_path / 'methods_lm', [
      (f'{name}{seed}', seed, config, 1.30 + 0.001 * seed * seed - shift)
      for seed in range(5) for name, config, shift in (
          ('c', 'configs/lm.py', 0.0), ('w', 'configs/lm_wsd.py', 0.002))])
  result = claims.check(claim, comparison, tmp_path)
  assert result['verdict'] == 'better'
  assert result['difference']['mean'] == pytest.approx(-0.002)
  numbers, verdict = claims.claim_cell(claim, result, comparison)
  assert numbers.startswith(f'{-0.002 / math.log(2):+.3f} bits per byte [')
  assert verdict.startswith('better; **shown within ±0.01 bits per byte**')


def test_the_language_models_column_is_a_family_of_its_own(tmp_path):
  """methods_lm's column: bits per byte, lower is better, paired with
  configs/lm.py; its comparisons are not in the image columns' family."""
  write_lm_study(tmp_path / 'methods_lm', [
      (f'{name}{seed}', seed, f'configs/{config}', loss + 0.001 * seed)
      for seed in range(5) for name, config, loss in (
          ('c', 'lm.py', 1.30), ('l', 'lm_linear.py', 1.29),
          ('k', 'lm_constant.py', 1.40))])
  table = claims.methods_table(tmp_path)
  rows = {line.split(' | ')[0]: line for line in table.splitlines()}
  assert 'SOTU language model: final bits per byte [95% CI]' in table
  bits = lambda nats: f'{nats / math.log(2):.3f}'
  difference = f'{-0.01 / math.log(2):+.3f}'
  linear = rows['| linear to zero'].split(' | ')
  assert linear[-2].startswith(f'{bits(1.292)} [')  # mean of 1.290..1.294
  assert linear[-1] == (f'{difference} [{difference}, {difference}], '
                        'p<0.001: **better** |')
  assert rows['| constant'].endswith('**worse** |')
  assert '| — |' in rows['| cosine to 10% of the peak']
  assert rows['| cosine to 10% of the peak'].endswith('| 0 paired seed(s) |')


def test_the_smallest_detectable_difference_reads_unsigned_in_its_unit():
  """The '(±X)' beside "no detectable difference": pp for accuracy, bits
  per byte (from nats) for the language model."""
  assert tasks.TEST_ACCURACY.magnitude(0.0014) == '0.14'
  assert tasks.BITS_PER_BYTE.magnitude(-0.01 * math.log(2)) == '0.010'


def test_a_claim_shown_for_one_model_only_is_a_finding(tmp_path):
  """WSD matches cosine for the language model (within 0.0002 nats on each
  seed: shown within ±0.01 bits per byte) but is 0.5 pp worse on MNIST:
  one sentence, in the page; a claim with one model's rows only, none."""
  write_study(tmp_path / 'methods_mnist', [
      (f'{name}{seed}', seed, config, accuracy + 0.0001 * seed * seed)
      + (1, 0) for seed in range(5) for name, config, accuracy in (
          ('w', WSD, 0.987), ('c', COSINE, 0.992))])
  write_lm_study(tmp_path / 'methods_lm', [
      (f'{name}{seed}', seed, config, 1.30 + 0.001 * seed * seed + shift)
      for seed in range(5) for name, config, shift in (
          ('c', 'configs/lm.py', 0.0),
          ('w', 'configs/lm_wsd.py', 0.0002 * (-1) ** seed))])
  assert claims.findings(tmp_path) == [
      '"WSD with a short 1-sqrt cooldown matches cosine" holds here for the '
      'language model and not the CNN (SOTU (language model): no detectable '
      'difference, shown; MNIST: worse, not shown).']
  page = write_page(tmp_path)
  assert ('### Where the model decides' in page
          and claims.findings(tmp_path)[0] in page)
  (tmp_path / 'methods_lm' / 'study.csv').unlink()
  assert claims.findings(tmp_path) == []


def write_lm_warmup_study(studies_dir, b2, epochs, loss_of_share):
  """Study 5's (beta2, length) study: warmup shares 0-25%, 5 seeds."""
  shares = (0, 0.01, 0.025, 0.05, 0.1, 0.25)
  write_lm_study(studies_dir / claims.lm_warmup_study(b2, epochs), [
      (f'w{share}_{seed}', seed,
       f'configs/lm_variant.py:lm:warmup={share}:epochs={epochs}:b2={b2}',
       loss_of_share(share) + 0.001 * seed * seed)
      for share in shares for seed in range(5)])


def test_the_language_models_warmup_is_a_table_and_heatmap_per_beta2(
    tmp_path):
  """beta2 0.95 at 2 and 4 epochs: a 10% warmup 0.02 nats lower than none
  on every seed is 'better' (bits per byte); the others match none. beta2
  0.999 not run yet is said so; the heatmap is drawn; the lowest mean is
  set beside Ma & Yarats's 40 steps."""
  for epochs in (2, 4):
    write_lm_warmup_study(tmp_path, '0.95', epochs,
                          lambda share: 1.30 - 0.02 * (share == 0.1))
  table = claims.lm_warmup_table(tmp_path, '0.95')
  lines = table.splitlines()
  assert lines[0] == ('| epochs | warmup 0% | warmup 1% | warmup 2.5% | '
                      'warmup 5% | warmup 10% | warmup 25% |')
  assert [line.split(' | ')[0] for line in lines[2:4]] == ['| 2', '| 4']
  better = f'{-0.02 / math.log(2):+.3f}'
  assert f'- 2 epochs: 10% (better, {better} bits per byte, p<0.001)' in table
  assert "in the table's family of 10), per epochs:" in table
  assert claims.lm_warmup_table(tmp_path, '0.999') == (
      'Not run yet: docs/studies/warmup_lm_b2_0.999_2ep/, '
      'docs/studies/warmup_lm_b2_0.999_4ep/.\n')
  x, xs, y, ys, cells = claims.lm_warmup_heatmap(tmp_path, '0.95')
  assert (xs, ys) == ([0.0, 1.0, 2.5, 5.0, 10.0, 25.0], [2, 4])
  assert cells[0][4][2] and not cells[0][3][2]  # 10% detectable, 5% not
  assert cells[0][4][0] == pytest.approx(1.28 + 0.006)
  assert claims.lm_best_warmups(tmp_path) == [
      'beta2 0.95, 2 epochs: lowest mean at warmup 10% of the run; the rule '
      'of thumb says 40 steps, 8% of it',
      'beta2 0.95, 4 epochs: lowest mean at warmup 10% of the run; the rule '
      'of thumb says 40 steps, 4% of it']
  page = write_page(tmp_path)
  assert table in page
  assert '](lm_warmup_b2_0.95.png)' in page
  assert (tmp_path / 'lm_warmup_b2_0.95.png').read_bytes()[:4] == b'\x89PNG'
  assert not (tmp_path / 'lm_warmup_b2_0.999.png').exists()


def test_each_warmup_is_set_against_the_rule_of_thumbs_cell(tmp_path):
  """beta2 0.95: the rule's 40 steps are the 10% cell of 500 steps and the
  5% cell of 1,000; a 25% warmup 0.02 nats lower on every seed is 'better'
  than it, the rest level (8 comparisons, one family). beta2 0.999's 2,000
  steps are longer than any warmup of a 2-epoch run: said, not tested."""
  for epochs in (2, 4):
    write_lm_warmup_study(tmp_path, '0.95', epochs,
                          lambda share: 1.30 - 0.02 * (share == 0.25))
  write_lm_warmup_study(tmp_path, '0.999', 2, lambda share: 1.30)
  table = claims.lm_rule_of_thumb_table(tmp_path)
  rows = {line.split(' | ')[0]: line.split(' | ')
          for line in table.splitlines() if line.startswith('| 0.')}
  better = f'{-0.02 / math.log(2):+.3f}'
  level = '+0.000 [+0.000, +0.000], p=1.000 (±0.000)'
  assert rows['| 0.95, 2'][1:] == [
      '40 steps, 8% of the run: the 10% cell (50 steps)', level, level, level,
      "(the rule's cell)", f'{better} [{better}, {better}], p<0.001: '
      '**better** |']
  assert rows['| 0.95, 4'][1] == '40 steps, 4% of the run: the 5% cell (50 steps)'
  assert rows['| 0.95, 4'][4] == "(the rule's cell)"
  assert rows['| 0.999, 2'][1] == (
      "2,000 steps, 400% of the run: longer than the grid's largest (125 "
      'steps), not tested')
  assert "table's family of 8):" in table
  assert (f'- β2 0.95, 4 epochs: 25% (better, {better} bits per byte, '
          'p<0.001)') in table
  page = write_page(tmp_path)
  assert '### Does the rule of thumb pick the best warmup?' in page
  assert table in page
  assert claims.lm_rule_of_thumb_table(tmp_path / 'none') == ''


def write_cooldown_sweep(sweep_dir, loss_of):
  """A budget sweep's budgets.csv with several cooldowns at budget 4:
  loss_of(shape, fraction, seed) in nats."""
  sweep_dir.mkdir(parents=True)
  with open(sweep_dir / 'budgets.csv', 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(('budget', 'seed', 'decay_shape', 'decay_fraction',
                     'final_test_accuracy', 'best_test_accuracy',
                     'final_test_loss', 'cooldown_start_step',
                     'cooldown_epochs_trained'))
    for seed in range(5):
      for fraction in (0.1, 0.2, 0.4):
        for shape in ('linear', '1-sqrt', 'cosine'):
          writer.writerow((4, seed, shape, fraction, 0.5, 0.5,
                           loss_of(shape, fraction, seed), 900, 0.4))


def test_cooldown_shapes_are_paired_from_the_published_budget_sweep(
    tmp_path):
  """Hägele et al.'s 1-sqrt against linear: rows of docs/budgets/
  wsd_cooldowns_lm/budgets.csv paired by seed at each fraction; 1-sqrt
  0.01 nats lower at 20% only is 'better' there alone."""
  claim = next(c for c in claims.CLAIMS if c.text.startswith('A 1-sqrt'))
  studies_dir = tmp_path / 'docs' / 'studies'
  studies_dir.mkdir(parents=True)
  assert [claims.check(claim, c, studies_dir)['status']
          for c in claim.comparisons] == [
              'not run yet (docs/budgets/wsd_cooldowns_lm/)'] * 3
  write_cooldown_sweep(
      tmp_path / 'docs' / 'budgets' / 'wsd_cooldowns_lm',
      lambda shape, fraction, seed: 1.30 + 0.001 * seed * seed - 0.01 * (
          shape == '1-sqrt' and fraction == 0.2))
  results = [claims.check(claim, c, studies_dir) for c in claim.comparisons]
  assert [r['n'] for r in results] == [5, 5, 5]
  assert [r['verdict'] for r in results] == [
      'no detectable difference', 'better', 'no detectable difference']
  assert results[1]['difference']['mean'] == pytest.approx(-0.01)
  assert '| A 1-sqrt cooldown beats a linear one of the same length |' in (
      claims.markdown(studies_dir))


def test_the_language_models_ranking_is_checked_at_half_and_twice_the_peak(
    tmp_path):
  """methods_lm's best other method (lowest mean in its study.json: linear
  to zero here) against warmup + cosine at x0.5 (peaks_lm_x0.5) and x1
  (methods_lm); x2 not run yet; run_lm.sh trains it with the same pick and
  the same multiples."""
  write_lm_study(tmp_path / 'methods_lm', [
      (f'{name}{seed}', seed, f'configs/{config}', loss + 0.001 * seed * seed)
      for seed in range(5) for name, config, loss in (
          ('c', 'lm.py', 1.30), ('l', 'lm_linear.py', 1.29),
          ('k', 'lm_constant.py', 1.40))])
  (tmp_path / 'methods_lm' / 'study.json').write_text(json.dumps(
      {'points': {'config=configs/lm.py': {'mean': 1.306},
                  'config=configs/lm_linear.py': {'mean': 1.296},
                  'config=configs/lm_constant.py': {'mean': 1.406}}}))
  variant = 'configs/lm_variant.py:{}:peak=0.5'
  write_lm_study(tmp_path / 'peaks_lm_x0.5', [
      (f'{name}{seed}', seed, variant.format(method), 1.35 + 0.001 * seed)
      for seed in range(5) for name, method in (('c', 'lm'),
                                                 ('l', 'lm_linear'))])
  assert claims.best_other_lm_method(tmp_path) == 'lm_linear'
  result = run_tool('tools/claims.py', f'--studies_dir={tmp_path}',
                    '--best_lm_method', config=None)
  assert result.stdout.strip() == 'lm_linear', result.stderr[-2000:]
  rows = claims.lm_peaks_table(tmp_path).splitlines()[2:]
  assert rows[0].startswith('| x0.5 | `lm_linear`: +0.000 [+0.000, +0.000], '
                            'n=5')
  difference = f'{-0.01 / math.log(2):+.3f}'
  assert rows[1].startswith(f'| x1 | `lm_linear`: {difference} [')
  assert rows[1].endswith('| better |')
  assert rows[2] == '| x2 | not run yet (docs/studies/peaks_lm_x2/) | |'
  script = (PROJECT_DIR / 'docs' / 'studies' / 'run_lm.sh').read_text()
  assert 'best=$("$python" tools/claims.py --best_lm_method)' in script
  assert sorted(re.findall(r'\npeaks ([0-9.]+)\n', script)) == sorted(
      claims.LM_PEAK_FACTORS)
  assert claims.lm_peaks_table(tmp_path / 'none').endswith(
      '| all | not run yet (docs/studies/methods_lm/) | |\n')


def test_a_constant_rate_is_checked_against_cosine_at_twice_the_peak(
    tmp_path):
  """Constant against warmup + cosine at x1 (methods_lm: lower) and x2
  (peaks_lm_x2: higher), one family of two; run_lm.sh trains the constant
  rate in the x2 study, at claims.LM_CONSTANT_PEAK_FACTORS."""
  write_lm_study(tmp_path / 'methods_lm', [
      (f'{name}{seed}', seed, f'configs/{config}', loss + 0.001 * seed * seed)
      for seed in range(5) for name, config, loss in (
          ('c', 'lm.py', 1.30), ('k', 'lm_constant.py', 1.29))])
  variant = 'configs/lm_variant.py:{}:peak=2'
  write_lm_study(tmp_path / 'peaks_lm_x2', [
      (f'{name}{seed}', seed, variant.format(method), loss + 0.001 * seed)
      for seed in range(5) for name, method, loss in (
          ('c', 'lm', 1.25), ('w', 'lm_wsd', 1.24), ('k', 'lm_constant',
                                                     1.27))])
  assert claims.LM_CONSTANT_PEAK_FACTORS == ('2',)
  lines = claims.lm_peaks_table(tmp_path, 'lm_constant',
                                claims.LM_CONSTANT_PEAK_FACTORS).splitlines()
  assert lines[0].startswith('| peak (x 2e-3) | lm_constant vs ')
  x1, x2 = lines[2:]
  assert x1.startswith(f'| x1 | `lm_constant`: {-0.01 / math.log(2):+.3f} [')
  assert x1.endswith('| better |')
  assert x2.startswith(f'| x2 | `lm_constant`: {0.02 / math.log(2):+.3f} [')
  assert x2.endswith('| worse |')
  script = (PROJECT_DIR / 'docs' / 'studies' / 'run_lm.sh').read_text()
  assert ('  if [[ $peak == 2 && $best != lm_constant ]]; then\n'
          '    constant=("lm_constant:peak=$peak")') in script


def test_collect_brings_back_only_what_is_not_here(tmp_path):
  """docs/studies/background.sh collect, in a copy of the layout: a member
  and a published study new in the frozen clone are copied; a file this
  checkout has is left as it is."""
  checkout, frozen = tmp_path / 'checkout', tmp_path / 'frozen' / 'abc1234'
  (checkout / 'docs' / 'studies').mkdir(parents=True)
  script = checkout / 'docs' / 'studies' / 'background.sh'
  script.write_bytes(
      (PROJECT_DIR / 'docs' / 'studies' / 'background.sh').read_bytes())
  for root, text in ((checkout, 'mine'), (frozen, 'theirs')):
    (root / 'docs' / 'studies' / 'x' / 'members' / 'm0').mkdir(parents=True)
    (root / 'docs' / 'studies' / 'x' / 'members' / 'm0' / 'a.csv').write_text(
        text)
  (frozen / 'docs' / 'studies' / 'x' / 'members' / 'm1').mkdir()
  (frozen / 'docs' / 'studies' / 'x' / 'members' / 'm1' / 'a.csv').write_text(
      'new')
  (frozen / 'docs' / 'budgets' / 'lm').mkdir(parents=True)
  (frozen / 'docs' / 'budgets' / 'lm' / 'budgets.json').write_text('{}')
  result = subprocess.run(
      ['bash', str(script), 'collect'], capture_output=True, text=True,
      env={**os.environ, 'FROZEN_ROOT': str(tmp_path / 'frozen')}, check=True)
  members = checkout / 'docs' / 'studies' / 'x' / 'members'
  assert (members / 'm0' / 'a.csv').read_text() == 'mine'
  assert (members / 'm1' / 'a.csv').read_text() == 'new'
  assert (checkout / 'docs' / 'budgets' / 'lm' / 'budgets.json').is_file()
  assert f'Collected from {frozen}/' in result.stdout


def test_start_returns_at_once_and_refuses_a_second_chain(tmp_path):
  """docs/studies/background.sh start, in a copy of the layout whose chain
  sleeps: start returns at once even with its output piped (it used to keep
  the pipe open in the chain, so `start | tail` waited for the chain to
  end), and a second start into the same studies folder is refused."""
  checkout, out = tmp_path / 'checkout', tmp_path / 'studies'
  (checkout / 'docs' / 'studies').mkdir(parents=True)
  (checkout / 'docs' / 'laws').mkdir()
  (checkout / '.venv').mkdir()
  (checkout / 'docs' / 'studies' / 'background.sh').write_bytes(
      (PROJECT_DIR / 'docs' / 'studies' / 'background.sh').read_bytes())
  (checkout / 'docs' / 'studies' / 'run_lm.sh').write_text(
      'sleep 60 & echo $! > "$2/sleep.pid"; echo $$ > "$2/chain.pid"; wait\n')
  (checkout / 'docs' / 'laws' / 'run_benchmark.sh').write_text('true\n')
  git = ['git', '-c', 'user.name=t', '-c', 'user.email=t@t']
  subprocess.run(['git', 'init', '-q'], cwd=checkout, check=True)
  subprocess.run(['git', 'add', 'docs'], cwd=checkout, check=True)
  subprocess.run(git + ['commit', '-q', '-m', 'layout'], cwd=checkout,
                 check=True)
  env = {**os.environ, 'FROZEN_ROOT': str(tmp_path / 'frozen')}
  start = ['bash', 'docs/studies/background.sh', 'start', str(tmp_path),
           str(tmp_path), str(out)]
  try:
    first = subprocess.run(start, cwd=checkout, capture_output=True,
                           text=True, env=env, check=True, timeout=20)
    assert first.stdout.startswith(f'Started from {tmp_path}/frozen/')
    for _ in range(100):
      if (out / 'chain.pid').is_file():
        break
      time.sleep(0.1)
    second = subprocess.run(start, cwd=checkout, capture_output=True,
                            text=True, env=env, timeout=20)
    assert second.returncode == 1
    assert f'a study chain into {out} is already running' in second.stderr
  finally:
    for pid_file in ('chain.pid', 'sleep.pid'):
      if (out / pid_file).is_file():
        os.kill(int((out / pid_file).read_text()), signal.SIGTERM)


def test_cosines_own_peaks_are_paired_against_the_default_one(tmp_path):
  """Warmup + cosine to zero at x1 (methods_lm), x2 (0.1 nats lower on
  every seed: better) and x8 (3 of 5 seeds diverged: counted, not
  averaged); x0.5 and x4 not run yet; the x2 and x8 comparisons one
  family."""
  write_lm_study(tmp_path / 'methods_lm', [
      (f'c{seed}', seed, 'configs/lm.py', 1.30 + 0.001 * seed * seed)
      for seed in range(5)])
  write_lm_study(tmp_path / 'peaks_lm_x2', [
      (f'c{seed}', seed, 'configs/lm_variant.py:lm:peak=2',
       1.20 + 0.001 * seed * seed) for seed in range(5)] + [
           (f'w{seed}', seed, 'configs/lm_variant.py:lm_wsd:peak=2', 1.0)
           for seed in range(5)])
  (tmp_path / 'large_peaks_lm_x8').mkdir()
  with open(tmp_path / 'large_peaks_lm_x8' / 'study.csv', 'w',
            newline='') as f:
    writer = csv.writer(f)
    writer.writerow(('member', 'seed', 'config', 'final_test_loss',
                     'finished', 'diverged'))
    for seed in range(5):
      writer.writerow((f'c{seed}', seed, 'configs/lm_variant.py:lm:peak=8',
                       '' if seed < 3 else 1.25 + 0.001 * seed, 1,
                       int(seed < 3)))
  rows = claims.lm_cosine_peaks_table(tmp_path).splitlines()
  assert rows[0].startswith('| peak (x 2e-3) | warmup + cosine to '
                            'zero: final validation loss (bits per byte)')
  assert rows[2] == ('| x0.5 (0.001) | not run yet '
                     '(docs/studies/peaks_lm_x0.5/) | |')
  assert rows[3].startswith(f'| x1 (0.002) | {1.306 / math.log(2):.3f} [')
  assert rows[3].endswith('| (reference) |')
  assert rows[4].startswith(f'| x2 (0.004) | {1.206 / math.log(2):.3f} [')
  assert f'| {-0.1 / math.log(2):+.3f} [' in rows[4]
  assert rows[4].endswith('**better** |')
  assert rows[5] == ('| x4 (0.008) | not run yet '
                     '(docs/studies/large_peaks_lm_x4/) | |')
  assert '(2 of 5 trained)' in rows[6]
  assert 'trained 2 vs 5 of 5' in rows[6]
  assert claims.LM_COSINE_PEAK_STUDIES['1'] == 'methods_lm'


def write_cosine_peaks(folder, losses, diverged=()):
  """Warmup + cosine to zero at each multiple in `losses` (nats, 5 seeds,
  the seeds in `diverged` of a multiple did not train) in its peak study."""
  for factor, loss in losses.items():
    rows = [(f'c{seed}', seed, claims.lm_config('lm', factor),
             '' if (factor, seed) in diverged else loss + 0.001 * seed * seed,
             1, int((factor, seed) in diverged)) for seed in range(5)]
    folder_of = folder / claims.LM_COSINE_PEAK_STUDIES[factor]
    folder_of.mkdir(parents=True)
    with open(folder_of / 'study.csv', 'w', newline='') as f:
      writer = csv.writer(f)
      writer.writerow(('member', 'seed', 'config', 'final_test_loss',
                       'finished', 'diverged'))
      writer.writerows(rows)


def test_the_lm_studies_peak_is_cosines_lowest_where_every_seed_trained(
    tmp_path):
  """x4 has the lowest mean of the seeds that trained, but one of its
  seeds diverged: x2, the lowest of the rest, is the studies' peak; with
  one peak study unpublished there is no peak yet, in one line."""
  losses = {'0.5': 1.40, '1': 1.30, '2': 1.20, '4': 1.10, '8': 1.50}
  write_cosine_peaks(tmp_path, losses, diverged={('4', 3)})
  assert claims.lm_study_peak(tmp_path) == '2'
  result = run_tool('tools/claims.py', f'--studies_dir={tmp_path}',
                    '--lm_study_peak', config=None)
  assert result.stdout.strip() == '2', result.stderr[-2000:]
  shutil.rmtree(tmp_path / 'large_peaks_lm_x8')
  with pytest.raises(errors.WorkdirError, match=r'^docs/studies/'
                     r'large_peaks_lm_x8/ is not published yet'):
    claims.lm_study_peak(tmp_path)


@pytest.mark.parametrize('peak', ['1', '4', '0.5'])
def test_run_lm_writes_the_studies_configs_as_the_claims_read_them(peak):
  """run_lm.sh's at_peak and claims.lm_config: the same config for the
  same method, changes and peak (the claims match configs as text)."""
  script = (PROJECT_DIR / 'docs' / 'studies' / 'run_lm.sh').read_text()
  [function] = re.findall(r'\nat_peak\(\) \{\n.*?\n\}\n', script, re.S)
  specs = ['lm', 'lm_linear', 'lm_cosine_10:epochs=16',
           'lm:warmup=0.025:epochs=2:b2=0.999']
  written = subprocess.run(
      ['bash', '-c', function + f'peak={peak}\nat_peak "$@"', 'at_peak',
       *specs], capture_output=True, text=True, check=True).stdout.strip()
  method_changes = [spec.partition(':')[::2] for spec in specs]
  assert written.split(',') == [claims.lm_config(m, peak, c)
                                for m, c in method_changes]
  assert 'peak=$("$python" tools/claims.py --lm_study_peak)' in script


def test_straight_to_zero_is_read_at_the_peak_its_studies_trained_at(
    tmp_path):
  """Bergsma et al.'s rows at x4 the reference peak: linear to zero 0.01
  nats below cosine to 10% on every seed, at both lengths, is 'better',
  and the table says at which peak."""
  [claim] = [c for c in claims.CLAIMS if 'cosine to 10%' in c.text]
  for study, changes in (('straight_to_zero_lm', ''),
                         ('straight_to_zero_lm_4x', 'epochs=16')):
    write_lm_study(tmp_path / study, [
        (f'{name}{seed}', seed, claims.lm_config(method, '4', changes),
         loss + 0.001 * seed * seed) for seed in range(5)
        for name, method, loss in (('c', 'lm_cosine_10', 1.30),
                                   ('l', 'lm_linear', 1.29))])
  for comparison in claim.comparisons:
    assert claims.check(claim, comparison, tmp_path)['verdict'] == 'better'
  rows = [line for line in claims.markdown(tmp_path).splitlines()
          if 'cosine to 10%' in line.split('|')[1]]
  assert len(rows) == 2
  assert all(', at x4 the reference peak 2e-3 |' in row for row in rows), rows
  assert claims.config_at_reference_peak(
      'configs/lm_variant.py:lm_linear:peak=4') == 'configs/lm_linear.py'


def test_one_datasets_rows_with_one_outcome_are_said_once(tmp_path):
  """Goyal et al.'s claim: warmup makes no detectable difference on MNIST
  at 0.1, 0.4 and 0.8, and is better on the language model at x4: the
  finding says MNIST's outcome once, with its count."""
  folder = tmp_path / 'warmup_peaks_mnist'
  folder.mkdir()
  with open(folder / 'study.csv', 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(('member', 'seed', 'warmup_epochs', 'learning_rate',
                     'final_test_accuracy', 'finished', 'diverged'))
    for rate in ('0.1', '0.4', '0.8'):
      for warmup in ('1.0', '0.0'):
        writer.writerows(
            (f'{rate}_{warmup}_{seed}', seed, warmup, rate,
             0.99 + (0.0001 * (-1) ** seed if warmup == '1.0' else 0.0),
             1, 0) for seed in range(5))
  write_lm_study(tmp_path / 'large_peaks_lm_x4', [
      (f'{name}{seed}', seed, config, loss + 0.001 * seed * seed)
      for seed in range(5) for name, config, loss in (
          ('w', 'configs/lm_variant.py:lm:peak=4', 1.30),
          ('n', 'configs/lm_variant.py:lm:peak=4:warmup=0', 2.0))])
  assert claims.findings(tmp_path) == [
      '"Warmup matters at large peak rates" holds here for the language '
      'model and not the CNN (SOTU (language model): better; MNIST: no '
      'detectable difference, in 3 comparisons).']


def write_straight_to_zero(folder, study, changes, effect):
  """Bergsma et al.'s study at x2 the reference peak: linear to zero
  `effect(seed)` nats from cosine to 10%."""
  write_lm_study(folder / study, [
      (f'{name}{seed}', seed, claims.lm_config(method, '2', changes),
       1.3 + 0.01 * seed + offset)
      for seed in range(5) for name, method, offset in (
          ('c', 'lm_cosine_10', 0.0), ('l', 'lm_linear', effect(seed)))])


def test_a_claim_that_its_effect_grows_is_tested_for_the_growth(tmp_path):
  """Linear to zero's gain over cosine to 10% is about 0 at the default
  length and 0.007 nats at 4x the tokens: the per-seed change is tested
  (not the two verdicts side by side), and an unchanged gain is 'no
  detectable growth'."""
  [line] = claims.growth(tmp_path)
  assert line.endswith(': not run yet.')
  write_straight_to_zero(tmp_path, 'straight_to_zero_lm', '',
                         lambda seed: 0.001 * (-1) ** seed)
  write_straight_to_zero(tmp_path, 'straight_to_zero_lm_4x', 'epochs=16',
                         lambda seed: -0.01 + 0.0005 * seed * seed)
  [line] = claims.growth(tmp_path)
  # -0.0072 nats on average is -0.010 bits per byte; from +0.0002 nats.
  assert re.search(r'with 4x the tokens minus the difference before, per '
                   r'seed: -0\.010 \[-0\.0\d\d, -0\.00\d\] bits per byte, n=5, '
                   r'p=0\.0\d+: \*\*it grows\*\* \(from \+0\.000 to -0\.010 '
                   r'bits per byte\)\.$', line), line
  shutil.rmtree(tmp_path / 'straight_to_zero_lm_4x')
  write_straight_to_zero(tmp_path, 'straight_to_zero_lm_4x', 'epochs=16',
                         lambda seed: 0.001 * (-1) ** (seed + seed // 2))
  [line] = claims.growth(tmp_path)
  assert ': no detectable growth (could detect ±0.0' in line, line


def write_optimized_study(studies_dir, task, study, own, records_of,
                          at_chance=(), chance=3.0) -> dict:
  """A published optimized-schedule study (claims.OPTIMIZED_STUDIES) with
  carried per-step records. `own`: {point: the task's own final value}
  (the law's point is claims.laws.optimized_point(task), the others are
  hand-made names); `records_of`: {point: the benchmark schedule whose
  records its runs get}; the law's seeds in `at_chance` end at `chance`
  on the task's own metric. Returns each point's training-loss levels."""
  import prediction  # pylint: disable=g-import-not-at-top
  # pylint: disable=g-import-not-at-top
  from test_laws_benchmark_tool import expected
  from test_predict import write_run
  # pylint: enable=g-import-not-at-top
  optimized = claims.laws.optimized_point(task)
  jitter = (0.003, -0.003, 0.002, -0.002, 0.0)
  members, levels = [], {}
  records = studies_dir / 'progress' / study / 'members'
  for i, (point, value) in enumerate(own.items()):
    config = (point if point == optimized
              else claims.laws.hand_made_point(task, point))
    for seed in range(5):
      member = f'm{i}_seed{seed}'
      run_config = expected(task, records_of[point])
      run_config.seed = seed
      write_run(records / member, noise=0.003, config=run_config,
                noise_seed=10 * i + seed)
      levels.setdefault(point, []).append(
          prediction.measured_final(prediction.load_run(records / member)))
      if point == optimized:
        value = chance if seed in at_chance else value + jitter[seed]
      members.append((member, seed, config, value))
      value = own[point]
  metric = next(m for _, t, _, m in claims.OPTIMIZED_STUDIES if t == task)
  write_lm_study(studies_dir / study, members, metric.final_key)
  return levels


def write_optimized_lm_study(studies_dir, at_chance=(),
                             law_validation=1.2005) -> dict:
  """laws_optimized_lm: on the validation loss WSD has the best mean of
  the three hand-made schedules and the law's schedule is within the noise
  of it; the law's runs get the records of cosine at twice the length,
  which ends far below linear to zero, the best of the three by training
  loss. The law's seeds in `at_chance` end at chance (3 nats, above 4 bits
  per byte). Returns each point's training-loss levels."""
  task = 'language_model'
  optimized = claims.laws.optimized_point(task)
  return write_optimized_study(
      studies_dir, task, 'laws_optimized_lm',
      {optimized: law_validation, 'cosine_to_zero': 1.210,
       'wsd_1sqrt_20': 1.201, 'linear_to_zero': 1.205},
      {optimized: 'cosine_2x', 'cosine_to_zero': 'cosine_to_zero',
       'wsd_1sqrt_20': 'wsd_1sqrt_20', 'linear_to_zero': 'linear_to_zero'},
      at_chance)


def _lm_rows(table) -> dict:
  return {line.split(' | ')[1]: line for line in table.splitlines()[2:]
          if 'SOTU' in line}


BITS_ROW = 'final validation loss (bits per byte, lower is better)'
LEVEL_ROW = 'final training-loss level (nats, lower is better)'


def test_the_laws_schedule_is_paired_against_the_best_hand_made_one(
    tmp_path):
  """The best hand-made schedule is chosen per measure: WSD on the
  validation loss (no detectable gain), linear to zero on the training
  level read from the carried records (a gain). Fashion-MNIST's study is
  not run yet."""
  levels = write_optimized_lm_study(tmp_path)
  table = claims.optimized_table(tmp_path)
  rows = _lm_rows(table)
  bits = rows[BITS_ROW]
  assert bits.startswith('| SOTU language model (`laws_optimized_lm`) |')
  assert ' | wsd_1sqrt_20: 1.733 [' in bits  # 1.201 nats
  assert 'no detectable gain (could detect ±' in bits
  level = rows[LEVEL_ROW]
  optimized = claims.laws.optimized_point('language_model')
  assert f' | {sum(levels[optimized]) / 5:.4f} [' in level
  best = sum(levels['linear_to_zero']) / 5
  assert f' | linear_to_zero: {best:.4f} [' in level
  assert level.endswith(' nats, p<0.001 | **gain** |')
  fashion = [line for line in table.splitlines() if 'Fashion-MNIST' in line]
  assert len(fashion) == 2 and all(
      'not run yet (docs/studies/laws_optimized_fashion/)' in line
      for line in fashion)


def test_the_fashion_mnist_law_schedule_reads_test_accuracy_higher_is_better(
    tmp_path):
  """Fashion-MNIST's row: the best hand-made schedule by test accuracy is
  the highest (linear to zero), and the law's schedule 0.5 points above it
  on every seed is a gain; on the training level the best is the lowest
  (a decayed schedule's records) and the law's runs, with a constant
  rate's records, are worse. Both studies in: the family is the four."""
  task = 'fashion_mnist'
  optimized = claims.laws.optimized_point(task)
  levels = write_optimized_study(
      tmp_path, task, 'laws_optimized_fashion',
      {optimized: 0.906, 'cosine_to_zero': 0.899, 'wsd_1sqrt_20': 0.898,
       'linear_to_zero': 0.901},
      {optimized: 'constant', 'cosine_to_zero': 'cosine_to_zero',
       'wsd_1sqrt_20': 'wsd_1sqrt_20', 'linear_to_zero': 'linear_to_zero'})
  write_optimized_lm_study(tmp_path)
  rows = {line.split(' | ')[1]: line
          for line in claims.optimized_table(tmp_path).splitlines()[2:]
          if 'Fashion-MNIST' in line}
  accuracy = rows['final test accuracy (%, higher is better)']
  assert accuracy.startswith(
      '| Fashion-MNIST (`laws_optimized_fashion`) | final test accuracy')
  assert ' | linear_to_zero: 90.10% [90.10, 90.10] | +0.50 [' in accuracy
  assert accuracy.endswith(' | **gain** |')
  level = rows[LEVEL_ROW]
  best = min(levels, key=lambda point: sum(levels[point]))
  assert best != optimized and max(levels[best]) < min(levels[optimized])
  assert f' | {best}: {sum(levels[best]) / 5:.4f} [' in level
  assert level.endswith(' | **worse** than the best hand-made one |')


def test_the_laws_table_is_one_family_of_four_before_every_study_is_in(
    tmp_path):
  """Fashion-MNIST's study not run yet: the LM's two comparisons are still
  Holm-adjusted as two of the four planned, never as a family of two."""
  write_optimized_lm_study(tmp_path, law_validation=1.2035)
  jitter = (0.003, -0.003, 0.002, -0.002, 0.0)  # against WSD's 1.201
  raw = scipy.stats.ttest_1samp([0.0025 + j for j in jitter], 0).pvalue
  # The training level's p is the smaller (a gain, p<0.001): times 4; the
  # validation loss's second: times 3 (times 1 in a family of two).
  assert 0.05 < raw < 0.2
  row = _lm_rows(claims.optimized_table(tmp_path))[BITS_ROW]
  assert f' bits per byte, {stats.p_text(min(1.0, 3 * raw))} |' in row


def test_a_law_run_at_chance_is_counted_on_both_measures(tmp_path):
  """A run of the law's schedule that ends at chance on the validation loss
  is counted, not averaged, on the training level too."""
  write_optimized_lm_study(tmp_path, at_chance=(4,))
  rows = _lm_rows(claims.optimized_table(tmp_path))
  for row in (BITS_ROW, LEVEL_ROW):
    assert '(4 of 5 trained)' in rows[row]
    assert 'trained 4 vs 5 of 5, p=' in rows[row]
    assert rows[row].endswith(' | no detectable gain |')


def test_a_law_schedule_worse_than_the_best_hand_made_one_is_said_so(
    tmp_path):
  write_optimized_lm_study(tmp_path, law_validation=1.23)
  rows = _lm_rows(claims.optimized_table(tmp_path))
  assert rows[BITS_ROW].endswith(' | **worse** than the best hand-made one |')
  assert rows[LEVEL_ROW].endswith(' | **gain** |')


def test_the_laws_table_reads_the_points_the_benchmark_runner_trains():
  """docs/laws/run_benchmark.sh's optimized() studies: their names, tasks
  and --vary points are the ones claims.laws pairs."""
  script = (PROJECT_DIR / 'docs' / 'laws' / 'run_benchmark.sh').read_text()
  task = '${task}'
  assert f'found="{claims.laws.optimized_point(task)}"' in script
  assert 'local b="configs/laws_benchmark.py:$task"' in script
  assert (claims.laws.hand_made_point('$task', 'x')
          == 'configs/laws_benchmark.py:$task:x')
  assert ('--vary=config="$found,' + ','.join(
      f'$b:{name}' for name in claims.HAND_MADE) + '"') in script
  for _, benchmark_task, study, _ in claims.OPTIMIZED_STUDIES:
    assert re.search(rf'^optimized {study} \S+ {benchmark_task} ', script,
                     re.M), study
