"""Claims from the literature, checked against the published studies.

  python tools/claims.py [--studies_dir=docs/studies] [--output=docs/claims.md]
  python tools/claims.py --best_method        # for run_all.sh's step 2b
  python tools/claims.py --peaks_of=configs/wsd.py

Reads each published study's committed study.csv and study_epochs.csv (see
claims.py for the claims and the pairs of grid points that test them) and
writes the table: the claim, its source and setting, and per dataset our
paired 95% interval and verdict, or "not run yet". Trains nothing.

--best_method prints the config file of the best method other than warmup +
cosine in the published Fashion-MNIST methods study, and --peaks_of=FILE
the rates x0.5 and x2 that file's peak, comma-separated: the grid of
docs/studies/run_all.sh's step 2b (does the ranking hold at other peaks?).
--best_lm_method prints the config name of methods_lm's best other method
(lowest mean final bits per byte), for docs/studies/run_lm.sh's study 2,
and --lm_study_peak the multiple of the reference peak 2e-3 (configs/lm.py's
REFERENCE_PEAK) at which its studies 3, 5 and 7 train (where warmup + cosine to zero ended lowest).
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags

import claims
from machinery import cli
from machinery import files
from machinery import plots

FLAGS = flags.FLAGS
flags.DEFINE_string('studies_dir', 'docs/studies', 'Published studies.')
flags.DEFINE_string('output', 'docs/claims.md', 'The page to write.')
flags.DEFINE_bool('best_method', False, 'Only print the best method other '
                  'than warmup + cosine in the Fashion-MNIST methods study.')
flags.DEFINE_bool('best_lm_method', False, 'Only print the config name of '
                  'the best method other than warmup + cosine in methods_lm.')
flags.DEFINE_bool('lm_study_peak', False, 'Only print the multiple of the '
                  'reference peak 2e-3 at which run_lm.sh\'s studies 3, 5 and 7 '
                  'train.')
flags.DEFINE_string('peaks_of', None, 'Only print the rates x0.5 and x2 the '
                    'peak of this config file.')

HEADER = """# Which method? Claims from the literature, checked here

Each row pairs two grid points of a published study (docs/studies/), or
two cooldowns of a published budget sweep (docs/budgets/), over the same
seeds — the same initial parameters and data order — and reports the
paired difference with its raw 95% Student-t interval and its p-value after
Holm's correction. **Each table is one family**: "better" or "worse" only
where the Holm-adjusted p-value is below 0.05 (with 7-14 comparisons in a
table, one interval excluding zero by chance is likely otherwise).
Otherwise "no detectable difference", with beside it the smallest
difference the table could have detected with 80% power at its strictest
level (±X pp), so that "none" says how small a difference it rules out.
"Matches" and "at least as good as" are claims of equivalence: they are
shown only by two one-sided tests (TOST; one for "at least as good") with
a margin of ±0.2 pp fixed before the tests were run (claims.MARGIN says
why that size), Holm-corrected within the claims table. Runs that diverge
or stay at chance (final test accuracy below 20%) are counted per point
("k of n trained") and compared by an exact McNemar test on the paired
seeds, never averaged; epochs to a target accuracy, whole numbers, by the
exact sign test (fewer is better; only seeds where both reached it are
paired). Differences in final test accuracy are in percentage points.
The language model's rows (the byte-level transformer with AdamW, the
regime the claims were made in; docs/lm.md) compare the final validation
loss in bits per byte, lower is better, with a margin of ±0.01 bits per
byte fixed before any of its comparisons was computed
(claims.LM_MARGIN_BITS), and count a run above 4 bits per byte as at
chance. p-values and quantiles are scipy.stats'. Rebuilt from the committed study
files, without training:

```bash
.venv/bin/python tools/claims.py --studies_dir=docs/studies --output=docs/claims.md
```

"""

ANSWER = """## Every method against the seed's warmup + cosine

10 epochs, seeds 0-4 (studies `methods_mnist` and `methods_fashion`).
The table's 14 image comparisons (7 methods x 2 datasets) are one family;
in brackets after p, the smallest difference each could detect (pp). The
language model's column (`methods_lm`: 4 epochs of 250 steps, AdamW; the
final validation loss in bits per byte, lower is better) is a family of
its own: another model, metric and study.

"""
PEAKS = """
## Does the ranking hold at other peaks? (Fashion-MNIST)

The best method other than warmup + cosine in `methods_fashion`, against
warmup + cosine, each at x0.5, x1 and x2 its own peak rate, seeds 0-4
(studies `peaks_fashion_*` of docs/studies/run_all.sh's step 2b). The
three comparisons are one family.

"""
LM_PEAKS = """
### And for the language model?

methods_lm's best method other than warmup + cosine to zero (lowest mean
final bits per byte), against warmup + cosine to zero, each at x0.5, x1
and x2 the reference peak 2e-3 (and floor; x2 is the default, 4e-3),
seeds 0-4 (studies `methods_lm`, `peaks_lm_x0.5` and `peaks_lm_x2` of
docs/studies/run_lm.sh; lower is better). The three comparisons are one
family.

