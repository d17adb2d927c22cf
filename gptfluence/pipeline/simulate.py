"""Train a simulator from a spec, and score a trained one on held-out runs.

    train_simulator(TrainSpec(...)) -> TrainResult      (what train.py, run_enc_sim.sh and the experiments call)
    test_simulator(TestSpec(...))   -> metrics dict     (what test.py, auto_test*.sh and the experiments call)

A TrainSpec holds every setting; the ones left None are filled from the simulator's own training defaults
(Simulator.train_defaults: the one home of those values). Settings are checked before any work.
"""

from __future__ import annotations

import logging
import math
import random
import shutil
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import torch

from .. import checkpoint as C
from ..encoders import DEFAULT_ENCODER, embed_samples
from ..io import DataError, load_samples, read_json, write_json
from ..metrics import evaluate, format_summary
from ..runs import load_runs, validate_ids
from ..runtime import finish_logging, relative, resolve_device, seed_everything, setup_logging, write_env_json
from ..simulators import simulator_class
from ..training import Dynamics, TrainConfig, fit, fit_closed_form

log = logging.getLogger("gptfluence.pipeline")

HYPER = ("lr", "weight_decay", "max_epoch", "train_bs", "warmup_steps", "patience")
# settings that define what a trained simulator is: a reused or resumed output folder must agree on them
IDENTITY = ("sim_name", "task", "metric", "run_dirs", "valid_num", "test_num", "train_file", "eval_file", "test_ids",
            "order", "concat", "separate_proj", "encoder", "pooling", "max_length", "l2", "lr", "weight_decay",
            "max_epoch", "train_bs", "warmup_steps", "seed", "step_thres", "cp_interval")
SPEC_FILE = "spec.json"


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------

@dataclass
class TrainSpec:
    """Everything train_simulator needs. Hyper-parameters left None come from the simulator's defaults.

    run_dirs: processed runs to train on; valid_num of them (chosen by a seeded shuffle) validate and the
    next test_num are held out (recorded in the checkpoint for test.py), the rest train.
    test_dirs: further held-out runs to record in the checkpoint (test.py scores them by default).
    test_ids: the test example ids simulated (None: all ids of the runs).
    """
    sim_name: str = "enc_sim"
    task: str = "rte"
    metric: str = "loss"
    run_dirs: list = field(default_factory=list)
    test_dirs: list = field(default_factory=list)
    valid_num: int = 2
    test_num: int = 0
    train_file: str = ""
    eval_file: str = ""
    test_ids: list | None = None
    train_example_nums: int | None = None
    test_example_nums: int | None = None
    order: int = 1
    concat: bool = True
    separate_proj: bool = False
    encoder: str | None = None
    pooling: str | None = None
    max_length: int = 512
    l2: float = 1e-5
    lr: float | None = None
    weight_decay: float | None = None
    max_epoch: int | None = None
    train_bs: int | None = None
    warmup_steps: int | None = None
    patience: int | None = None
    valid_every: int = 1
    save_every: int = 1
    seed: int = 42
    step_thres: int | None = None
    cp_interval: int = 1
    model_size: str | None = None
    output_dir: str = "output"
    run_name: str | None = None
    embedding_cache: str = "default"
    device: str = "cpu"
    resume: bool = False
    overwrite: bool = False
    allow_nonfinite: bool = False
    progress: bool = True

    def resolved(self) -> "TrainSpec":
        """A copy with every default filled in, checked (ValueError naming the setting)."""
        cls = simulator_class(self.sim_name)  # unknown name -> error listing the known ones
        defaults = cls.train_defaults
        s = replace(self, **{k: defaults[k] for k in HYPER if getattr(self, k) is None and k in defaults})
        if s.sim_name == "gpt_sim":
            s.pooling = s.pooling or "last"
            if s.encoder is None:
                from ..basemodel import default_model_path
                s.encoder = relative(default_model_path())
        elif cls.uses_features:
            s.pooling = s.pooling or "cls"
            s.encoder = s.encoder or DEFAULT_ENCODER
        check_settings(s)
        check_inputs(s)
        return s

    def resolved_hyper(self) -> dict:
        """The training settings with the simulator's defaults filled in (ValueError for an unknown simulator)."""
        defaults = simulator_class(self.sim_name).train_defaults
        return {k: defaults.get(k) if getattr(self, k) is None else getattr(self, k) for k in HYPER}

    def out_dir(self) -> Path:
        return Path(self.output_dir) / self.task / (self.run_name or default_run_name(self))


