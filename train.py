"""Train a simulator (Simfluence or GPTfluence) on GPTDynamics runs.

    python train.py --sim_name enc_sim --task rte --metric loss
    python train.py --sim_name original --task rte --data_paths_dict runs.json

The data paths below are editable; --data_paths_dict, --train_data_path and
--eval_data_path override them. Writes <output_dir>/<task>/<run name>/ with
args.json, train.log, best-checkpoint.pt and last-checkpoint.pt.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
from pathlib import Path

# --- editable: where the processed runs and the task sample files are -------------------------------
# task -> {"train": run dirs (globs allowed), "test": run dirs}. The simulator trains on "train"
# (valid_num of them, chosen by a seeded shuffle, validate); test.py scores "test".
DATA_PATHS_DICT = {
    task: {"train": [f"runs/{task}/*_seed-{s}" for s in range(1, 28)],
           "test": [f"runs/{task}/*_seed-{s}" for s in range(28, 33)]}
    for task in ("rte", "sst2", "boolq", "webnlg")
}
DATA_PATHS_DICT["wmt16_de_en"] = {"train": [f"runs/wmt16_de_en/*_seed-{s}" for s in range(10, 37)],
                                  "test": [f"runs/wmt16_de_en/*_seed-{s}" for s in range(5, 10)]}
DATA_PATHS_DICT["flan"] = {"train": [f"runs/flan/*_seed-{s}" for s in range(10, 37)],
                           "test": [f"runs/flan/*_seed-{s}" for s in range(5, 10)]}
# task -> training pool / test set sample files (JSON lines: id, input, context)
TRAIN_DATA_PATHS = {
    "rte": "data/sft_tasks/rte/rte_0_199_train.json",
    "sst2": "data/sft_tasks/sst2/sst2_train_0-199.json",
    "boolq": "data/sft_tasks/boolq/boolq_train_0-199.json",
    "webnlg": "data/sft_tasks/webnlg/webnlg_train_0-199.json",
    "wmt16_de_en": "data/sft_tasks/wmt16_de_en/wmt16_de_en_train_0-199.json",
    "flan": "data/it_tasks/flan_train_0_1599.json",
}
EVAL_DATA_PATHS = {
    "rte": "data/sft_tasks/rte/rte_0_276_eval.json",
    "sst2": "data/sft_tasks/sst2/sst2_validation_0-199.json",
    "boolq": "data/sft_tasks/boolq/boolq_validation_0-199.json",
    "webnlg": "data/sft_tasks/webnlg/webnlg_dev_0-177.json",
    "wmt16_de_en": "data/sft_tasks/wmt16_de_en/wmt16_de_en_test_0-199.json",
    "flan": "data/it_tasks/flan_eval_0_1054.json",
}
# -------------------------------------------------------------------------------------------------------

log = logging.getLogger("gptfluence.train")

# settings that define what a checkpoint is; a resumed or reused output folder must agree on them
IDENTITY_ARGS = ("sim_name", "task", "metric", "order_n", "concate", "separate_proj", "encoder", "pooling",
                 "max_length", "hyper_parameter", "seed", "cp_interval", "step_thres", "test_example_start_id",
                 "test_example_end_id", "valid_num", "train_bs", "lr", "weight_decay", "train_data_path",
                 "eval_data_path", "run_dirs")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--sim_name", default="enc_sim", help="simulator: original (Simfluence), enc_sim, norder_enc_sim, gpt_sim")
    a("--task", default="rte", help="task key of the data paths dicts (rte, sst2, boolq, webnlg, wmt16_de_en, flan)")
    a("--dataset_name", default=None, help="alias of --task (released flag name)")
    a("--metric", default="loss", help="metric to simulate: loss, bleu, rougeL, rouge1, rouge2")
    a("--data_paths_dict", default=None, help="JSON file or inline JSON: task -> run dirs or {train, test}")
    a("--train_data_path", default=None, help="training pool sample file (overrides TRAIN_DATA_PATHS)")
    a("--eval_data_path", default=None, help="test set sample file (overrides EVAL_DATA_PATHS)")
    a("--test_example_start_id", default=None, help="first test id (inclusive); comma-separated for several ranges")
    a("--test_example_end_id", default=None, help="last test id (inclusive); comma-separated for several ranges")
    a("--train_example_nums", type=int, default=None, help="expected training pool size (checked against the file)")
    a("--test_example_nums", type=int, default=None, help="expected test set size (checked against the file)")
    a("--max_epoch", type=int, default=300, help="maximum training epochs")
    a("--train_bs", type=int, default=128, help="transitions per minibatch")
    a("--lr", type=float, default=1e-4, help="peak learning rate (paper: 1e-4 fine-tuning, Simfluence 1e-3)")
    a("--weight_decay", type=float, default=1e-5, help="Adam coupled L2 weight decay")
    a("--warmup_steps", type=int, default=200, help="linear warm-up steps, then linear decay to 0")
    a("--hyper_parameter", type=float, default=1e-5, help="Simfluence L2 lambda on its free factors")
    a("--seed", type=int, default=42, help="seed for the split, initialisation and shuffling")
    a("--valid_epoch_interval", type=int, default=1, help="validate by full rollout every k epochs")
    a("--save_epoch_interval", type=int, default=1, help="write last-checkpoint.pt every k epochs")
    a("--patience", type=int, default=10, help="early stop after this many validations without improvement")
    a("--valid_num", type=int, default=2, help="training runs held out for validation (seeded shuffle)")
    a("--test_num", type=int, default=5, help="test runs (used by test.py; recorded here)")
    a("--step_thres", type=int, default=None, help="use only recorded steps <= this step")
    a("--order_n", type=int, default=1, help="Markov order n (norder_enc_sim; enc_sim with n > 1 = dot-product form)")
    a("--concate", type=int, default=1, help="norder_enc_sim head: 1 = concat head (released)")
    a("--cp_interval", type=int, default=1, help="use metrics recorded every k steps only")
    a("--model_size", default=None, help="label of the GPT model that made the runs (recorded in args.json)")
    a("--separate_proj", action="store_true", help="enc_sim: separate train/test MLPs (paper's f != g)")
    a("--encoder", default=None, help="text encoder name or path (default all-MiniLM-L6-v2; gpt_sim: a causal LM)")
    a("--pooling", default=None, help="cls (default), mean, or last (default for gpt_sim)")
    a("--max_length", type=int, default=512, help="encoder max tokens")
    a("--embedding_cache", default=".cache/gptfluence/embeddings", help="on-disk embedding cache folder")
    a("--output_dir", default="output", help="results root; the run goes to <output_dir>/<task>/<run name>")
    a("--run_name", default=None, help="folder name of this run (default from the settings)")
    a("--device", default="cpu", help="cpu, cuda, cuda:N or a GPU index")
    a("--resume", action="store_true", help="continue from last-checkpoint.pt in the run folder")
    a("--overwrite", action="store_true", help="replace an existing run folder made with other settings")
    a("--allow_nonfinite", action="store_true", help="skip NaN/inf values in the runs instead of refusing them")
    a("--no_progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if args.dataset_name:
        args.task = args.dataset_name
    return args


def default_run_name(args) -> str:
    name = f"{args.sim_name}_{args.metric}"
    if args.order_n != 1:
        name += f"_n{args.order_n}"
    if args.cp_interval != 1:
        name += f"_cp{args.cp_interval}"
    if args.model_size:
        name += f"_{args.model_size}"
    return f"{name}_seed{args.seed}"


def resolve_inputs(args):
    """Fill in the sample files, encoder defaults and run dirs; returns the train run dirs."""
    from gptfluence.cli import load_data_paths_dict, task_run_dirs
    from gptfluence.io import DataError
    for flag, table in (("train_data_path", TRAIN_DATA_PATHS), ("eval_data_path", EVAL_DATA_PATHS)):
        if getattr(args, flag) is None:
            if args.task not in table:
                raise DataError(f"no default --{flag} for task {args.task!r}; give the sample file")
            setattr(args, flag, table[args.task])
    if args.sim_name == "gpt_sim":
        args.pooling = args.pooling or "last"
        if args.encoder is None:
            from gptfluence.basemodel import default_model_path
            args.encoder = str(default_model_path())
    else:
        args.pooling = args.pooling or "cls"
        if args.encoder is None:
            from gptfluence.encoders import DEFAULT_ENCODER
            args.encoder = DEFAULT_ENCODER
    paths = load_data_paths_dict(args.data_paths_dict, DATA_PATHS_DICT)
    return task_run_dirs(paths, args.task, "train")


def check_run_folder(out_dir: Path, args) -> None:
    """Refuse to mix this run with a folder made with other settings (unless --overwrite)."""
    from gptfluence.io import DataError, read_json
    old_path = out_dir / "args.json"
    if not old_path.exists() or args.overwrite:
        return
    old = read_json(old_path)
    diffs = [f"{k}: folder has {old.get(k)!r}, now {getattr(args, k)!r}" for k in IDENTITY_ARGS
             if k in old and old.get(k) != getattr(args, k)]
    if diffs:
        raise DataError(f"{out_dir} holds a run made with other settings ({'; '.join(diffs)}); "
                        "use another --output_dir/--run_name or --overwrite")


def simulator_spec(args) -> tuple[str, dict]:
    """Registry name and constructor config of the simulator the flags ask for."""
    if args.sim_name == "original":
        return "original", {"n_train": args.n_train, "n_test": args.n_test, "order": args.order_n,
                            "l2": args.hyper_parameter, "batch_size": args.batch_size}
    if args.sim_name == "norder_enc_sim":
        if args.concate:
            return "norder_enc_sim", {"order": args.order_n}
        return "enc_sim", {"order": args.order_n, "separate_proj": args.separate_proj}  # dot-product form
    return args.sim_name, {"order": args.order_n, "separate_proj": args.separate_proj}


def build_sim(args, train_samples, test_samples, device):
    """The simulator the flags ask for (feature simulators: embeddings computed or read from the cache)."""
    from gptfluence.checkpoint import build_simulator
    from gptfluence.cli import example_embeddings
    name, cfg = simulator_spec(args)
    if name == "original":
        return build_simulator(name, cfg)
    emb = [example_embeddings(s, args.encoder, args.pooling, args.max_length, args.embedding_cache, device,
                              not args.no_progress) for s in (train_samples, test_samples)]
    return build_simulator(name, cfg, *emb)


def main(argv=None):
    args = parse_args(argv)
    import torch
    from gptfluence.checkpoint import BEST, LAST, save_checkpoint
    from gptfluence.cli import finish_logging, parse_test_ranges, pick_device, setup_logging
    from gptfluence.io import DataError, file_fingerprint, load_samples, write_json
    from gptfluence.runs import load_runs, validate_ids
    from gptfluence.simulators import simulator_class
    from gptfluence.training import Dynamics, TrainConfig, fit

    simulator_class(args.sim_name)  # unknown name -> error listing the known ones
    run_dirs = resolve_inputs(args)
    args.run_dirs = run_dirs
    test_ids = parse_test_ranges(args.test_example_start_id, args.test_example_end_id)
    out_dir = Path(args.output_dir) / args.task / (args.run_name or default_run_name(args))
    check_run_folder(out_dir, args)
    out_dir.mkdir(parents=True, exist_ok=True)
    log_handler = setup_logging(out_dir / "train.log")
    device = pick_device(args.device)
    random.seed(args.seed)
    torch.manual_seed(args.seed)

    train_samples, test_samples = load_samples(args.train_data_path), load_samples(args.eval_data_path)
    for flag, want, have, path in (("--train_example_nums", args.train_example_nums, len(train_samples),
                                    args.train_data_path),
                                   ("--test_example_nums", args.test_example_nums, len(test_samples),
                                    args.eval_data_path)):
        if want is not None and want != have:
            raise DataError(f"{path}: holds {have} examples but {flag} is {want}")
    rs = load_runs(run_dirs, metric=args.metric, test_ids=test_ids, allow_nonfinite=args.allow_nonfinite)
    validate_ids(rs, len(train_samples), len(test_samples), args.train_data_path, args.eval_data_path)
    data = Dynamics.from_runset(rs, device)
    if args.step_thres is not None:
        data = data.up_to(args.step_thres)
    data = data.every(args.cp_interval)
    # training examples per transition (Simfluence starts at alpha = 1 / this, the identity dynamics)
    args.batch_size = max(1, int((data.batches[:, 1:] >= 0).sum(-1).max()))

    R = data.num_runs
    if args.valid_num >= R:
        raise DataError(f"--valid_num {args.valid_num} leaves no training run (only {R} runs)")
    order = list(range(R))
    random.Random(args.seed).shuffle(order)
    valid_idx, train_idx = sorted(order[:args.valid_num]), sorted(order[args.valid_num:])
    train, valid = data.runs(train_idx), (data.runs(valid_idx) if valid_idx else None)
    log.info("%s/%s: %d training runs, %d validation runs (%s), %d test examples, %d recorded steps",
             args.task, args.metric, len(train_idx), len(valid_idx),
             ", ".join(Path(run_dirs[i]).name for i in valid_idx), len(rs.test_ids), data.steps.numel())

    args.n_train, args.n_test = len(train_samples), len(test_samples)
    sim = build_sim(args, train_samples, test_samples, device).to(device)
    args_dict = {k: v for k, v in vars(args).items()}
    write_json(out_dir / "args.json", args_dict)
    cfg = TrainConfig(lr=args.lr, weight_decay=args.weight_decay, max_epoch=args.max_epoch, train_bs=args.train_bs,
                      warmup_steps=args.warmup_steps, patience=args.patience,
                      valid_epoch_interval=args.valid_epoch_interval, save_epoch_interval=args.save_epoch_interval,
                      seed=args.seed, show_progress=not args.no_progress)
    base_payload = {
        "sim_name": sim.name, "sim_config": sim.config(), "args": args_dict,
        "encoder": None if not sim.uses_features else
        {"encoder": args.encoder, "pooling": args.pooling, "max_length": args.max_length},
        "n_train": len(train_samples), "n_test": len(test_samples),
        "data": {"train_file": args.train_data_path, "train_file_fingerprint": file_fingerprint(args.train_data_path),
                 "eval_file": args.eval_data_path, "eval_file_fingerprint": file_fingerprint(args.eval_data_path),
                 "train_runs": [run_dirs[i] for i in train_idx], "valid_runs": [run_dirs[i] for i in valid_idx],
                 # what the simulator saw: a free-parameter simulator can say nothing about other ids
                 "seen_test_ids": rs.test_ids.tolist(),
                 "seen_train_ids": torch.unique(train.batches[train.batches >= 0]).tolist()},
    }

    def save(kind, state, opt, sched):
        payload = dict(base_payload, state_dict={k: v.detach().cpu() for k, v in sim.state_dict().items()},
                       epoch=state.epoch, best_val=state.best_val, train_state=vars(state).copy())
        if kind == "last":
            payload.update(optimizer=opt.state_dict(), scheduler=sched.state_dict())
        save_checkpoint(out_dir / (BEST if kind == "best" else LAST), payload)

    resume_from = None
    if args.resume and (out_dir / LAST).exists():
        resume_from = torch.load(out_dir / LAST, map_location=device, weights_only=False)
        sim.load_state_dict(resume_from["state_dict"])
    state = fit(sim, train, valid, cfg, save=save, resume_from=resume_from)
    write_json(out_dir / "history.json", state.history)
    best = "n/a" if valid is None else f"{state.best_val:.5g} at epoch {state.best_epoch}"
    print(f"best validation all-steps MSE: {best}")
    print(f"checkpoint: {out_dir / BEST}")
    finish_logging(log_handler)
    return out_dir


if __name__ == "__main__":
    from gptfluence.cli import run_main
    run_main(main)
