"""Preprocess instruction-tuning (FLAN) raw runs with worker processes: + BLEU / ROUGE-L trajectories.

    python utils/construct_runs-data-flan-metric-multi-thread.py --raw_root gptdynamics/runs_raw --workers 4

Every flag: --help (gptfluence/cli/construct_runs.py); the logic lives in gptfluence/preprocess.py.
"""


def main(argv=None):
    from gptfluence.cli import construct_runs
    return construct_runs.main(argv, "construct_runs-data-flan-metric-multi-thread")


if __name__ == "__main__":
    from gptfluence.runtime import run_main
    run_main(main)
