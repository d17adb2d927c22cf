"""Make GPTDynamics-style training runs: fine-tune a causal LM over many curricula.

    python utils/make_runs.py --task rte --seeds 1-27 --output_dir gptdynamics/runs_raw
    python utils/make_runs.py --help            # every flag (gptfluence/cli/make_runs.py)
"""


def main(argv=None):
    from gptfluence.cli import make_runs
    return make_runs.main(argv)


if __name__ == "__main__":
    from gptfluence.runtime import run_main
    run_main(main)
