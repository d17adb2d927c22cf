#!/usr/bin/env bash
# Train vec_sim (Simfluence with per-pair vectors and a small MLP, a released variant) on processed runs.
#   bash run_vec_sim.sh GPU [more train.py flags]
# The same as SIM_NAME=vec_sim bash run_enc_sim.sh GPU ...; settings from the environment as there.
set -euo pipefail
cd "$(dirname "$0")"
source utils/device.sh
script_help "$0" "$@"
SIM_NAME=vec_sim exec bash run_enc_sim.sh "$@"
