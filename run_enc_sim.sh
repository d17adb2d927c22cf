#!/usr/bin/env bash
# Train simulators on processed GPTDynamics runs (train.py), one per task and metric.
#   bash run_enc_sim.sh GPU [more train.py flags]
# Settings from the environment: TASKS (default rte), METRICS (loss), SIM_NAME (enc_sim), SEED (42), OUTPUT_DIR
# (output); LR, MAX_EPOCH, TRAIN_BS only when set (otherwise the simulator's own defaults). Further flags go to
# train.py as they are, e.g.  TASKS="rte sst2" bash run_enc_sim.sh 0 --data_paths_dict runs.json --separate_proj
# With no GPU it says so and runs on the CPU. The log goes to <OUTPUT_DIR>/run_enc_sim.log (fresh each call).
set -euo pipefail
cd "$(dirname "$0")"
source utils/device.sh
script_help "$0" "$@"
GPU="${1:-0}"; [ $# -gt 0 ] && shift
TASKS="${TASKS:-rte}"
METRICS="${METRICS:-loss}"
SIM_NAME="${SIM_NAME:-enc_sim}"
SEED="${SEED:-42}"
OUTPUT_DIR="${OUTPUT_DIR:-output}"
pick_device "$GPU"
extra=()
[ -n "${LR:-}" ] && extra+=(--lr "$LR")
[ -n "${MAX_EPOCH:-}" ] && extra+=(--max_epoch "$MAX_EPOCH")
[ -n "${TRAIN_BS:-}" ] && extra+=(--train_bs "$TRAIN_BS")
mkdir -p "$OUTPUT_DIR"
LOG="$OUTPUT_DIR/run_enc_sim.log"
: >"$LOG"
for task in $TASKS; do
  for metric in $METRICS; do
    echo "== train $SIM_NAME on $task ($metric)" | tee -a "$LOG"
    python3 train.py --sim_name "$SIM_NAME" --task "$task" --metric "$metric" --seed "$SEED" \
      --output_dir "$OUTPUT_DIR" --device "$DEVICE" "${extra[@]}" "$@" 2>&1 | tee -a "$LOG"
  done
done
