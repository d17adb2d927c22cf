"""Preprocess out-of-distribution runs for a FLAN simulator, + BLEU / ROUGE-L (-> runs/flan_ood/).

    python utils/construct_runs-data-flan-metric-ood-multi-thread.py --raw_root gptdynamics/runs_raw

Every flag: --help (gptfluence/cli/construct_runs.py); the logic lives in gptfluence/preprocess.py.
"""


def main(argv=None):
    from gptfluence.cli import construct_runs
    return construct_runs.main(argv, "construct_runs-data-flan-metric-ood-multi-thread")


if __name__ == "__main__":
    from gptfluence.runtime import run_main
    run_main(main)