def check_settings(s: TrainSpec) -> None:
    """Refuse settings that cannot train, before any work (one line naming the flag); the data are checked by
    check_inputs."""
    simulator_class(s.sim_name)
    if s.cp_interval is None or s.cp_interval < 1:
        raise ValueError(f"--cp_interval must be >= 1, got {s.cp_interval}")
    for flag, v in (("valid_num", s.valid_num), ("test_num", s.test_num)):
        if v is None or v < 0:
            raise ValueError(f"--{flag} must be >= 0, got {v}")
    if not simulator_class(s.sim_name).trainable:
        return
    positive = {"max_epoch": s.max_epoch, "train_bs": s.train_bs, "order_n": s.order, "cp_interval": s.cp_interval,
                "patience": s.patience, "valid_epoch_interval": s.valid_every, "save_epoch_interval": s.save_every,
                "max_length": s.max_length}
    for flag, v in positive.items():
        if v is None or v < 1:
            raise ValueError(f"--{flag} must be >= 1, got {v}")
    if not (s.lr is not None and math.isfinite(s.lr) and s.lr > 0):
        raise ValueError(f"--lr must be a positive number, got {s.lr}")
    for flag, v in (("weight_decay", s.weight_decay), ("hyper_parameter", s.l2)):
        if v is None or not math.isfinite(v) or v < 0:
            raise ValueError(f"--{flag} must be a number >= 0, got {v}")
    for flag, v in (("warmup_steps", s.warmup_steps), ("valid_num", s.valid_num), ("test_num", s.test_num)):
        if v is None or v < 0:
            raise ValueError(f"--{flag} must be >= 0, got {v}")
    if s.step_thres is not None and s.step_thres < 1:
        raise ValueError(f"--step_thres must be >= 1, got {s.step_thres}")
    if s.sim_name == "original" and s.order != 1:
        raise ValueError(f"--order_n {s.order}: Simfluence (original) is first order; use norder_enc_sim for n > 1")


def check_inputs(s: TrainSpec) -> None:
    """The runs, the sample files and the output folder exist as they should (DataError naming them)."""
    if not s.run_dirs:
        raise DataError(f"no training runs given for task {s.task!r} (expected processed run dirs)")
    for flag, path in (("train_data_path", s.train_file), ("eval_data_path", s.eval_file)):
        if not path or not Path(path).is_file():
            raise DataError(f"--{flag} {path or '(none)'}: sample file not found (expected JSON lines id/input/context"
                            "; see utils/prepare_tasks.py)")
    out = Path(s.output_dir)
    for parent in [out, *out.parents]:
        if parent.exists() and not parent.is_dir():
            raise DataError(f"--output_dir {s.output_dir}: {parent} is a file, not a folder")


def _num(x: float) -> str:
    """Python's str() of a float, as the released folder names print learning rates (1e-05, 0.0001, 0.0)."""
    return str(float(x))


def default_run_name(s: TrainSpec) -> str:
    """The released run-folder name pattern, e.g.
    enc_sim_task-rte_metric-loss_lr-0.0001_lambda-0.0_wd-1e-05_bs-128_train-sample-nums-200_test-sample-nums-277_
    seed-42_step_thres-None_max_epoch-1_frozen-True_use_initial-True_concate-False (one line)."""
    if not simulator_class(s.sim_name).trainable:
        return f"{s.sim_name}_task-{s.task}_metric-{s.metric}_seed-{s.seed}"
    lam = s.l2 if s.sim_name == "original" else 0.0
    name = (f"{s.sim_name}_task-{s.task}_metric-{s.metric}_lr-{_num(s.lr)}_lambda-{_num(lam)}_wd-{_num(s.weight_decay)}"
            f"_bs-{s.train_bs}_train-sample-nums-{s.train_example_nums}_test-sample-nums-{s.test_example_nums}"
            f"_seed-{s.seed}_step_thres-{s.step_thres}_max_epoch-{s.max_epoch}")
    if s.sim_name == "original":
        return name + "_eval_task-None"
    if s.sim_name == "norder_enc_sim":
        name += f"_order_n-{s.order}_frozen-True_use_initial-True_concate-{s.concat}"
    else:
        name += "_frozen-True_use_initial-True_concate-False"
        if s.order != 1:
            name += f"_order_n-{s.order}"
    if s.cp_interval != 1:
        name += f"_cp_interval-{s.cp_interval}"
    if s.model_size:
        name += f"_model_size-{s.model_size}"
    if s.separate_proj:
        name += "_separate_proj-True"
    return name


