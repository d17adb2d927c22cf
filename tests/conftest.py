"""Shared test set-up: offline hub, one torch thread, every cache in a temporary folder.

The tests' tensors are small: one thread is faster than two there (no thread hand-offs), and it keeps the
suite's timings steady on a shared 2-core machine. GPTFLUENCE_CACHE points the default model and embedding
caches at a folder of this session, so no test reads or writes the repo's .cache.
"""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
_CACHE = tempfile.mkdtemp(prefix="gptfluence-tests-")
os.environ["GPTFLUENCE_CACHE"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)

import torch  # noqa: E402

torch.set_num_threads(1)
