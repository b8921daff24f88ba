#!/usr/bin/env bash
# The studies of "The answer this project exists to give", one after another,
# each resumable: run this again and finished members are not retrained.
#
#   bash docs/studies/run_all.sh MNIST_IDX_DIR FASHION_IDX_DIR [STUDIES_DIR]
#
# Workdirs live outside the work tree (default $HOME/studies); each study
# publishes its results (tables, pictures, every member's config.json) into
# docs/studies/<name>/ when it finishes, and a study committed there is not
# run again. Until then every finished member's records go to
# docs/studies/progress/<name>/ (--carry): commit that folder before a
# session ends, and on a new machine, whose $HOME has no workdirs, the study
# resumes from it. On 2 CPU cores a 10-epoch member takes 2-5 minutes: about
# 2,400 epochs, 8-14 hours in all.
set -euo pipefail
cd "$(dirname "$0")/../.."
mnist=${1:?MNIST IDX folder}
fashion=${2:?Fashion-MNIST IDX folder}
out=${3:-$HOME/studies}
python=${PYTHON:-.venv/bin/python}
c=configs
methods="config=$c/default.py,$c/constant.py,$c/step.py,$c/sgdr.py,$c/wsd.py,$c/linear.py,$c/onecycle.py,$c/schedule_free.py"

source docs/studies/reuse.sh  # reuse NAME...: --reuse of their carried records

study() {  # NAME DATA_DIR DATASET ARGS...
  local name=$1 data=$2 dataset=$3
  shift 3
  committed "$name" "docs/studies/$name/study.json" && return
  "$python" tools/study.py --config=configs/default.py --workdir="$out/$name" \
      --seeds=5 --publish="docs/studies/$name" \
      --carry="docs/studies/progress/$name" --config.data_source=idx \
      --config.dataset="$dataset" --config.idx_dir="$data" "$@"
}

# 1. MNIST, 10 epochs, all 8 methods, paired against warmup + cosine.
study methods_mnist "$mnist" mnist --baseline=config=$c/default.py --vary="$methods"
# 2. Fashion-MNIST, the same 8 methods.
study methods_fashion "$fashion" fashion_mnist --target_accuracy=0.9 --baseline=config=$c/default.py --vary="$methods"
# 2b. A verdict must not hinge on one peak: warmup + cosine and study 2's
#     best other method, each at x0.5 and x2 its own peak (x1 is study 2).
best=$("$python" tools/claims.py --best_method)
for method in "$c/default.py" "$best"; do
  study "peaks_fashion_$(basename "$method" .py)" "$fashion" fashion_mnist \
      --target_accuracy=0.9 --vary=config="$method" \
      --vary=learning_rate="$("$python" tools/claims.py --peaks_of="$method")"
done
# 3. The seed's question: warmup_epochs x num_epochs for warmup + cosine.
study warmup_mnist "$mnist" mnist --baseline=warmup_epochs=0.0 \
    --vary=warmup_epochs=0,0.25,0.5,1,2 --vary=num_epochs=2,5,10
# 4. Goyal et al. (2017): warmup matters at large peak rates. One epoch of
#    warmup against none, at the default peak and at 4x and 8x it.
#    (Warmup 0 and 1 at the default peak are study 3's 10-epoch runs.)
study warmup_peaks_mnist "$mnist" mnist --baseline=warmup_epochs=0.0 \
    --vary=warmup_epochs=0,1 --vary=learning_rate=0.1,0.4,0.8 \
    $(reuse warmup_mnist)
# 5. How many epochs? (tools/budgets.py) On each dataset: warmup + cosine
#    trained separately at every budget, then one WSD trunk per seed
#    branched into a 20% cooldown at every budget, paired against it. The
#    budget tables and picture are copied to docs/budgets/<dataset>/.
budgets() {  # NAME DATA_DIR DATASET TARGET
  local name=$1 data=$2 dataset=$3 target=$4
  committed "budgets $name" "docs/budgets/$name/budgets.json" && return
  # Budgets 2, 5 and 10 (and on Fashion-MNIST 10) are earlier studies' runs.
  study "cosine_budgets_$name" "$data" "$dataset" --target_accuracy="$target" \
      --vary=num_epochs=2,3,5,10 $(reuse "warmup_$name" "methods_$name")
  "$python" tools/budgets.py --config=configs/wsd.py --workdir="$out/budgets_$name" \
      --budgets=2,3,5,10 --seeds=5 --decay_fraction=0.2 \
      --compare_study="docs/studies/cosine_budgets_$name" \
      --carry="docs/studies/progress/budgets_$name" --config.data_source=idx \
      --config.dataset="$dataset" --config.idx_dir="$data"
  mkdir -p "docs/budgets/$name"
  cp "$out/budgets_$name"/budgets.{csv,json,md,png} "docs/budgets/$name/"
}
budgets mnist "$mnist" mnist 0.99
budgets fashion "$fashion" fashion_mnist 0.9
# 6. The seed's question on Fashion-MNIST too ("if time allows" in issue
#    20): the grid of step 3, last because it is the one optional study.
study warmup_fashion "$fashion" fashion_mnist --target_accuracy=0.9 \
    --baseline=warmup_epochs=0.0 --vary=warmup_epochs=0,0.25,0.5,1,2 \
    --vary=num_epochs=2,5,10 $(reuse cosine_budgets_fashion methods_fashion)
