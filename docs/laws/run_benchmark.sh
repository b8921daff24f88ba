#!/usr/bin/env bash
# The ground truth of the frozen schedule-law benchmark (docs/laws/
# benchmark.json; issue "Predict before you train"): every fit and held-out
# schedule, 5 seeds, on the language model and on Fashion-MNIST, as two
# studies with per-step records (their --carry keeps train_steps.csv.gz).
# Resumable, as docs/studies/run_all.sh: run it again and finished members
# are not retrained.
#
#   bash docs/laws/run_benchmark.sh SOTU_DATA_DIR FASHION_IDX_DIR [STUDIES_DIR]
#
# SOTU_DATA_DIR holds sotu/ (e.g. ../shared/data); FASHION_IDX_DIR the
# Fashion-MNIST IDX files (e.g. ../shared/data/fashion_mnist). The LM's
# cosine to zero and to 10%, linear to zero, WSD 1-sqrt 20%, two-drop step,
# one-cycle and SGDR are methods_lm's own runs (configs/laws_benchmark.py
# says why), its cosine at 2x the length is cosine_budgets_lm's 8-epoch run
# where that study trains at x1 the peak (configs/lm.py at num_epochs=8,
# field for field; run_lm.sh says when it does not), all taken with --reuse,
# not trained again; its six WSD runs are the branches of run_lm.sh's WSD
# cooldown study. After each task's ground truth, tools/laws_benchmark.py
# fits every law and writes docs/laws/TASK_results.* and the task's
# optimized schedule, which is then trained, 5 seeds, against three of the
# above.
#
# Cost on 2 CPU cores: the LM 9 default lengths x 5 seeds (two-stage drop
# 1, cosine 2x 2 and 3x 3, constant 3x 3; 7 where cosine_budgets_lm's 2x
# is taken; about 5 hours, 6.5 minutes a length), Fashion-MNIST 21 x 5
# (about 4 hours), then 5 runs of each optimized schedule (about 45
# minutes in all).
set -euo pipefail
cd "$(dirname "$0")/../.."
sotu=${1:?SOTU data dir holding sotu/}
fashion=${2:?Fashion-MNIST IDX folder}
out=${3:-$HOME/studies}
python=${PYTHON:-.venv/bin/python}
names=$("$python" -c 'from configs import laws_benchmark as b; print(" ".join(b.entries()))')

settings() {  # TASK ['SKIP_PATTERN ...'] -> config=configs/laws_benchmark.py:TASK:NAME,...
  local task=$1 list=() name pattern skip=()
  read -ra skip <<< "${2:-}"  # split on spaces, never expanded as files
  for name in $names; do
    for pattern in "${skip[@]}"; do
      [[ "$name" == $pattern ]] && continue 2
    done
    list+=("configs/laws_benchmark.py:$task:$name")
  done
  (IFS=,; echo "config=${list[*]}")
}

study() {  # NAME BASE_CONFIG TASK 'SKIP_PATTERN ...' ARGS...
  local name=$1 base=$2 task=$3 skip=$4
  shift 4
  committed "$name" "docs/studies/$name/study.json" && return
  "$python" tools/study.py --config="$base" --workdir="$out/$name" --seeds=5 \
      --publish="docs/studies/$name" --carry="docs/studies/progress/$name" \
      --baseline=config=configs/laws_benchmark.py:$task:cosine_to_zero \
      --vary="$(settings "$task" "$skip")" "$@"
}

source docs/studies/reuse.sh  # reuse NAME...: --reuse of their carried records

# runs_of NAME...: their workdirs in $out and their carried records: a
# workdir of an earlier machine is gone, its carried records are committed,
# and a run is found wherever it lies (the first copy found is read).
runs_of() {
  local list=() name
  for name; do
    [[ -d "$out/$name" ]] && list+=("$out/$name")
    [[ -d "docs/studies/progress/$name" ]] && list+=("docs/studies/progress/$name")
  done
  (IFS=,; echo "${list[*]}")
}

# The benchmark of one task, measured as soon as its ground truth is in:
# every law fitted on the fit set and scored on the held-out schedules
# (docs/laws/TASK_results.*), and MPL's --optimize schedule from cosine to
# zero (docs/laws/TASK_optimized.schedule.json).
measure() {  # TASK STUDY...
  local task=$1
  shift
  committed "laws benchmark of $task" "docs/laws/${task}_results.json" && return
  "$python" tools/laws_benchmark.py --output=docs/laws \
      --runs="$task=$(runs_of "$@")"
}

# The optimized schedule trained, 5 seeds, paired against cosine to zero,
# WSD 1-sqrt 20% and linear to zero: a gain only where the interval against
# the best of the three excludes zero. The three are runs of the studies
# above (and of methods_lm), taken with --reuse, not trained again.
optimized() {  # NAME BASE_CONFIG TASK ARGS...
  local name=$1 base=$2 task=$3
  shift 3
  committed "$name" "docs/studies/$name/study.json" && return
  local found="configs/recorded.py:docs/laws/${task}_optimized.schedule.json"
  local b="configs/laws_benchmark.py:$task"
  "$python" tools/study.py --config="$base" --workdir="$out/$name" --seeds=5 \
      --publish="docs/studies/$name" --carry="docs/studies/progress/$name" \
      --baseline=config="$found" \
      --vary=config="$found,$b:cosine_to_zero,$b:wsd_1sqrt_20,$b:linear_to_zero" "$@"
}

# One task after the other, each to its end (ground truth, benchmark,
# optimized schedule), so the first task's answer lands hours before the
# second's.
# The LM's six WSD runs are study 4's branches (docs/studies/run_lm.sh,
# budgets wsd_cooldowns_lm): not trained again here. A constant rate at 1x
# and 2x the length is the first third and two thirds of its run at 3x,
# step for step (the benchmark takes them from it: prediction_benchmark.
# _prefix_run), so neither is trained on its own (methods_lm's constant
# rate has no warmup: not the benchmark's).
# The LM at the reference peak 2e-3 (configs/laws_benchmark.py says why).
study laws_lm configs/lm_variant.py:lm:peak=1 language_model 'wsd_* constant constant_2x' \
    --config.data_dir="$sotu" --config.allow_download=false \
    $(reuse methods_lm cosine_budgets_lm)
measure language_model laws_lm budgets_wsd_cooldowns_lm methods_lm cosine_budgets_lm
optimized laws_optimized_lm configs/lm_variant.py:lm:peak=1 language_model \
    --config.data_dir="$sotu" --config.allow_download=false \
    $(reuse methods_lm laws_lm)

study laws_fashion configs/default.py fashion_mnist 'constant constant_2x' \
    --config.dataset=fashion_mnist --config.data_source=idx \
    --config.idx_dir="$fashion" --config.allow_download=false
measure fashion_mnist laws_fashion
optimized laws_optimized_fashion configs/default.py fashion_mnist \
    --config.dataset=fashion_mnist --config.data_source=idx \
    --config.idx_dir="$fashion" --config.allow_download=false \
    $(reuse laws_fashion)
