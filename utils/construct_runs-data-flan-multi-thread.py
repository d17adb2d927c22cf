#!/usr/bin/env python
"""Preprocess instruction-tuning (FLAN) raw runs, several processes: test loss trajectories + batches.

Each raw run holds one loss_<sub-task>/ (metric_<sub-task>/) folder per sub-task (--tasks) with
task-local test ids; global test id = local id + gptfluence.formats.FLAN_TEST_OFFSETS[sub-task].
One worker process per run (--workers); the outputs do not depend on the number of workers.

Example:
    python utils/construct_runs-data-flan-multi-thread.py --raw_root gptdynamics/runs_raw --task flan --workers 4

Raw run dirs <raw_root>/<run_glob> (GPTDynamics layout, see gptfluence/formats.py) become processed run dirs
<output_root>/<task>/<raw run dir name>/ (train_samples_id.json, all_<metric>_trajectory.out). Runs already
complete are skipped unless --overwrite. All the logic lives in gptfluence/preprocess.py.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gptfluence import preprocess  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    preprocess.add_common_args(p, default_task='flan', default_metrics=['loss'], default_workers=4)
    preprocess.add_flan_args(p)
    return p.parse_args(argv)


def main(argv=None):
    return preprocess.run_cli(parse_args(argv))


if __name__ == "__main__":
    main()
