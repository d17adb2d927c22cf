#!/usr/bin/env bash
# Score every trained BLEU / ROUGE-L simulator on its held-out test runs (auto_test.sh with METRICS="bleu rougeL"
# and the generation tasks).
#   bash auto_test_metric.sh GPU [more test.py flags]
set -euo pipefail
cd "$(dirname "$0")"
source utils/device.sh
script_help "$0" "$@"
METRICS="${METRICS:-bleu rougeL}" TASKS="${TASKS:-webnlg wmt16_de_en flan}" exec bash auto_test.sh "$@"
