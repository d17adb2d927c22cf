#!/usr/bin/env bash
# Score every trained simulator of the given tasks on its held-out test runs (test.py), then print the table.
#   bash auto_test.sh GPU [more test.py flags]
# Finds <OUTPUT_DIR>/<task>/<run>/best-checkpoint.pt whose metric is in METRICS (default loss), TASKS (default
# all) and OUTPUT_DIR (default output) from the environment. With no GPU it says so and runs on the CPU.
set -euo pipefail
cd "$(dirname "$0")"
source utils/device.sh
script_help "$0" "$@"
GPU="${1:-0}"; [ $# -gt 0 ] && shift
TASKS="${TASKS:-rte sst2 boolq webnlg wmt16_de_en flan}"
METRICS="${METRICS:-loss}"
OUTPUT_DIR="${OUTPUT_DIR:-output}"
pick_device "$GPU"
found=0
files=()
for task in $TASKS; do
  for ckpt in "$OUTPUT_DIR/$task"/*/best-checkpoint.pt; do
    [ -e "$ckpt" ] || continue
    run_dir=$(dirname "$ckpt")
    metric=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['metric'])" "$run_dir/spec.json")
    case " $METRICS " in *" $metric "*) ;; *) continue ;; esac
    found=$((found + 1))
    echo "== test $run_dir"
    python3 test.py --checkpoint "$run_dir" --device "$DEVICE" "$@" 2>&1 | tee "$run_dir/test.out"
    files+=("$run_dir/test/metrics.json")
  done
done
if [ "$found" -eq 0 ]; then
  echo "no checkpoints for metrics '$METRICS' under $OUTPUT_DIR/{${TASKS// /,}}/: train first (bash run_enc_sim.sh $GPU)" >&2
  exit 1
fi
python3 utils/make_tables.py --metrics_files "${files[@]}" --metrics $METRICS
