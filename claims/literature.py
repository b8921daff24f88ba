"""The claims from the literature (CLAIMS: what their authors found and
where, and the comparisons that test each here) and the claims table of
docs/claims.md with its findings: where a claim holds for one model and
not the other.
"""

import collections

from claims.pairing import adjust_family
from claims.pairing import check
from claims.pairing import Claim
from claims.pairing import claim_cell
from claims.pairing import Comparison
from claims.pairing import COSINE
from claims.pairing import describe
from claims.pairing import detectable_text
from claims.pairing import higher_is_better
from claims.pairing import lm_config
from claims.pairing import peaks_of
from claims.pairing import point_and_reference
from claims.pairing import with_verdict
from machinery import stats
import tasks


def _methods(config_file, metric='final_test_accuracy'):
  """The claim's method against warmup + cosine in the two methods studies."""
  targets = {'methods_mnist': 0.99, 'methods_fashion': 0.90}
  return tuple(
      Comparison(dataset, study, {'config': f'configs/{config_file}'}, COSINE,
                 targets[study] if metric == 'epochs_to_target' else 0.0)
      for dataset, study in (('MNIST', 'methods_mnist'),
                             ('Fashion-MNIST', 'methods_fashion')))


LM = 'SOTU (language model)'


def _lm(point_config, study='methods_lm', reference='configs/lm.py'):
  """A language-model comparison: `point_config` against `reference`
  (warmup + cosine to zero) in `study`, in bits per byte."""
  return Comparison(LM, study, {'config': point_config},
                    {'config': reference}, metric=tasks.BITS_PER_BYTE)


def _lm_at_study_peak(dataset, study, changes=''):
  """Linear to zero against cosine to 10% of the peak (with
  configs/lm_variant.py's `changes`) in `study`, trained at the peak
  run_lm.sh chose for it (claims.lm_study_peak)."""
  return Comparison(dataset, study,
                    {'config': lm_config('lm_linear', changes=changes)},
                    {'config': lm_config('lm_cosine_10', changes=changes)},
                    metric=tasks.BITS_PER_BYTE, at_study_peak=True)


def _lm_warmup_at(peak):
  """With the default warmup (10%) against none, at `peak` x the peak."""
  variant = f'configs/lm_variant.py:lm:peak={peak}'
  return Comparison(LM, f'large_peaks_lm_x{peak}', {'config': variant},
                    {'config': f'{variant}:warmup=0'},
                    metric=tasks.BITS_PER_BYTE)


def _warmup_at(peak):
  return Comparison('MNIST', 'warmup_peaks_mnist',
                    {'warmup_epochs': '1.0', 'learning_rate': str(peak)},
                    {'warmup_epochs': '0.0', 'learning_rate': str(peak)})


def _cooldown_shapes(fraction, budget=4, sweep='wsd_cooldowns_lm'):
  """1-sqrt against linear, cooldowns of the same `fraction` branched from
  one WSD trunk per seed (the language model's study 4), in bits per
  byte."""
  point = {'budget': str(budget), 'decay_fraction': str(fraction)}
  return Comparison(f'{LM}, {100 * fraction:g}% cooldown', sweep,
                    {**point, 'decay_shape': '1-sqrt'},
                    {**point, 'decay_shape': 'linear'},
                    metric=tasks.BITS_PER_BYTE, budgets=True)


