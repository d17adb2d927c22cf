"""Preprocess fine-tuning raw runs: test loss trajectories + training batches.

    python utils/construct_runs-data.py --raw_root gptdynamics/runs_raw --task rte --output_root runs

Every flag: --help (gptfluence/cli/construct_runs.py); the logic lives in gptfluence/preprocess.py.
"""


def main(argv=None):
    from gptfluence.cli import construct_runs
    return construct_runs.main(argv, "construct_runs-data")


if __name__ == "__main__":
    from gptfluence.runtime import run_main
    run_main(main)