@dataclass
class TrainResult:
    out_dir: Path
    best_val: float
    best_epoch: int
    history: list
    spec: TrainSpec


def _check_folder(out_dir: Path, spec: TrainSpec) -> None:
    """Refuse to mix this training with a folder made with other settings (unless overwrite)."""
    path = out_dir / SPEC_FILE
    if not path.exists():
        return
    if spec.overwrite:
        for name in (C.BEST, C.LAST, "history.json", SPEC_FILE):
            (out_dir / name).unlink(missing_ok=True)
        return
    old, new = read_json(path), asdict(spec)
    diffs = [f"{k}: folder has {old.get(k)!r}, now {new[k]!r}" for k in IDENTITY if old.get(k) != new[k]]
    if diffs:
        raise DataError(f"{out_dir} holds a simulator trained with other settings ({'; '.join(diffs[:4])}); use "
                        "another --output_dir/--run_name, or --overwrite")


def _split_runs(spec: TrainSpec) -> tuple[list[int], list[int], list[int]]:
    """(train, valid, held-out) indices into spec.run_dirs: a seeded shuffle, valid_num validate, the next
    test_num are held out, the rest train (the released split)."""
    R = len(spec.run_dirs)
    if spec.valid_num + spec.test_num >= R:
        raise DataError(f"--valid_num {spec.valid_num} + --test_num {spec.test_num} leave no training run "
                        f"(only {R} runs for task {spec.task!r})")
    order = list(range(R))
    random.Random(spec.seed).shuffle(order)
    v, t = spec.valid_num, spec.test_num
    return sorted(order[v + t:]), sorted(order[:v]), sorted(order[v:v + t])


def _load_samples_checked(spec: TrainSpec) -> tuple[list, list]:
    """The sample files. --train/test_example_nums only name the run folder, as released (the files decide the
    sizes): a different number is reported, not refused."""
    train, test = load_samples(spec.train_file), load_samples(spec.eval_file)
    for flag, want, have, path in (("--train_example_nums", spec.train_example_nums, len(train), spec.train_file),
                                   ("--test_example_nums", spec.test_example_nums, len(test), spec.eval_file)):
        if want is not None and want != have:
            log.warning("%s holds %d examples; %s %d only names the run folder (the file decides)", path, have, flag,
                        want)
    return train, test


def build_simulator(spec: TrainSpec, train_samples, test_samples, device):
    """The simulator a spec asks for, with frozen embeddings of the examples for feature simulators.
    Returns (simulator, encoder setting or None)."""
    cls = simulator_class(spec.sim_name)
    if not cls.uses_features:
        return cls.create(n_train=len(train_samples), n_test=len(test_samples), spec=spec), None
    enc = {"encoder": spec.encoder, "pooling": spec.pooling, "max_length": spec.max_length,
           "texts": getattr(cls, "embed_texts", "input")}
    emb = [embed_samples(s, enc, spec.embedding_cache, device, spec.progress) for s in (train_samples, test_samples)]
    return cls.create(train_emb=emb[0], test_emb=emb[1], spec=spec), enc


def train_simulator(spec: TrainSpec) -> TrainResult:
    """Fit a simulator on processed runs: writes <output_dir>/<task>/<run name>/ with spec.json, train.log,
    best-checkpoint.pt, last-checkpoint.pt, history.json and env.json. Resumes with spec.resume."""
    spec = spec.resolved()
    train_samples, test_samples = _load_samples_checked(spec)
    spec = replace(spec, train_example_nums=spec.train_example_nums or len(train_samples),
                   test_example_nums=spec.test_example_nums or len(test_samples))
    out_dir = spec.out_dir()
    _check_folder(out_dir, spec)
    out_dir.mkdir(parents=True, exist_ok=True)
    handler = setup_logging(out_dir / "train.log", fresh=not spec.resume)
    try:
        return _train(spec, out_dir, train_samples, test_samples)
    finally:
        finish_logging(handler)


