#!/usr/bin/env bash
# The language model's studies and the schedule-law benchmark take days of
# 2 CPU cores, longer than a working session, whose processes end with it.
# This starts them in the background from a frozen clone of HEAD (so that
# editing this checkout cannot change a running study), and brings back
# what they finished:
#
#   bash docs/studies/background.sh start SOTU_DATA_DIR FASHION_IDX_DIR [STUDIES_DIR]
#   bash docs/studies/background.sh collect
#
# start: clones HEAD into $HOME/frozen/<commit> (with this checkout's .venv),
# then runs docs/studies/run_lm.sh and docs/laws/run_benchmark.sh there
# under nohup and nice, appending to STUDIES_DIR/run_lm.log. Workdirs live
# in STUDIES_DIR (default $HOME/studies), outside every work tree: a study
# resumes from its checkpoints there, or on a new machine from its carried
# records (docs/studies/progress/<name>/, which the clone has from HEAD:
# commit them first).
#
# collect: copies from the newest frozen clone into this checkout every
# carried member and every published study, budget sweep and law result
# that is not here yet (never overwriting, never deleting): then commit.
set -euo pipefail
cd "$(dirname "$0")/../.."
frozen_root=${FROZEN_ROOT:-$HOME/frozen}

start() {
  # Absolute: the chain runs in the clone.
  local sotu fashion out
  sotu=$(realpath "${1:?SOTU data dir holding sotu/}")
  fashion=$(realpath "${2:?Fashion-MNIST IDX folder}")
  out=$(realpath -m "${3:-$HOME/studies}")
  local frozen
  frozen="$frozen_root/$(git rev-parse --short HEAD)"
  if [[ -n "$(git status --porcelain -- docs/studies/progress)" ]]; then
    echo "docs/studies/progress has uncommitted records: commit them first" >&2
    exit 1
  fi
  # One chain per studies folder: two would train the same members at once.
  local running="docs/studies/run_lm.sh .* $out\$"
  if pgrep -f "$running" > /dev/null; then
    echo "a study chain into $out is already running: $(pgrep -af "$running" | head -1)" >&2
    exit 1
  fi
  if [[ ! -e "$frozen" ]]; then
    mkdir -p "$frozen_root"
    git clone -q . "$frozen"
    cp -a .venv "$frozen/.venv"
  fi
  mkdir -p "$out"
  # The redirections are on the subshell, not on nohup: so bash keeps no
  # copy of the caller's stdout open in the chain, and `start | tail`
  # returns at once instead of waiting days for the chain to end.
  (cd "$frozen" && exec nohup nice -n 10 bash -c \
      'bash docs/studies/run_lm.sh "$1" "$3" && bash docs/laws/run_benchmark.sh "$1" "$2" "$3"' \
      chain "$sotu" "$fashion" "$out") < /dev/null >> "$out/run_lm.log" 2>&1 &
  echo "Started from $frozen; log: $out/run_lm.log; later: bash docs/studies/background.sh collect"
}

collect() {
  local frozen
  frozen=$(ls -dt "$frozen_root"/*/ 2>/dev/null | head -1)
  [[ -n "$frozen" ]] || { echo "no frozen clone in $frozen_root" >&2; exit 1; }
  local path
  for path in docs/studies docs/budgets docs/laws; do
    [[ -d "$frozen/$path" ]] || continue
    # --ignore-existing: what this checkout has stays as it is.
    (cd "$frozen" && find "$path" -type f -print0) |
      while IFS= read -r -d '' file; do
        if [[ ! -e "$file" ]]; then
          mkdir -p "$(dirname "$file")"
          cp -p "$frozen/$file" "$file"
          echo "$file"
        fi
      done
  done | awk -F/ '{print $1 "/" $2 "/" $3}' | sort | uniq -c
  echo "Collected from $frozen (counts of new files per folder); commit them."
}

case "${1:-}" in
  start) shift; start "$@" ;;
  collect) collect ;;
  *) echo "usage: bash docs/studies/background.sh start SOTU_DATA_DIR FASHION_IDX_DIR [STUDIES_DIR] | collect" >&2; exit 2 ;;
esac
