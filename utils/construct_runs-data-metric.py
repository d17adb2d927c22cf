#!/usr/bin/env python
"""Preprocess fine-tuning raw runs: loss, BLEU (0-100) and ROUGE (0-1) trajectories + batches.

Example:
    python utils/construct_runs-data-metric.py --raw_root gptdynamics/runs_raw --task webnlg --output_root runs

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
    preprocess.add_common_args(p, default_task='webnlg', default_metrics=['loss', 'bleu', 'rougeL', 'rouge1', 'rouge2'], default_workers=1)
    return p.parse_args(argv)


def main(argv=None):
    return preprocess.run_cli(parse_args(argv))


if __name__ == "__main__":
    main()
