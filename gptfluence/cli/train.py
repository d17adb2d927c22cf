"""Train a simulator (Simfluence or GPTfluence) on GPTDynamics runs.

    python train.py --sim_name enc_sim --task rte --metric loss
    python train.py --sim_name original --task rte --data_paths_dict runs.json

The data paths at the top of train.py are editable; --data_paths_dict, --train_data_path and
--eval_data_path override them. Settings left out come from the simulator's own defaults (the same ones
the shell scripts, reproduce.sh and the experiments use). Writes <output_dir>/<task>/<run name>/ with
spec.json, train.log, best-checkpoint.pt, last-checkpoint.pt, history.json and env.json.
"""

from __future__ import annotations

from . import optional_int, parser, str2bool

# what the released --sim_name values map to here
SIM_ALIASES = {"enc_cp_sim": "enc_sim"}


def build_parser():
    p = parser(__doc__, "train.py")
    a = p.add_argument
    a("--sim_name", default="enc_sim",
      help="simulator: original (Simfluence), vec_sim, enc_sim, enc_cp_sim, norder_enc_sim, gpt_sim, or a baseline "
           "(no_change, mean_trajectory); see gptfluence/simulators")
    a("--task", default="rte", help="key of the data paths dict, i.e. which runs (rte, sst2, boolq, webnlg, "
      "wmt16_de_en, flan)")
    a("--dataset_name", default=None, help="key of the sample-file tables: which texts (default: --task)")
    a("--metric", default="loss", help="metric to simulate: loss, bleu, rougeL, rouge1, rouge2")
    a("--data_paths_dict", default=None, help="JSON file or inline JSON: task -> run dirs, or {train, test}")
    a("--train_data_path", default=None, help="training pool sample file (overrides the table in train.py)")
    a("--eval_data_path", default=None, help="test set sample file (overrides the table in train.py)")
    a("--test_example_start_id", default=None, help="first test id (inclusive); comma-separated for several ranges")
    a("--test_example_end_id", default=None, help="last test id (inclusive); comma-separated for several ranges")
    a("--train_example_nums", type=int, default=None, help="expected training pool size (checked against the file)")
    a("--test_example_nums", type=int, default=None, help="expected test set size (checked against the file)")
    a("--max_epoch", type=int, default=None, help="maximum training epochs (default: the simulator's)")
    a("--train_bs", type=int, default=None, help="transitions per minibatch (default: the simulator's)")
    a("--lr", type=float, default=None, help="peak learning rate (default: the simulator's)")
    a("--weight_decay", type=float, default=None, help="Adam coupled L2 weight decay (default: the simulator's)")
    a("--warmup_steps", type=int, default=None, help="linear warm-up steps, then linear decay to 0")
    a("--hyper_parameter", type=float, default=1e-5, help="Simfluence L2 lambda on its free factors")
    a("--seed", type=int, default=42, help="seed of the validation split, the initialisation and the shuffling")
    a("--valid_epoch_interval", type=int, default=1, help="validate by full rollout every k epochs")
    a("--save_epoch_interval", type=int, default=1, help="write last-checkpoint.pt every k epochs")
    a("--patience", type=int, default=None, help="early stop after this many validations without improvement")
    a("--valid_num", type=int, default=2, help="runs held out for validation (seeded shuffle)")
    a("--test_num", type=int, default=0, help="runs after the validation ones held out as test runs (not trained on)")
    a("--step_thres", type=optional_int, default=None, help="use only recorded steps <= this step")
    a("--order_n", type=optional_int, default=None, help="Markov order n (default 1)")
    a("--concate", type=str2bool, nargs="?", const=True, default=None,
      help="norder_enc_sim head: True = concat head (released), False = dot-product form")
    a("--cp_interval", type=optional_int, default=None, help="use metrics recorded every k steps only")
    a("--eval_task", default=None, help="released flag of the original simulator (recorded only)")
    a("--model_size", default=None, help="label of the GPT that made the runs (gpt_sim: recorded in the name)")
    a("--separate_proj", action="store_true", help="enc_sim: separate train/test MLPs (the paper's f != g)")
    a("--encoder", default=None, help="text encoder name or path (default all-MiniLM-L6-v2; gpt_sim: a causal LM)")
    a("--pooling", default=None, help="cls (default), mean, or last (default for gpt_sim)")
    a("--max_length", type=int, default=512, help="encoder max tokens")
    a("--embedding_cache", default="default", help="on-disk embedding cache folder (default: $GPTFLUENCE_CACHE/"
      "embeddings, else .cache/gptfluence/embeddings)")
    a("--output_dir", default="output", help="results root; the run goes to <output_dir>/<task>/<run name>")
    a("--run_name", default=None, help="folder name of this run (default: the released naming pattern)")
    a("--device", default="cpu", help="cpu, cuda, cuda:N or a GPU index")
    a("--threads", type=int, default=1, help="torch CPU threads (1 is fastest for simulators; 0 = torch default)")
    a("--resume", action="store_true", help="continue from last-checkpoint.pt in the run folder")
    a("--overwrite", action="store_true", help="replace an existing run folder made with other settings")
    a("--allow_nonfinite", action="store_true", help="mask NaN/inf values in the runs instead of refusing them")
    a("--no_progress", action="store_true", help="no progress bars")
    return p