def _train(spec: TrainSpec, out_dir: Path, train_samples, test_samples) -> TrainResult:
    device = resolve_device(spec.device)
    seed_everything(spec.seed)
    rs = load_runs(spec.run_dirs, metric=spec.metric, test_ids=spec.test_ids, allow_nonfinite=spec.allow_nonfinite)
    validate_ids(rs, len(train_samples), len(test_samples), spec.train_file, spec.eval_file)
    data = Dynamics.from_runset(rs, device)
    if spec.step_thres is not None:
        data = data.up_to(spec.step_thres)
    data = data.every(spec.cp_interval)
    tr_idx, va_idx, held = _split_runs(spec)
    sim, enc = build_simulator(spec, train_samples, test_samples, device)
    sim = sim.to(device)
    if not sim.trainable:  # a closed form selects no epoch: the validation runs join the training runs
        tr_idx, va_idx = sorted(tr_idx + va_idx), []
    train, valid = data.runs(tr_idx), (data.runs(va_idx) if va_idx else None)
    names = [str(d) for d in spec.run_dirs]
    log.info("%s/%s: %d training runs, %d validation runs (%s), %d held out, %d test examples, %d recorded steps%s",
             spec.task, spec.metric, len(tr_idx), len(va_idx), ", ".join(Path(names[i]).name for i in va_idx),
             len(held), len(rs.test_ids), data.steps.numel(),
             "" if sim.trainable else f" ({spec.sim_name} is fitted in closed form on all of them)")
    sim.fit_data(train)  # closed-form parts of a simulator (e.g. baselines); no-op for the others
    write_json(out_dir / SPEC_FILE, asdict(spec))
    record = C.data_record(spec.train_file, spec.eval_file, [names[i] for i in tr_idx], [names[i] for i in va_idx],
                           rs.test_ids.tolist(), torch.unique(train.batches[train.batches >= 0]).tolist())
    record["test_runs"] = [names[i] for i in held] + [str(d) for d in spec.test_dirs]
    base = C.build_payload(sim, asdict(spec), record, enc)
    cfg = TrainConfig(**{k: getattr(spec, k) for k in HYPER}, valid_epoch_interval=spec.valid_every,
                      save_epoch_interval=spec.save_every, seed=spec.seed, show_progress=spec.progress)

    def save(kind, state, opt, sched):
        payload = dict(base, state_dict={k: v.detach().cpu() for k, v in sim.state_dict().items()},
                       epoch=state.epoch, best_val=state.best_val, train_state=vars(state).copy(), finished=False)
        if kind == "last" and opt is not None:
            payload.update(optimizer=opt.state_dict(), scheduler=sched.state_dict())
        C.save_checkpoint(out_dir / (C.BEST if kind == "best" else C.LAST), payload)

    resume_from = None
    if spec.resume and (out_dir / C.LAST).exists():
        resume_from = C.load_checkpoint(out_dir / C.LAST, map_location=device)
        sim.load_state_dict(resume_from["state_dict"])
    if sim.trainable:
        state = fit(sim, train, valid, cfg, save=save, resume_from=resume_from)
    else:
        state = fit_closed_form(sim, train, save)
    write_json(out_dir / "history.json", state.history)
    C.mark_finished(out_dir)
    write_env_json(out_dir, sim_name=spec.sim_name, task=spec.task, metric=spec.metric)
    return TrainResult(out_dir, state.best_val, state.best_epoch, state.history, spec)


# ----------------------------------------------------------------------------------------------
# Testing
# ----------------------------------------------------------------------------------------------

@dataclass
class TestSpec:
    """What test_simulator needs. Fields left None come from the checkpoint (its sample files, test ids,
    and its held-out runs when test_dirs is empty)."""
    __test__ = False  # not a pytest class

    checkpoint: str = ""
    test_dirs: list = field(default_factory=list)
    save_dir: str | None = None
    train_file: str | None = None
    eval_file: str | None = None
    test_ids: list | None = None
    diverge_bound: float = 1e4
    plot_examples: int = 6
    embedding_cache: str = "default"
    device: str = "cpu"
    allow_nonfinite: bool = False
    allow_unfinished: bool = False
    metric: str | None = None
    expect: dict = field(default_factory=dict)
    progress: bool = True


