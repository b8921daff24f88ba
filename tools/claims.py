"""Claims from the literature, checked against the published studies.

  python tools/claims.py [--studies_dir=docs/studies] [--output=docs/claims.md]

Reads each published study's committed study.csv and study_epochs.csv (see
claims.py for the claims and the pairs of grid points that test them) and
writes the table: the claim, its source and setting, and per dataset our
paired 95% interval and verdict, or "not run yet". Trains nothing.
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
CLAIMS = """
## The claims

"""


def main(argv):
  del argv
  studies_dir, output = pathlib.Path(FLAGS.studies_dir), pathlib.Path(
      FLAGS.output)
  if not studies_dir.is_dir():
    sys.exit(f'Error: --studies_dir={studies_dir} is not a folder.')
  if not output.parent.is_dir():
    sys.exit(f'Error: --output={output}: {output.parent} is not a folder.')
  with cli.one_line_errors():
    files.check_not_directory(output)
  answer = claims.methods_table(studies_dir)
  table = claims.markdown(studies_dir)
  untestable = ''.join(f'- {line}\n' for line in claims.untestable())
  files.write_text(output,
                   HEADER + ANSWER + answer + CLAIMS + table
                   + '\nNot testable here:\n\n' + untestable)
  print(answer)
  print(table)
  print(f'Wrote {FLAGS.output}.')


if __name__ == '__main__':
  app.run(main)