CLAIMS = (
    Claim('WSD with a short 1-sqrt cooldown matches cosine',
          'Hägele et al. 2024, arXiv 2405.18392 (language-model '
          'pretraining, AdamW)',
          'final_test_accuracy',
          _methods('wsd.py') + (_lm('configs/lm_wsd.py'),),
          kind='equivalence'),
    Claim('A 1-sqrt cooldown beats a linear one of the same length',
          'Hägele et al. 2024, arXiv 2405.18392 (language-model '
          'pretraining, AdamW; cooldowns of the same length)',
          'final_test_accuracy',
          tuple(_cooldown_shapes(f) for f in (0.1, 0.2, 0.4))),
    Claim('Linear decay to zero is at least as good as cosine',
          'Bergsma et al. 2025, arXiv 2502.15938 (language models, '
          'AdamW)', 'final_test_accuracy',
          _methods('linear.py') + (_lm('configs/lm_linear.py'),),
          kind='noninferiority'),
    Claim('Linear decay to zero beats cosine to 10% of the peak, more so '
          'with more tokens per parameter',
          'Bergsma et al. 2025, arXiv 2502.15938 (language models, AdamW, '
          'the common cosine to 10%)', 'final_test_accuracy',
          (_lm_at_study_peak(LM, 'straight_to_zero_lm'),
           _lm_at_study_peak(LM + ', 4x the tokens', 'straight_to_zero_lm_4x',
                             'epochs=16')), grows='with 4x the tokens'),
    Claim('Schedule-free SGD matches a tuned decaying schedule',
          'Defazio et al. 2024, arXiv 2405.15682 (image and language '
          'benchmarks, the decaying schedule tuned)', 'final_test_accuracy',
          _methods('schedule_free.py') + (
              _lm('configs/lm_schedule_free.py'),), kind='equivalence'),
    Claim('Warm restarts reach a target accuracy earlier',
          'Loshchilov & Hutter 2017, SGDR, ICLR (WRN on CIFAR-10/100)',
          'epochs_to_target', _methods('sgdr.py', 'epochs_to_target'),
          higher_is_better=False),
    Claim('Warmup matters at large peak rates',
          'Goyal et al. 2017, arXiv 1706.02677 (ResNet-50 on '
          'ImageNet, batch 8k, linear scaling of the peak)',
          'final_test_accuracy',
          (_warmup_at(0.1), _warmup_at(0.4), _warmup_at(0.8),
           _lm_warmup_at(4), _lm_warmup_at(8))),
)


def _checked_rows(studies_dir) -> list:
  """(claim, comparison, result) of every row of the claims table, its
  difference tests one family, its margin tests another."""
  rows = [(claim, comparison, check(claim, comparison, studies_dir))
          for claim in CLAIMS for comparison in claim.comparisons]
  adjust_family([result for _, _, result in rows])
  return [(claim, comparison,
           with_verdict(claim, result, comparison)
           if result['status'] == 'checked' else result)
          for claim, comparison, result in rows]


def markdown(studies_dir) -> str:
  """The claims table, from the published studies in `studies_dir`: its
  difference tests one family, its margin tests another."""
  lines = ['| claim | source and setting | dataset | compared here (paired by '
           'seed) | difference [95% CI], n, Holm-adjusted p | our verdict |',
           '|---|---|---|---|---|---|']
  for claim, comparison, result in _checked_rows(studies_dir):
    numbers, verdict = claim_cell(claim, result, comparison)
    measured = (f'final validation loss ({comparison.metric.unit})'
                if comparison.metric is not None else claim.metric)
    peak = (f', at x{" and x".join(peaks_of(studies_dir, comparison))} '
            'the reference peak 2e-3' if comparison.at_study_peak
            and result['status'] == 'checked' else '')
    what = (f'`{describe(comparison.point)}` vs '
            f'`{describe(comparison.reference)}`, {measured}{peak}'
            + (f' ({100 * comparison.target:g}%)'
               if claim.metric == 'epochs_to_target' else ''))
    lines.append(f'| {claim.text} | {claim.source} | {comparison.dataset} '
                 f'| {what} | {numbers} | {verdict} |')
  return '\n'.join(lines) + '\n'


def _shown(result) -> bool:
  """Whether a checked row supports its claim: the margin test shown for
  "matches" and "at least as good", 'better' for a claim that one setting
  is better."""
  if 'margin_test' in result:
    return stats.shown(result['margin_test'])
  return result['verdict'] == 'better'


def _outcome_text(comparison, result) -> str:
  """'MNIST: no detectable difference, not shown' for a finding."""
  margin = result.get('margin_test')
  shown = ('' if margin is None else
           ', shown' if stats.shown(margin) else ', not shown')
  return f'{comparison.dataset}: {result["verdict"]}{shown}'


