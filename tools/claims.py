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

FLAGS = flags.FLAGS
flags.DEFINE_string('studies_dir', 'docs/studies', 'Published studies.')
flags.DEFINE_string('output', 'docs/claims.md', 'The page to write.')
flags.DEFINE_bool('best_method', False, 'Only print the best method other '
                  'than warmup + cosine in the Fashion-MNIST methods study.')
flags.DEFINE_string('peaks_of', None, 'Only print the rates x0.5 and x2 the '
                    'peak of this config file.')

HEADER = """# Which method? Claims from the literature, checked here

Each row pairs two grid points of a published study (docs/studies/) over the
same seeds — the same initial parameters and data order — and reports the
paired difference with its 95% Student-t interval: "better" or "worse" only
when that interval excludes zero, otherwise "no detectable difference with N
seeds". Differences in final test accuracy are in percentage points; in
epochs to a target accuracy, fewer is better (only seeds where both reached
it are paired). Rebuilt from the committed study files, without training:

```bash
.venv/bin/python tools/claims.py --studies_dir=docs/studies --output=docs/claims.md
```

"""

ANSWER = """## Every method against the seed's warmup + cosine

10 epochs, seeds 0-4 (studies `methods_mnist` and `methods_fashion`).

"""
PEAKS = """
## Does the ranking hold at other peaks? (Fashion-MNIST)

The best method other than warmup + cosine in `methods_fashion`, against
warmup + cosine, each at x0.5, x1 and x2 its own peak rate, seeds 0-4
(studies `peaks_fashion_*` of docs/studies/run_all.sh's step 2b).

"""
WARMUP = """
## The seed's question: how much warmup, for how many epochs?

Warmup + cosine (configs/default.py) at every `warmup_epochs` x
`num_epochs`, seeds 0-4 (run_all.sh's step 3). Each cell: the mean final
test accuracy [95% CI]; under it, a warmup's paired difference from no
warmup at the same `num_epochs` (pp) [95% CI], in bold where the interval
excludes zero.

"""
CLAIMS = """
## The claims

"""


def _warmup_section(studies_dir, dataset, study) -> str:
  """One dataset's warmup x epochs table, with the study's heatmap."""
  text = f'### {dataset} (study `{study}`)\n\n' + claims.warmup_table(
      studies_dir, study)
  if (studies_dir / study / 'study.png').is_file():
    text += (f'\n![{dataset}: mean final test accuracy per warmup_epochs x '
             f'num_epochs](studies/{study}/study.png)\n')
  return text + '\n'


def main(argv):
  del argv
  studies_dir, output = pathlib.Path(FLAGS.studies_dir), pathlib.Path(
      FLAGS.output)
  if FLAGS.best_method or FLAGS.peaks_of:
    with cli.one_line_errors():
      print(claims.best_other_method(studies_dir) if FLAGS.best_method else
            ','.join(repr(r) for r in claims.peak_multiples(FLAGS.peaks_of)))
    return
  if not studies_dir.is_dir():
    sys.exit(f'Error: --studies_dir={studies_dir} is not a folder.')
  if not output.parent.is_dir():
    sys.exit(f'Error: --output={output}: {output.parent} is not a folder.')
  with cli.one_line_errors():
    files.check_not_directory(output)
    answer = claims.methods_table(studies_dir)
    peaks = claims.peaks_table(studies_dir)
    warmup = ''.join(_warmup_section(studies_dir, dataset, study)
                     for dataset, study in claims.WARMUP_STUDIES)
    table = claims.markdown(studies_dir)
    untestable = ''.join(f'- {line}\n' for line in claims.untestable())
    files.write_text(output,
                     HEADER + ANSWER + answer + PEAKS + peaks + WARMUP
                     + warmup + CLAIMS + table
                     + '\nNot testable here:\n\n' + untestable)
  print(answer)
  print(peaks)
  print(warmup)
  print(table)
  print(f'Wrote {FLAGS.output}.')


if __name__ == '__main__':
  app.run(main)
