"""Score a trained simulator on held-out runs by autoregressive rollout.

    python test.py --checkpoint output/rte/<run folder>
    python test.py --task rte --metric loss --sim_name enc_sim --dataset_name rte \
        --checkpoint_path output/rte/<run folder>/best-checkpoint.pt --save_dir output/rte/<run folder> \
        --test_example_start_id 0 --test_example_end_id 199

Edit the test runs below (or pass --data_paths_dict / --test_run_dirs). `python test.py --help` lists every
flag; the work is done by gptfluence.pipeline.test_simulator.
"""

# --- editable: task -> the held-out test runs (the layout of the GPTDynamics download) -----------------
_RUN = ("runs/{t}/output_{t}_bs-4_shot-200_sample-128_model-pythia-410m-deduped_lr-{lr}_weight-decay-0.001"
        "_epoch-3{x}_seed-{s}")
_FLAN = ("runs/flan/output_flan_bs-8_shot-200_sample-128_model-pythia-410m-deduped_lr-2e-7_weight-decay-0.001"
         "_epoch-3_loss-output-token_seed-{s}")
DATA_PATHS_DICT = {
    "rte": [_RUN.format(t="rte", lr="5e-7", x="", s=s) for s in range(28, 33)],
    "boolq": [_RUN.format(t="boolq", lr="5e-7", x="", s=s) for s in range(28, 33)],
    "sst2": [_RUN.format(t="sst2", lr="5e-7", x="_loss-last-token", s=s) for s in range(28, 33)],
    "webnlg": [_RUN.format(t="webnlg", lr="1e-6", x="_loss-output-token", s=s) for s in range(28, 33)],
    "wmt16_de_en": [_RUN.format(t="wmt16_de_en", lr="5e-7", x="_loss-output-token", s=s) for s in range(5, 10)],
    "flan": [_FLAN.format(s=s) for s in range(5, 10)],
}
# -------------------------------------------------------------------------------------------------------


def main(argv=None):
    from gptfluence.cli import test
    return test.main(argv, DATA_PATHS_DICT)


if __name__ == "__main__":
    from gptfluence.runtime import run_main
    run_main(main)
