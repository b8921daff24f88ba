# Sourced by docs/studies/run_all.sh, run_lm.sh and docs/laws/run_benchmark.sh
# (from the project's root).

# True, and says so, where a study's or budget sweep's result is committed:
# a finished result is never trained again.
committed() {  # LABEL FILE
  [[ -e "$2" ]] || return 1
  echo "$1: committed in $(dirname "$2")/, not rerun"
}

# --reuse of the named studies' carried records (those that exist): a
# member that is a finished run of an earlier study (the same config field
# for field, on the same data) is taken from it, not trained again. Keep
# docs/studies/progress/<name> of a study that a later one reuses until
# that one is published.
reuse() {  # NAME...
  local dirs=() name
  for name; do
    [[ -d "docs/studies/progress/$name/members" ]] && dirs+=("docs/studies/progress/$name")
  done
  if (( ${#dirs[@]} )); then (IFS=,; echo "--reuse=${dirs[*]}"); fi
}
