#!/usr/bin/env bash
# The whole method, offline, from nothing: task files -> GPT runs -> preprocessing -> simulators and baselines
# (3 simulator seeds) -> held-out test -> results/<preset>/table.md, plots, env.json, reproduce.log.
#   bash reproduce.sh GPU [preset] [more flags of utils/reproduce.py]
#   preset: quick (smoke test) | default (all five tasks, CPU-sized) | paper (the paper's sizes, for a GPU)
# e.g.  bash reproduce.sh 0 quick
#       bash reproduce.sh 0 default --tasks rte,sst2 --runs 8
# Stages found done are skipped, so an interrupted call resumes. With no GPU it says so and runs on the CPU.
set -euo pipefail
cd "$(dirname "$0")"
source utils/device.sh
script_help "$0" "$@"
GPU="${1:-0}"
PRESET="${2:-default}"
shift $(( $# < 2 ? $# : 2 ))
pick_device "$GPU"
exec python3 utils/reproduce.py --preset "$PRESET" --gpu "$DEVICE" "$@"
