"""The pipeline: typed steps that every script and orchestrator calls (no script calls another script).

    task_files        built-in task sample files (written once, deterministic)
    make_runs         fine-tune a GPT over many curricula (RunSpec) -> raw run dirs
    preprocess        raw run dirs -> processed run dirs
    train_simulator   fit a simulator (TrainSpec) -> checkpoint folder
    test_simulator    score a checkpoint on held-out runs (TestSpec) -> metrics.json
    score_baselines   TracIn-CP / Grad-Dot on held-out runs -> metrics.json
"""

from .baselines import BaselineSpec, score_baselines
from .runs import RunSpec, default_metrics, make_runs, preprocess, processed_dirs, sort_by_seed, task_files
from .simulate import TestSpec, TrainResult, TrainSpec, default_run_name, test_simulator, train_simulator

__all__ = ["BaselineSpec", "RunSpec", "TestSpec", "TrainResult", "TrainSpec", "default_metrics", "default_run_name",
           "make_runs", "preprocess", "processed_dirs", "score_baselines", "sort_by_seed", "task_files",
           "test_simulator", "train_simulator"]
