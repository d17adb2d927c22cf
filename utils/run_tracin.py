"""Score the gradient baselines TracIn-CP and Grad-Dot on held-out runs (loss only).

    python utils/run_tracin.py --task rte --method tracin_cp --num_checkpoints 10 \
        --train_run_dirs <runs> --test_run_dirs <runs>
    python utils/run_tracin.py --help      # every flag (gptfluence/cli/run_tracin.py)
"""


def main(argv=None):
    from gptfluence.cli import run_tracin
    return run_tracin.main(argv)


if __name__ == "__main__":
    from gptfluence.runtime import run_main
    run_main(main)
