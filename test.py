"""Score a trained simulator on held-out runs by autoregressive rollout.

    python test.py --checkpoint output/rte/enc_sim_loss_seed42

Each test run is rolled out from its true first value along its real curriculum. Writes
<save_dir>/metrics.json (all_steps_mse_mean/std, all_steps_mae_mean/std,
final_step_spearman_mean/std, counts), pred_and_gt_<metric>_trajectories.out (JSON lines
{"run", "id", "steps", "gt", "pred"}), and trajectory plots; prints a summary.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger("gptfluence.test")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--checkpoint", required=True, help="checkpoint file, or a run folder holding best-checkpoint.pt")
    a("--data_paths_dict", default=None, help="JSON file or inline JSON: task -> {train, test} run dirs "
      "(default: the checkpoint's, else train.py's DATA_PATHS_DICT)")
    a("--test_run_dirs", nargs="+", default=None, help="processed test run dirs (overrides the dict)")
    a("--test_num", type=int, default=None, help="use the first N test runs (default all)")
    a("--train_data_path", default=None, help="training pool file (default: the checkpoint's; another file = "
      "examples the simulator never saw, feature simulators only)")
    a("--eval_data_path", default=None, help="test set file (default: the checkpoint's)")
    a("--test_example_start_id", default=None, help="first test id, inclusive (default: the checkpoint's)")
    a("--test_example_end_id", default=None, help="last test id, inclusive (default: the checkpoint's)")
    a("--sim_name", default=None, help="if given, must match the checkpoint")
    a("--metric", default=None, help="if given, must match the checkpoint")
    a("--task", default=None, help="if given, must match the checkpoint")
    a("--encoder", default=None, help="if given, must match the checkpoint")
    a("--train_example_nums", type=int, default=None, help="if given, must match the checkpoint")
    a("--test_example_nums", type=int, default=None, help="if given, must match the checkpoint")
    a("--save_dir", default=None, help="output folder (default <checkpoint folder>/test)")
    a("--diverge_bound", type=float, default=1e4, help="|prediction| above this counts as diverged")
    a("--plot_examples", type=int, default=6, help="test examples to plot (0: none)")
    a("--embedding_cache", default=".cache/gptfluence/embeddings", help="on-disk embedding cache folder")
    a("--device", default="cpu", help="cpu, cuda, cuda:N or a GPU index")
    a("--allow_nonfinite", action="store_true", help="skip NaN/inf values in the runs instead of refusing them")
    a("--no_progress", action="store_true", help="no progress bars")
    return p.parse_args(argv)


def test_run_dirs(args, ckpt) -> list[str]:
    from gptfluence.cli import load_data_paths_dict, task_run_dirs
    if args.test_run_dirs:
        dirs = args.test_run_dirs
        for d in dirs:
            if not Path(d).is_dir():
                from gptfluence.io import DataError
                raise DataError(f"{d}: test run directory not found (expected a processed run dir)")
    else:
        cargs = ckpt["args"]
        if args.data_paths_dict is None and cargs.get("data_paths_dict") is None:
            import train
            paths = train.DATA_PATHS_DICT
        else:
            paths = load_data_paths_dict(args.data_paths_dict or cargs.get("data_paths_dict"), {})
        dirs = task_run_dirs(paths, cargs["task"], "test")
    return dirs[:args.test_num] if args.test_num else dirs


def simulator_for_examples(ckpt, train_path, eval_path, args, device):
    """The checkpoint's simulator, re-embedding the examples if the sample files differ from training."""
    from gptfluence.checkpoint import simulator_from_checkpoint
    from gptfluence.cli import example_embeddings
    from gptfluence.io import DataError, file_fingerprint, load_samples
    sim = simulator_from_checkpoint(ckpt, device)
    data = ckpt["data"]
    same = {"train": file_fingerprint(train_path) == data["train_file_fingerprint"],
            "eval": file_fingerprint(eval_path) == data["eval_file_fingerprint"]}
    if all(same.values()):
        return sim
    changed = [k for k, v in same.items() if not v]
    if not sim.uses_features:
        raise DataError(f"{ckpt['path']}: {sim.name} has free factors per example id and cannot simulate examples "
                        f"it never saw; the {' and '.join(changed)} sample file(s) differ from those it was "
                        "trained on")
    enc = ckpt["encoder"]
    log.info("%s sample file(s) differ from training: embedding their texts with %s", "/".join(changed),
             enc["encoder"])
    new = {}
    for key, path in (("train", train_path), ("eval", eval_path)):
        if not same[key]:
            new[key] = example_embeddings(load_samples(path), enc["encoder"], enc["pooling"], enc["max_length"],
                                          args.embedding_cache, device, not args.no_progress)
    sim.set_examples(train_emb=new.get("train"), test_emb=new.get("eval"))
    return sim