def test_simulator(spec: TestSpec) -> dict:
    """Roll the checkpoint's simulator out on held-out runs from their true first values, along their real
    curricula. Writes <save_dir>/metrics.json, pred_and_gt_<metric>_trajectories.out (released layout), a plot
    and env.json; returns the metrics dict."""
    ckpt = C.load_checkpoint(spec.checkpoint)
    C.check_compatible(ckpt, **spec.expect)
    C.check_finished(ckpt, spec.allow_unfinished)
    cspec = dict(ckpt["spec"])
    if spec.metric and spec.metric != cspec["metric"]:
        log.warning("%s was trained on %s trajectories; scoring it on %s trajectories as asked", ckpt["path"],
                    cspec["metric"], spec.metric)
        cspec["metric"] = spec.metric
    save_dir = Path(spec.save_dir or Path(ckpt["path"]).parent / "test")
    for parent in [save_dir, *save_dir.parents]:
        if parent.exists() and not parent.is_dir():
            raise DataError(f"--save_dir {save_dir}: {parent} is a file, not a folder")
    dirs = list(spec.test_dirs) or ckpt["data"].get("test_runs") or []
    if not dirs:
        raise DataError(f"{ckpt['path']}: no test runs given and none recorded in the checkpoint (give "
                        "--test_run_dirs or a data paths dict with the task's test runs)")
    train_file, eval_file = spec.train_file or cspec["train_file"], spec.eval_file or cspec["eval_file"]
    n_train, n_test = len(load_samples(train_file)), len(load_samples(eval_file))
    test_ids = spec.test_ids if spec.test_ids is not None else cspec.get("test_ids")
    save_dir.mkdir(parents=True, exist_ok=True)
    handler = setup_logging(save_dir / "test.log")
    try:
        device = resolve_device(spec.device)
        rs = load_runs(dirs, metric=cspec["metric"], test_ids=test_ids, allow_nonfinite=spec.allow_nonfinite)
        validate_ids(rs, n_train, n_test, train_file, eval_file)
        seen_batches = rs.batches[:, 1:]
        C.refuse_unseen_ids(ckpt, rs.test_ids.tolist(), torch.unique(seen_batches[seen_batches >= 0]).tolist())
        sim = C.simulator_for_files(ckpt, train_file, eval_file, spec.embedding_cache, device, spec.progress).eval()
        data = Dynamics.from_runset(rs, device)
        if cspec.get("step_thres") is not None:
            data = data.up_to(cspec["step_thres"])
        data = data.every(cspec.get("cp_interval") or 1)
        pred = sim.predict(data.batches, data.values[..., 0], data.test_rows, data.steps).cpu()
        true, mask = data.values.cpu(), data.mask.cpu()
        m = evaluate(pred, true, mask, spec.diverge_bound, metric=cspec["metric"])
        m.update(metric=cspec["metric"], sim_name=ckpt["sim_name"], task=cspec["task"],
                 checkpoint=relative(ckpt["path"]), order_n=cspec.get("order", 1),
                 cp_interval=cspec.get("cp_interval", 1),
                 separate_proj=bool(cspec.get("separate_proj")), seed=cspec.get("seed"),
                 test_runs=[relative(d) for d in dirs], train_data_path=relative(train_file),
                 eval_data_path=relative(eval_file), save_dir=relative(save_dir))
        write_json(save_dir / "metrics.json", m)
        from ..formats import write_pred_and_gt
        write_pred_and_gt(save_dir / f"pred_and_gt_{cspec['metric']}_trajectories.out", dirs, data.steps.cpu(),
                          rs.test_ids, true, pred, mask)
        if spec.plot_examples > 0:
            from ..plots import plot_run_predictions
            plot_run_predictions(save_dir / f"pred_vs_gt_{cspec['metric']}.png", dirs[0], data.steps.tolist(),
                                 rs.test_ids.tolist(), true[0], mask[0], {ckpt["sim_name"]: pred[0]},
                                 cspec["metric"], spec.plot_examples)
        write_env_json(save_dir, checkpoint=relative(ckpt["path"]))
        log.info("%s", format_summary(m, cspec["metric"]))
        return m
    finally:
        finish_logging(handler)


def spec_fields(cls) -> set[str]:
    return {f.name for f in fields(cls)}


def remove_training(out_dir: str | Path) -> None:
    """Delete a training folder (used by callers that redo a training from scratch)."""
    shutil.rmtree(out_dir, ignore_errors=True)