def spec_from_args(args, data_paths: dict, train_files: dict, eval_files: dict):
    """A TrainSpec from parsed flags and the editable tables of train.py. The settings are checked first, then
    the runs, then the sample files (cheapest first; no work before all of them pass)."""
    from dataclasses import replace

    from ..datapaths import load_data_paths_dict, train_runs
    from ..io import DataError
    from ..pipeline.simulate import check_settings
    sim = SIM_ALIASES.get(args.sim_name, args.sim_name)
    if args.eval_task is not None and sim != "original":
        raise ValueError("--eval_task applies to --sim_name original only")
    if args.sim_name == "tracincp_sim":
        raise ValueError("tracincp_sim is not trained: score TracIn-CP with `python test_tracincp.py` or "
                         "`python utils/run_tracin.py --method tracin_cp`")
    spec = _spec(args, sim)
    check_settings(replace(spec, **{k: v for k, v in spec.resolved_hyper().items()}))
    runs, tests = train_runs(load_data_paths_dict(args.data_paths_dict, data_paths), args.task)
    dataset = args.dataset_name or args.task
    files = {}
    for flag, table in (("train_data_path", train_files), ("eval_data_path", eval_files)):
        files[flag] = getattr(args, flag) or table.get(dataset)
        if files[flag] is None:
            raise DataError(f"no default --{flag} for dataset {dataset!r}; give the sample file")
    return replace(spec, run_dirs=runs, test_dirs=tests, train_file=files["train_data_path"],
                   eval_file=files["eval_data_path"])


def _spec(args, sim: str):
    from ..datapaths import parse_test_ranges
    from ..pipeline import TrainSpec
    order = args.order_n if args.order_n is not None else 1
    return TrainSpec(
        sim_name=sim, task=args.task, metric=args.metric, valid_num=args.valid_num, test_num=args.test_num,
        test_ids=parse_test_ranges(args.test_example_start_id, args.test_example_end_id),
        train_example_nums=args.train_example_nums, test_example_nums=args.test_example_nums, order=order,
        concat=True if args.concate is None else args.concate, separate_proj=args.separate_proj,
        encoder=args.encoder, pooling=args.pooling, max_length=args.max_length, l2=args.hyper_parameter, lr=args.lr,
        weight_decay=args.weight_decay, max_epoch=args.max_epoch, train_bs=args.train_bs,
        warmup_steps=args.warmup_steps, patience=args.patience, valid_every=args.valid_epoch_interval,
        save_every=args.save_epoch_interval, seed=args.seed, step_thres=args.step_thres,
        cp_interval=args.cp_interval if args.cp_interval is not None else 1, model_size=args.model_size,
        output_dir=args.output_dir, run_name=args.run_name, embedding_cache=args.embedding_cache, device=args.device,
        resume=args.resume, overwrite=args.overwrite, allow_nonfinite=args.allow_nonfinite,
        progress=not args.no_progress)


def main(argv=None, data_paths: dict | None = None, train_files: dict | None = None,
         eval_files: dict | None = None):
    """Parse, train, print where the checkpoint is. Returns the run folder."""
    from ..pipeline import train_simulator
    from ..runtime import set_threads
    args = build_parser().parse_args(argv)
    set_threads(args.threads)
    spec = spec_from_args(args, data_paths or {}, train_files or {}, eval_files or {})
    res = train_simulator(spec)
    best = "n/a (no validation runs)" if not res.history or "valid_mse" not in res.history[-1] else \
        f"{res.best_val:.5g} at epoch {res.best_epoch}"
    print(f"best validation all-steps MSE: {best}")
    print(f"checkpoint: {res.out_dir / 'best-checkpoint.pt'}")
    return res.out_dir
