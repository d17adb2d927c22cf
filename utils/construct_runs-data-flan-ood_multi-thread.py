"""Preprocess out-of-distribution runs for a FLAN simulator (-> runs/flan_ood/; training ids + 1200).

    python utils/construct_runs-data-flan-ood_multi-thread.py --raw_root gptdynamics/runs_raw

Every flag: --help (gptfluence/cli/construct_runs.py); the logic lives in gptfluence/preprocess.py.
"""


def main(argv=None):
    from gptfluence.cli import construct_runs
    return construct_runs.main(argv, "construct_runs-data-flan-ood_multi-thread")


if __name__ == "__main__":
    from gptfluence.runtime import run_main
    run_main(main)
