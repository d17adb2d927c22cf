"""Rank training examples by their counterfactual influence on test examples, with a trained simulator.

    python influence.py --checkpoint output/rte/<run folder> --run_dir runs/rte/<a run> --top_k 10
    python influence.py --checkpoint ... --curriculum my_batches.json --init_value 2.3 --test_ids 0-9
    python influence.py --checkpoint ... --run_dir ... --what_if edited.json --self_influence

Sign convention: influence > 0 means the training example HELPS the test example (its presence lowers the
loss, or raises BLEU / ROUGE). `python influence.py --help` lists every flag; the work is done by
gptfluence.pipeline.influence.influence_report.
"""


def main(argv=None):
    from gptfluence.cli import influence
    return influence.main(argv)


if __name__ == "__main__":
    from gptfluence.runtime import run_main
    run_main(main)
