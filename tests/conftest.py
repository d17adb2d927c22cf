"""Shared test set-up: offline hub, repo root importable, one torch thread.

The tests' tensors are small: one thread is faster than two there (no thread
hand-offs), and it keeps the suite's timings steady on a shared 2-core machine.
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

torch.set_num_threads(1)
