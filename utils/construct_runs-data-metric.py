"""Preprocess fine-tuning raw runs: loss, BLEU (0-100) and ROUGE (0-1) trajectories + batches.

    python utils/construct_runs-data-metric.py --raw_root gptdynamics/runs_raw --task webnlg --output_root runs

Every flag: --help (gptfluence/cli/construct_runs.py); the logic lives in gptfluence/preprocess.py.
"""


def main(argv=None):
    from gptfluence.cli import construct_runs
    return construct_runs.main(argv, "construct_runs-data-metric")


if __name__ == "__main__":
    from gptfluence.runtime import run_main
    run_main(main)
