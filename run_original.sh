#!/usr/bin/env bash
# Train Simfluence (the original simulator, free factors per example pair) on processed GPTDynamics runs.
#   bash run_original.sh GPU [more train.py flags]
# The same as SIM_NAME=original bash run_enc_sim.sh GPU ...; settings from the environment as there.
set -euo pipefail
cd "$(dirname "$0")"
source utils/device.sh
script_help "$0" "$@"
SIM_NAME=original exec bash run_enc_sim.sh "$@"