def findings(studies_dir) -> list[str]:
  """One sentence per claim that the published studies support for the
  language model and for neither image dataset, or the reverse: where the
  regime decides."""
  by_claim = {}
  for claim, comparison, result in _checked_rows(studies_dir):
    if result['status'] == 'checked':
      language = comparison.metric is tasks.BITS_PER_BYTE
      by_claim.setdefault(claim.text, {}).setdefault(language, []).append(
          (comparison, result))
  sentences = []
  for text, groups in by_claim.items():
    if len(groups) < 2:
      continue  # one model only: nothing to contrast
    lm_shown = any(_shown(r) for _, r in groups[True])
    image_shown = any(_shown(r) for _, r in groups[False])
    if lm_shown == image_shown:
      continue
    where = ('the language model and not the CNN' if lm_shown else
             'the CNN and not the language model')
    # Rows of one dataset with one outcome (the same claim at several
    # peaks) are said once, with their count.
    counts = collections.Counter(_outcome_text(c, r)
                                 for c, r in groups[True] + groups[False])
    outcomes = '; '.join(f'{o}, in {n} comparisons' if n > 1 else o
                         for o, n in counts.items())
    sentences.append(f'"{text}" holds here for {where} ({outcomes}).')
  return sentences


def _effects(claim, comparison, studies_dir) -> dict:
  """{seed: point - reference} of one comparison, over the seeds where
  both trained (the recorded unit: nats for the language model)."""
  mine, theirs = point_and_reference(claim, comparison,
                                     comparison.rows(studies_dir))
  return {seed: mine[seed] - theirs[seed] for seed in set(mine) & set(theirs)
          if mine[seed] is not None and theirs[seed] is not None}


def growth(studies_dir) -> list[str]:
  """One sentence per claim whose effect is said to grow (Bergsma et al.'s
  "more so with more tokens"): its effect in the last comparison minus in
  the first, paired by seed (the same seeds, so the same initial
  parameters, in both studies), a t-test of the growth itself. Each is a
  family of one: the one question the claim's second half asks."""
  sentences = []
  for claim in CLAIMS:
    if not claim.grows:
      continue
    first, last = claim.comparisons[0], claim.comparisons[-1]
    if not all(c.rows_path(studies_dir).is_file() for c in (first, last)):
      sentences.append(f'"{claim.text}": not run yet.')
      continue
    before, after = (_effects(claim, c, studies_dir) for c in (first, last))
    seeds = sorted(set(before) & set(after))
    if len(seeds) < 2:
      sentences.append(f'"{claim.text}": {len(seeds)} paired seed(s), no '
                       'test.')
      continue
    result = stats.paired_difference([after[s] for s in seeds],
                                     [before[s] for s in seeds])
    metric = last.metric or tasks.TEST_ACCURACY
    verdict = stats.verdict(result, higher_is_better(claim, last))
    verdict = {'better': '**it grows**', 'worse': '**it shrinks**'}.get(
        verdict, f'no detectable growth '
        f'({detectable_text(result, metric=metric)})')
    unit = metric.difference_unit
    interval = metric.difference_interval(result.mean, result.ci95_low,
                                          result.ci95_high)
    sentences.append(
        f'"{claim.text}": the difference {claim.grows} minus the difference '
        f'before, per seed: {interval} {unit}, n={result.n}, '
        f'{stats.p_text(result.p_value)}: {verdict} (from '
        f'{metric.difference(_mean(before, seeds))} to '
        f'{metric.difference(_mean(after, seeds))} {unit}).')
  return sentences


def _mean(values: dict, seeds) -> float:
  return sum(values[s] for s in seeds) / len(seeds)


def untestable() -> list[str]:
  """What the literature claims that these studies cannot test."""
  return [
      'Effects at the scale the papers measured (language models of '
      '10^8-10^9 parameters, ImageNet at batch 8k): a CNN on 28x28 images '
      'trained for 10 epochs on 2 CPU cores is not that regime, and the '
      "language model's rows test the claims in their own kind of model "
      '(a transformer with AdamW) at 0.9M parameters and 4M tokens, not at '
      'their scale.',
      "Goyal et al.'s linear scaling rule itself (peak proportional to the "
      "batch size): each task's studies keep its batch (128 images for "
      'the CNN, 32 windows of 128 bytes for the language model).',
  ]
