#!/usr/bin/env bash
# The paper's experiments, each one command (from a clean clone; every stage resumes where it stopped):
#   bash experiments.sh GPU EXPERIMENT [preset] [more flags of utils/experiments.py]
#   EXPERIMENT: main | metrics | unseen | order | cp_interval | model_size      preset: quick | default
# e.g.  bash experiments.sh 0 unseen default
#       bash experiments.sh 0 order quick --orders 1,2,3
# Writes results/EXPERIMENT/PRESET/{table.md, bars.png, trajectories.png, args.json, summary.json, env.json,
# experiment.log}; runs, simulators and scores are shared under results/experiments_work/.
# With no GPU it says so and runs on the CPU (one torch thread: THREADS=0 for torch's default).
set -euo pipefail
cd "$(dirname "$0")"
source utils/device.sh
script_help "$0" "$@"
GPU="${1:?usage: bash experiments.sh GPU EXPERIMENT [preset] [flags] (see --help)}"
EXPERIMENT="${2:?usage: bash experiments.sh GPU EXPERIMENT [preset] [flags] (see --help)}"
PRESET="${3:-default}"
shift $(( $# < 3 ? $# : 3 ))
pick_device "$GPU"
exec python3 utils/experiments.py "$EXPERIMENT" --preset "$PRESET" --gpu "$DEVICE" --threads "${THREADS:-1}" "$@"
