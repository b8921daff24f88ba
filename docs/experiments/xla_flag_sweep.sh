#!/usr/bin/env bash
# XLA:CPU's library-fusion flags in one alternated A/B of the whole step.
#
#   bash docs/experiments/xla_flag_sweep.sh LOWERING BATCH MICRO DEVICES REPEATS
#
# Runs docs/experiments/conv_lowerings.py once per flag set below, in turn,
# REPEATS times (so that the machine's drift falls on every set alike), and
# prints each run's images/s and its parameter digest: a set whose digest
# differs from the default's changes the project's numbers.
set -euo pipefail
cd "$(dirname "$0")/../.."
lowering=${1:?LOWERING} batch=${2:?BATCH} micro=${3:?MICRO} devices=${4:?DEVICES}
repeats=${5:-2}
python=${PYTHON:-.venv/bin/python}
flag_sets=(
  ""
  "--xla_cpu_experimental_ynn_fusion_type=+eltwise"
  "--xla_cpu_experimental_ynn_fusion_type=+reduce"
  "--xla_cpu_experimental_ynn_fusion_type=+dot,+eltwise,+reduce"
  "--xla_cpu_experimental_xnn_fusion_type=+dot,+eltwise,+reduce"
  "--xla_cpu_experimental_xnn_graph_fusion_mode=XNN_GRAPH_FUSION_MODE_GREEDY"
  "--xla_cpu_experimental_onednn_custom_call=true --xla_cpu_experimental_onednn_fusion_type=+dot,+eltwise"
)
for ((repeat = 1; repeat <= repeats; repeat++)); do
  for flags in "${flag_sets[@]}"; do
    result=$(XLA_FLAGS="$flags" "$python" docs/experiments/conv_lowerings.py \
        "$lowering" "$batch" "$micro" "$devices" 2>&1 | tail -1) || true
    echo "repeat $repeat | ${flags:-(default)} | $result"
  done
done