"""
LM_CONSTANT_PEAKS = """
A constant rate (no warmup, no decay) against warmup + cosine to zero at
the reference peak 2e-3 (methods_lm) and at x2 it, the default 4e-3
(`peaks_lm_x2` trains it too), so that this verdict does not rest on one
peak either. The two comparisons are one family.

"""
LM_COSINE_PEAKS = """
Where is warmup + cosine to zero's own best peak? Its final loss at each
multiple of the reference peak 2e-3 that a study of docs/studies/run_lm.sh trains
it at (x1: `methods_lm`; x0.5, x2: the peak studies; x4, x8: the
large-peak studies, with the default warmup), each paired by seed against
x1 (the same initial parameters and data order in every study). The
comparisons are one family. The lowest, among the multiples where every
seed trained, is where the straight-to-zero, warmup x beta2 and budget
studies train (`tools/claims.py --lm_study_peak`, a rule fixed before their
numbers), and it became configs/lm.py's default peak; the methods and
cooldown studies ran at x1.

"""
WARMUP = """
## The seed's question: how much warmup, for how many epochs?

Warmup + cosine (configs/default.py) at every `warmup_epochs` x
`num_epochs`, seeds 0-4 (run_all.sh's step 3). Each cell: the mean final
test accuracy [95% CI]; under it, a warmup's paired difference from no
warmup at the same `num_epochs` (pp) [raw 95% CI], its Holm-adjusted
p-value (the table's 12 comparisons are one family) and, for no detectable
difference, the smallest difference it could detect (±pp); the verdict in
bold where the adjusted p is below 0.05.

"""
LM_WARMUP = """
## The language model: how much warmup, for how long, with which β2?

Warmup + cosine to zero (configs/lm.py) with warmup 0-25% of the run x 2
and 4 epochs (500 and 1,000 steps) x Adam's β2 (study 5 of
docs/studies/run_lm.sh; `configs/lm_variant.py:lm:warmup=S:epochs=N:b2=X`),
seeds 0-4. Each cell: the mean final validation loss in bits per byte
(lower is better) [95% CI]; under it, a warmup's paired difference from no
warmup at the same length [raw 95% CI], its Holm-adjusted p-value (one
family per β2) and, for no detectable difference, the smallest difference
it could detect. The rule of thumb for Adam of Ma & Yarats (AAAI 2021,
arXiv 1910.04209): warmup of about 2 / (1 − β2) steps, 40 at β2 = 0.95
and 2,000 at 0.999 (longer than either run).

"""
RULE_OF_THUMB = """### Does the rule of thumb pick the best warmup?

Per β2 and length, each warmup of the grid against the grid's warmup
nearest the rule of thumb's 2 / (1 − β2) steps (nearest in log steps),
paired by seed: the difference [raw 95% CI], its Holm-adjusted p-value
(the table's comparisons are one family) and, for no detectable
difference, the smallest difference it could detect. Where the rule's
warmup is longer than the grid's largest, the grid has no cell for it and
nothing is tested. (This table was added on 2026-12-06, after the β2 =
0.95 studies and the 2-epoch β2 = 0.999 study were published; it reads
their committed rows, no run was added for it.)

"""
LAWS = """
## Can a law pick the schedule? (Multi-Power Law)

Luo et al. (ICLR 2025, arXiv 2503.12811) find the schedule that minimises
their law's predicted final loss and report that it outperforms cosine and
ends slightly below WSD. Here the law, fitted on three schedules per task
(docs/laws.md), gives its schedule from cosine to zero's warmup, peak and
length, and it is trained with 5 seeds (studies `laws_optimized_lm` and
`laws_optimized_fashion` of docs/laws/run_benchmark.sh) beside cosine to
zero, WSD 1-sqrt 20% and linear to zero. Decided before these studies ran:
per task and measure, the law's schedule is paired by seed against the
best of the three by measured mean (chosen after the fact, which favours
it), on the task's own final metric and on the law's own target, the
final training-loss level (the mean loss over the last hundredth of the
steps after the warmup, as the benchmark measures it; a run that did not
train by the task's own metric is counted on both). The four comparisons
are one family: a gain only where the Holm-adjusted p is below 0.05. Until
both studies are in, a comparison not run yet still counts in the family,
as its largest p-value, so no verdict here weakens when it lands.

"""
CLAIMS = """
## The claims

"""
FINDINGS = """
### Where the model decides

A claim these studies support for the language model and for neither
image dataset, or the reverse (supported: shown within its margin for
"matches" and "at least as good", "better" for a claim that one setting
is better), in one sentence each:

"""

GROWTH = """
### Does the effect grow?

A claim that its effect grows (with more tokens, say): its paired
difference in the last setting minus that in the first, per seed, and a
t-test of that change, a family of one each:

"""


def _warmup_section(studies_dir, dataset, study) -> str:
  """One dataset's warmup x epochs table, with the study's heatmap."""
  text = f'### {dataset} (study `{study}`)\n\n' + claims.warmup_table(
      studies_dir, study)
  if (studies_dir / study / 'study.png').is_file():
    text += (f'\n![{dataset}: mean final test accuracy per warmup_epochs x '
             f'num_epochs](studies/{study}/study.png)\n')
  return text + '\n'


def _lm_warmup_section(studies_dir, output) -> str:
  """Study 5's table and heatmap per beta2, and where each lowest mean lies
  against the rule of thumb."""
  text = LM_WARMUP
  for b2 in claims.LM_WARMUP_B2:
    names = ', '.join(f'`{claims.lm_warmup_study(b2, e)}`'
                      for e in claims.LM_WARMUP_EPOCHS)
    text += f'### β2 = {b2} (studies {names})\n\n'
    text += claims.lm_warmup_table(studies_dir, b2)
    heatmap = claims.lm_warmup_heatmap(studies_dir, b2)
    if heatmap:
      picture = output.parent / f'lm_warmup_b2_{b2}.png'
      plots.plot_heatmap(heatmap, f'language model, AdamW β2 = {b2}: final '
                         'validation loss per warmup and length', picture,
                         claims.LM_WARMUP_GRID.metric)
      text += (f'\n![β2 = {b2}: mean final bits per byte per warmup x '
               f'length]({picture.name})\n')
    text += '\n'
  best = claims.lm_best_warmups(studies_dir)
  if best:
    text += ('Where the lowest mean lies (it differs detectably from no '
             'warmup only where its table says so):\n\n'
             + ''.join(f'- {line}\n' for line in best) + '\n')
  rule_table = claims.lm_rule_of_thumb_table(studies_dir)
  if rule_table:
    text += RULE_OF_THUMB + rule_table + '\n'
  return text


def main(argv):
  del argv
  studies_dir, output = pathlib.Path(FLAGS.studies_dir), pathlib.Path(
      FLAGS.output)
  if (FLAGS.best_method or FLAGS.best_lm_method or FLAGS.lm_study_peak
      or FLAGS.peaks_of):
    with cli.one_line_errors():
      if FLAGS.best_method:
        print(claims.best_other_method(studies_dir))
      elif FLAGS.best_lm_method:
        print(claims.best_other_lm_method(studies_dir))
      elif FLAGS.lm_study_peak:
        print(claims.lm_study_peak(studies_dir))
      else:
        print(','.join(repr(r) for r in claims.peak_multiples(FLAGS.peaks_of)))
    return
  if not studies_dir.is_dir():
    sys.exit(f'Error: --studies_dir={studies_dir} is not a folder.')
  if not output.parent.is_dir():
    sys.exit(f'Error: --output={output}: {output.parent} is not a folder.')
  with cli.one_line_errors():
    files.check_not_directory(output)
    answer = claims.methods_table(studies_dir)
    peaks = (claims.peaks_table(studies_dir) + LM_PEAKS
             + claims.lm_peaks_table(studies_dir) + LM_CONSTANT_PEAKS
             + claims.lm_peaks_table(studies_dir, 'lm_constant',
                                     claims.LM_CONSTANT_PEAK_FACTORS)
             + LM_COSINE_PEAKS + claims.lm_cosine_peaks_table(studies_dir))
    warmup = ''.join(_warmup_section(studies_dir, dataset, study)
                     for dataset, study in claims.WARMUP_STUDIES)
    lm_warmup = _lm_warmup_section(studies_dir, output)
    laws = LAWS + claims.optimized_table(studies_dir)
    table = claims.markdown(studies_dir)
    found = claims.findings(studies_dir)
    findings = FINDINGS + (''.join(f'- {line}\n' for line in found) if found
                           else 'None in the published studies so far.\n')
    growth = GROWTH + ''.join(f'- {line}\n'
                              for line in claims.growth(studies_dir))
    untestable = ''.join(f'- {line}\n' for line in claims.untestable())
    files.write_text(output,
                     HEADER + ANSWER + answer + PEAKS + peaks + WARMUP
                     + warmup + lm_warmup + laws + CLAIMS + table + findings
                     + growth + '\nNot testable here:\n\n' + untestable)
  print(answer)
  print(peaks)
  print(warmup)
  print(lm_warmup)
  print(laws)
  print(table)
  print(findings)
  print(growth)
  print(f'Wrote {FLAGS.output}.')


if __name__ == '__main__':
  app.run(main)
