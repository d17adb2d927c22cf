"""Write task sample files (JSON lines, GPTDynamics names) for fine-tuning and instruction tuning.

    python utils/prepare_tasks.py                                  # built-in tasks -> data/sft_tasks/...
    python utils/prepare_tasks.py --help                           # every flag (gptfluence/cli/prepare_tasks.py)
"""


def main(argv=None):
    from gptfluence.cli import prepare_tasks
    return prepare_tasks.main(argv)


if __name__ == "__main__":
    from gptfluence.runtime import run_main
    run_main(main)