def refuse_unseen_ids(ckpt, rs) -> None:
    """A simulator with free factors per example id (Simfluence) cannot simulate ids it never trained on."""
    import torch
    from gptfluence.io import DataError
    from gptfluence.simulators import simulator_class
    if simulator_class(ckpt["sim_name"]).uses_features:
        return
    data = ckpt["data"]
    for what, ids, seen in (("test", rs.test_ids, data.get("seen_test_ids")),
                            ("training", torch.unique(rs.batches[:, 1:][rs.batches[:, 1:] >= 0]),
                             data.get("seen_train_ids"))):
        if seen is None:
            continue
        unseen = sorted(set(ids.tolist()) - set(seen))
        if unseen:
            raise DataError(f"{ckpt['path']}: {ckpt['sim_name']} has free factors per example id and never saw "
                            f"{len(unseen)} of these {what} ids ({unseen[:8]}{' ...' if len(unseen) > 8 else ''}): "
                            "it cannot simulate them (a feature-based simulator such as enc_sim can)")


def write_trajectories(path, names, steps, test_ids, true, pred, mask) -> None:
    from gptfluence.io import write_jsonl
    steps = steps.tolist()

    def rows():
        for r, name in enumerate(names):
            for n, tid in enumerate(test_ids.tolist()):
                gt = [float(v) if m else None for v, m in zip(true[r, n].tolist(), mask[r, n].tolist())]
                yield {"run": Path(name).name, "id": tid, "steps": steps, "gt": gt,
                       "pred": [float(v) for v in pred[r, n].tolist()]}
    write_jsonl(path, rows())


def main(argv=None):
    args = parse_args(argv)
    import torch
    from gptfluence.checkpoint import check_compatible, load_checkpoint
    from gptfluence.cli import finish_logging, parse_test_ranges, pick_device, setup_logging
    from gptfluence.io import DataError, load_samples, write_json
    from gptfluence.metrics import evaluate, format_summary
    from gptfluence.plots import plot_trajectories
    from gptfluence.rollout import rollout
    from gptfluence.runs import load_runs, validate_ids
    from gptfluence.training import Dynamics

    ckpt = load_checkpoint(args.checkpoint)
    cargs = ckpt["args"]
    check_compatible(ckpt, sim_name=args.sim_name, metric=args.metric, task=args.task, encoder=args.encoder,
                     n_train=args.train_example_nums, n_test=args.test_example_nums)
    save_dir = Path(args.save_dir or Path(ckpt["path"]).parent / "test")
    save_dir.mkdir(parents=True, exist_ok=True)
    log_handler = setup_logging(save_dir / "test.log")
    device = pick_device(args.device)
    metric = cargs["metric"]

    train_path = args.train_data_path or cargs["train_data_path"]
    eval_path = args.eval_data_path or cargs["eval_data_path"]
    n_train, n_test = len(load_samples(train_path)), len(load_samples(eval_path))
    if args.test_example_start_id is None and args.test_example_end_id is None:
        test_ids = parse_test_ranges(cargs.get("test_example_start_id"), cargs.get("test_example_end_id"))
    else:
        test_ids = parse_test_ranges(args.test_example_start_id, args.test_example_end_id)
    dirs = test_run_dirs(args, ckpt)
    rs = load_runs(dirs, metric=metric, test_ids=test_ids, allow_nonfinite=args.allow_nonfinite)
    validate_ids(rs, n_train, n_test, train_path, eval_path)
    refuse_unseen_ids(ckpt, rs)
    sim = simulator_for_examples(ckpt, train_path, eval_path, args, device)
    sim.eval()

    data = Dynamics.from_runset(rs, device)
    if cargs.get("step_thres") is not None:
        data = data.up_to(cargs["step_thres"])
    data = data.every(cargs.get("cp_interval") or 1)
    pred = rollout(sim, data.batches, data.values[..., 0], data.test_rows).cpu()
    true, mask = data.values.cpu(), data.mask.cpu()
    m = evaluate(pred, true, mask, args.diverge_bound)
    m.update(metric=metric, sim_name=ckpt["sim_name"], task=cargs["task"], checkpoint=ckpt["path"],
             order_n=cargs.get("order_n", 1), cp_interval=cargs.get("cp_interval", 1),
             separate_proj=bool(cargs.get("separate_proj")),
             test_runs=[str(d) for d in dirs], train_data_path=train_path, eval_data_path=eval_path)
    write_json(save_dir / "metrics.json", m)
    write_trajectories(save_dir / f"pred_and_gt_{metric}_trajectories.out", dirs, data.steps.cpu(),
                       rs.test_ids, true, pred, mask)
    if args.plot_examples > 0:
        k = min(args.plot_examples, len(rs.test_ids))
        curves = [{"title": f"{Path(dirs[0]).name[-24:]} id {int(rs.test_ids[n])}",
                   "gt": [float(v) if ok else None for v, ok in zip(true[0, n].tolist(), mask[0, n].tolist())],
                   "pred": {ckpt["sim_name"]: pred[0, n].tolist()}} for n in range(k)]
        plot_trajectories(save_dir / f"pred_vs_gt_{metric}.png", data.steps.tolist(), curves, metric)
    print(format_summary(m, metric))
    print(f"metrics: {save_dir / 'metrics.json'}")
    finish_logging(log_handler)
    return m


if __name__ == "__main__":
    from gptfluence.cli import run_main
    run_main(main)
