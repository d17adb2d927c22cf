#!/usr/bin/env bash
# The paper's experiments, each one command (from a clean clone; every stage resumes where it stopped):
#   bash experiments.sh GPU EXPERIMENT [preset] [extra flags of utils/experiments.py]
#   EXPERIMENT: main | metrics | unseen | order | cp_interval | model_size      preset: quick | default
# e.g.  bash experiments.sh 0 unseen default
#       bash experiments.sh 0 order quick --orders 1,2,3
# Writes results/EXPERIMENT/PRESET/{table.md, bars.png, trajectories.png, args.json, summary.json, experiment.log};
# runs, simulators and scores are shared between experiments under results/experiments_work/.
# With no GPU it says so and runs on the CPU (THREADS=1 by default: set THREADS=0 for all cores).
set -euo pipefail
cd "$(dirname "$0")"
GPU="${1:?usage: bash experiments.sh GPU EXPERIMENT [preset] [flags]}"
EXPERIMENT="${2:?usage: bash experiments.sh GPU EXPERIMENT [preset] [flags]}"
PRESET="${3:-default}"
shift $(( $# < 3 ? $# : 3 ))
: "${THREADS:=1}" "${OUT_ROOT:=results}"
OUT="$OUT_ROOT/$EXPERIMENT/$PRESET"
mkdir -p "$OUT"
LOG="$OUT/experiment.log"
echo "[$(date '+%F %T')] experiments.sh $GPU $EXPERIMENT $PRESET $*" | tee -a "$LOG"
OMP_NUM_THREADS="$THREADS" python3 utils/experiments.py "$EXPERIMENT" --preset "$PRESET" --gpu "$GPU" \
  --threads "$THREADS" --out_root "$OUT_ROOT" "$@" 2>&1 | tee -a "$LOG"
