#!/usr/bin/env bash
# Train simulators on processed GPTDynamics runs.
#   bash run_enc_sim.sh GPU [more train.py flags]
# Settings below (override by environment: TASKS="rte sst2" SIM_NAME=original bash run_enc_sim.sh 0);
# any further flag goes to train.py as is (e.g. --data_paths_dict runs.json --max_epoch 50).
set -euo pipefail
cd "$(dirname "$0")"
source utils/device.sh
GPU="${1:-0}"; [ $# -gt 0 ] && shift
TASKS="${TASKS:-rte}"                 # rte sst2 boolq webnlg wmt16_de_en flan
METRICS="${METRICS:-loss}"            # loss bleu rougeL rouge1 rouge2
SIM_NAME="${SIM_NAME:-enc_sim}"       # original enc_sim norder_enc_sim gpt_sim
LR="${LR:-1e-4}"                      # paper: 1e-4 fine-tuning; 1e-6 / 1e-5 instruction tuning; Simfluence 1e-3
MAX_EPOCH="${MAX_EPOCH:-300}"
TRAIN_BS="${TRAIN_BS:-128}"
ORDER_N="${ORDER_N:-1}"
SEED="${SEED:-42}"
OUTPUT_DIR="${OUTPUT_DIR:-output}"
pick_device "$GPU"
mkdir -p "$OUTPUT_DIR"
for task in $TASKS; do
  for metric in $METRICS; do
    echo "== train $SIM_NAME on $task ($metric)"
    python3 train.py --sim_name "$SIM_NAME" --task "$task" --metric "$metric" --lr "$LR" \
      --max_epoch "$MAX_EPOCH" --train_bs "$TRAIN_BS" --order_n "$ORDER_N" --seed "$SEED" \
      --output_dir "$OUTPUT_DIR" --device "$DEVICE" "$@" 2>&1 | tee -a "$OUTPUT_DIR/run_enc_sim.log"
  done
done
