"""Train a simulator (Simfluence or GPTfluence) on GPTDynamics runs.

    python train.py --sim_name enc_sim --task rte --metric loss
    python train.py --sim_name original --task rte --data_paths_dict runs.json

Edit the data paths below (or pass --data_paths_dict / --train_data_path / --eval_data_path).
`python train.py --help` lists every flag; the work is done by gptfluence.pipeline.train_simulator.
"""

# --- editable: where the processed runs and the task sample files are ---------------------------------
# The layout of the GPTDynamics download, extracted in the repo: runs/<task>/<run>, gptdynamics/*_tasks/.
_RUN = ("runs/{t}/output_{t}_bs-4_shot-200_sample-128_model-pythia-410m-deduped_lr-{lr}_weight-decay-0.001"
        "_epoch-3{x}_seed-{s}")
_FLAN = ("runs/flan/output_flan_bs-8_shot-200_sample-128_model-pythia-410m-deduped_lr-2e-7_weight-decay-0.001"
         "_epoch-3_loss-output-token_seed-{s}")
# task -> the runs the simulator trains on; --valid_num of them (seeded shuffle) validate, --test_num are held out
DATA_PATHS_DICT = {
    "rte": [_RUN.format(t="rte", lr="5e-7", x="", s=s) for s in range(1, 28)],
    "boolq": [_RUN.format(t="boolq", lr="5e-7", x="", s=s) for s in range(1, 28)],
    "sst2": [_RUN.format(t="sst2", lr="5e-7", x="_loss-last-token", s=s) for s in range(1, 28)],
    "webnlg": [_RUN.format(t="webnlg", lr="1e-6", x="_loss-output-token", s=s) for s in range(1, 28)],
    "wmt16_de_en": [_RUN.format(t="wmt16_de_en", lr="5e-7", x="_loss-output-token", s=s)
                    for s in (1, 10, 11, 17, 18, 19, 2, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 3, 33, 34, 35, 36, 4,
                              43, 44, 45, 46)],
    "flan": [_FLAN.format(s=s) for s in (*range(17, 27), 3, 34, 35, 36, 38, 39, 4, *range(40, 48), 49, 50)],
}
# --dataset_name -> the training pool and the test set (JSON lines: id, input, context)
TRAIN_DATA_PATHS = {
    "rte": "gptdynamics/sft_tasks/rte/rte_0_399_train.json",
    "boolq": "gptdynamics/sft_tasks/boolq/boolq_train_0-199.json",
    "sst2": "gptdynamics/sft_tasks/sst2/sst2_train_0-199.json",
    "webnlg": "gptdynamics/sft_tasks/webnlg/webnlg_train_0-399.json",
    "wmt16_de_en": "gptdynamics/sft_tasks/wmt16_de_en/wmt16_de_en_train_0-199.json",
    "flan": "gptdynamics/it_tasks/flan_train_0_1599.json",
}
EVAL_DATA_PATHS = {
    "rte": "gptdynamics/sft_tasks/rte/rte_0_276_eval.json",
    "boolq": "gptdynamics/sft_tasks/boolq/boolq_validation_0-199.json",
    "sst2": "gptdynamics/sft_tasks/sst2/sst2_validation_0-199.json",
    "webnlg": "gptdynamics/sft_tasks/webnlg/webnlg_dev_0-177.json",
    "wmt16_de_en": "gptdynamics/sft_tasks/wmt16_de_en/wmt16_de_en_test_0-199.json",
    "flan": "gptdynamics/it_tasks/flan_eval_0_1054.json",
}
# -------------------------------------------------------------------------------------------------------


def main(argv=None):
    from gptfluence.cli import train
    return train.main(argv, DATA_PATHS_DICT, TRAIN_DATA_PATHS, EVAL_DATA_PATHS)


if __name__ == "__main__":
    from gptfluence.runtime import run_main
    run_main(main)
