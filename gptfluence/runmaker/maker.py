"""The run maker: fine-tune a causal LM over many curricula and record test metrics every step.

One run (seed s) samples K training ids of the pool, shuffles them every epoch, and trains
with AdamW and a linear learning-rate decay (no warm-up). After optimizer step t it records,
for every test example, the loss over the OUTPUT tokens (context masked) and, for generation
tasks, BLEU (0-100) and ROUGE-1/2/L (0-1) of a generated output. The result is a raw run
directory in the GPTDynamics layout (gptfluence.formats.RawRunWriter):

    <output_dir>/<raw_run_name(...)>/
        run_args.json                 the settings of the run (checked on resume)
        log.out                       {'loss', 'step', 'samples_id', 'learning_rate'} per step
        loss_<task>/loss_<task>_checkpoint-<t>.out       {"id", "loss"} per test example
        metric_<task>/metric_<task>_checkpoint-<t>.out   {"id", "loss", "rouge1", "rouge2", "rougeL", "bleu"}
        grads/grads_step-<t>.pt       (--grad_features) projected last-layer gradients, see below
        grads/grads_final.pt          the same at the final parameters (for Grad-Dot)
        run_done.json                 written last: the run is complete

Gradient features (for TracIn-CP / Grad-Dot): the gradient of an example's loss L with respect
to the output projection W [V, H] (lm_head; a bias, if any, is left out) is
    dL/dW = (1/P) sum_p (softmax(W h_p) - onehot(y_p)) h_p^T
over its P scored positions (h_p = final hidden state). It is stored through a fixed random
Kronecker projection  feat = vec(Pv^T (dL/dW) Ph)  with Pv [V, d1] ~ N(0, 1/d1) and
Ph [H, d2] ~ N(0, 1/d2), d1 * d2 = D (torch.Generator seeded with grad_seed), so that
E[<feat_a, feat_b>] = <dL_a/dW, dL_b/dW> (a Johnson-Lindenstrauss sketch). grads_step-<t>.pt
holds the features at the parameters that step t's update was computed from (theta_{t-1},
i.e. after step t-1):
    {"step": t, "params_after_step": t-1, "learning_rate": lr_t,
     "train": HalfTensor [n_pool, D], "test": HalfTensor [n_test, D],
     "train_ids": LongTensor [n_pool], "test_ids": LongTensor [n_test],
     "dim": D, "proj_shape": (d1, d2), "proj_seed": int}
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Iterable, Sequence

import torch

from ..formats import RawRunWriter, raw_run_name
from ..io import DataError, atomic_open, read_json, sample_target, write_json
from .curriculum import format_lr, make_curriculum
from .encoding import encode_samples
from .generation import generate_outputs, generation_metrics
from .gradients import GradProjector, grad_features, parse_grad_steps
from .scoring import label_word_accuracy, score_losses, train_loss

logger = logging.getLogger(__name__)

GENERATION_TASKS = ("webnlg", "wmt16_de_en")

RUN_ARGS_FILE = "run_args.json"

DONE_FILE = "run_done.json"

RESULT_KEYS = ("task", "model", "model_seed", "train_sha", "eval_sha", "shot", "sample", "bs", "epochs", "lr",
               "weight_decay", "loss_last_token", "append_eos", "max_len", "record_interval", "metrics",
               "do_sample", "top_p", "temperature", "gen_len_factor", "grad_features", "grad_steps", "grad_dim",
               "grad_seed", "bf16", "tf32", "pool_ids", "exclude_ids", "swap_steps")

def is_generation_task(task: str) -> bool:
    """True for the tasks whose outputs are scored with BLEU / ROUGE (webnlg*, wmt16_de_en*)."""
    return any(task.startswith(g) for g in GENERATION_TASKS)

def run_dir_name(settings: dict, seed: int) -> str:
    return raw_run_name(settings["task"], settings["model_tag"], seed, bs=settings["bs"], shot=settings["shot"],
                        sample=settings["sample"], lr=format_lr(settings["lr"]),
                        weight_decay=settings["weight_decay"], epoch=settings["epochs"],
                        loss_output_token=not settings["loss_last_token"])

def check_output_dir(output_dir: str | os.PathLike, settings: dict) -> None:
    """Refuse an output folder that holds runs of the same task made with other settings
    (DataError naming the run folder and the first differing setting)."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return
    for args_file in sorted(output_dir.glob(f"*/{RUN_ARGS_FILE}")):
        old = read_json(args_file)
        if old.get("task") != settings["task"]:
            continue
        for key in RESULT_KEYS:
            if old.get(key) != settings.get(key):
                raise DataError(
                    f"{args_file.parent}: made with {key}={old.get(key)!r}, now {key}={settings.get(key)!r}; "
                    f"use another --output_dir or the same settings")

def _autocast_dtype(settings: dict, device) -> torch.dtype | None:
    return torch.bfloat16 if settings.get("bf16") and torch.device(device).type == "cuda" else None

class RunMaker:
    """Holds a copy of the base model, its initial weights, the encoded data and the settings; run(seed)
    makes one raw run directory.

    settings: a dict with at least the RESULT_KEYS plus "model_tag", "eval_batch_size" (scoring) and
    "gen_batch_size" (decoding; eval_batch_size when missing).
    train_samples / test_samples: lists indexed by id (gptfluence.io.load_samples).
    """

    def __init__(self, model, tokenizer, train_samples: Sequence[dict], test_samples: Sequence[dict],
                 settings: dict, device="cpu", progress: bool = True):
        # a private copy: the caller's model keeps its weights, every run starts from them
        self.model = copy.deepcopy(model).to(device)
        self.tok, self.settings, self.device, self.progress = tokenizer, settings, device, progress
        s = settings
        if s["shot"] > len(train_samples):
            raise DataError(f"--shot {s['shot']} is larger than the training file ({len(train_samples)} samples)")
        if s["sample"] > s["shot"]:
            raise DataError(f"--sample {s['sample']} is larger than the training pool (--shot {s['shot']})")
        self.pool = list(train_samples[:s["shot"]])
        self.test = list(test_samples)
        enc = dict(max_len=s["max_len"], append_eos=s["append_eos"], last_token=s["loss_last_token"])
        self.train_encs = encode_samples(self.pool, tokenizer, **enc)
        self.test_encs = encode_samples(self.test, tokenizer, **enc)
        self.refs = [sample_target(x).strip() for x in self.test]
        self.ref_lens = [len(e.ids) - e.n_ctx for e in self.test_encs]
        self.pad = tokenizer.pad_token_id
        self.base_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.amp = _autocast_dtype(settings, device)
        self.projector = None
        self.test_grads: tuple[int, torch.Tensor] | None = None  # (step, test features) kept by record
        # greedy decoding starts from the scoring pass's context states (score_losses' prefill) instead of running
        # the contexts through the model again; False decodes from scratch (the same tokens up to float rounding)
        self.share_prefill = True
        if s["grad_features"]:
            W = model.get_output_embeddings().weight
            self.projector = GradProjector(W.shape[0], W.shape[1], s["grad_dim"], s["grad_seed"], device)

    def record(self, writer: RawRunWriter, step: int, seed: int, keep_grads: bool = False) -> dict:
        """Score every test example after `step`; write the checkpoint files. Returns mean values.
        keep_grads: the test examples' gradient features at these parameters are needed next (save_grads of step
        + 1): computed from the scoring's forward pass and kept, the same numbers as a pass of their own."""
        s = self.settings
        share = self.share_prefill and s["metrics"] and not s["do_sample"] and self.amp is None
        prefill = {} if share else None
        if keep_grads and self.amp is None:
            feats, losses = grad_features(self.model, self.test_encs, self.pad, self.projector, s["eval_batch_size"],
                                          self.device, with_losses=True, prefill=prefill)
            self.test_grads = (step, feats)
        else:
            losses = score_losses(self.model, self.test_encs, self.pad, s["eval_batch_size"], self.device, self.amp,
                                  prefill=prefill)
        ids = [x["id"] for x in self.test]
        writer.write_loss(step, ids, losses.tolist())
        means = {"loss": float(losses.mean())}
        if s["metrics"]:
            hyps = generate_outputs(self.model, self.tok, self.test_encs, self.ref_lens,
                                    s.get("gen_batch_size", s["eval_batch_size"]),
                                    self.device, s["do_sample"], s["top_p"], s["temperature"],
                                    s["gen_len_factor"], seed=seed * 100003 + step, prefill=prefill)
            rows = [{"id": i, "loss": float(l), **m}
                    for i, l, m in zip(ids, losses.tolist(), generation_metrics(hyps, self.refs))]
            writer.write_metrics(step, rows)
            for k in ("bleu", "rougeL"):
                means[k] = sum(r[k] for r in rows) / len(rows)
        return means

    def label_accuracy(self) -> dict:
        """{"label_accuracy": test accuracy (0-1) by label-word scoring} for a classification task whose test
        samples carry integer labels; {} otherwise."""
        from ..tasks import LABEL_WORDS
        words = LABEL_WORDS.get(self.settings["task"])
        if not words or not all(isinstance(x.get("label"), int) for x in self.test):
            return {}
        acc, _ = label_word_accuracy(self.model, self.tok, self.test, words, max_len=self.settings["max_len"],
                                     batch_size=self.settings["eval_batch_size"], device=self.device,
                                     autocast_dtype=self.amp)
        return {"label_accuracy": acc}

    def save_grads(self, run_dir: Path, name: str, step: int, after: int, lr: float) -> None:
        s = self.settings
        train = grad_features(self.model, self.train_encs, self.pad, self.projector, s["eval_batch_size"], self.device)
        if self.test_grads is not None and self.test_grads[0] == after:  # kept by record(after)
            test = self.test_grads[1]
        else:
            test = grad_features(self.model, self.test_encs, self.pad, self.projector, s["eval_batch_size"],
                                 self.device)
        obj = {"step": step, "params_after_step": after, "learning_rate": lr, "train": train.half(),
               "test": test.half(), "train_ids": torch.tensor([x["id"] for x in self.pool]),
               "test_ids": torch.tensor([x["id"] for x in self.test]), "dim": self.projector.dim,
               "proj_shape": (self.projector.d1, self.projector.d2), "proj_seed": self.projector.seed}
        with atomic_open(run_dir / "grads" / name, "wb") as f:
            torch.save(obj, f)

    def run(self, seed: int, run_dir: str | os.PathLike) -> dict:
        """Fine-tune from the base weights on the curriculum of `seed`, writing `run_dir`.
        Returns {"first": means after step 1 (or the first record), "last": means at the end}."""
        from tqdm.auto import tqdm

        s, run_dir = self.settings, Path(run_dir)
        write_json(run_dir / RUN_ARGS_FILE, {**s, "seed": seed})
        self.model.load_state_dict(self.base_state)
        self.test_grads = None
        torch.manual_seed(seed)
        batches = make_curriculum(s["shot"], s["sample"], s["bs"], s["epochs"], seed, s.get("pool_ids"),
                                  s.get("exclude_ids"), s.get("swap_steps"))
        T = len(batches)
        grad_steps = set(parse_grad_steps(s["grad_steps"], T)) if s["grad_features"] else set()
        opt = torch.optim.AdamW(self.model.parameters(), lr=s["lr"], betas=(0.9, 0.999), eps=1e-6,
                                weight_decay=s["weight_decay"])
        first = last = None
        t0 = time.time()
        with RawRunWriter(run_dir, s["task"]) as writer:
            for t, ids in enumerate(tqdm(batches, desc=f"seed {seed}", leave=False, disable=not self.progress), 1):
                lr_t = s["lr"] * (T - t + 1) / T  # linear decay to 0, no warm-up; lr of step t's update
                for group in opt.param_groups:
                    group["lr"] = lr_t
                if t in grad_steps:
                    self.save_grads(run_dir, f"grads_step-{t}.pt", t, t - 1, lr_t)
                if not ids:  # every example of this batch was excluded: no update at this step
                    writer.log_step(t, 0.0, [], learning_rate=lr_t, skipped=True)
                else:
                    self.model.train()
                    loss = train_loss(self.model, [self.train_encs[i] for i in ids], self.pad, self.device, self.amp)
                    loss.backward()
                    opt.step()
                    opt.zero_grad(set_to_none=True)
                    writer.log_step(t, loss.item(), [self.pool[i]["id"] for i in ids], learning_rate=lr_t)
                if t % s["record_interval"] == 0 or t == T:
                    keep = bool(grad_steps) and (t + 1 in grad_steps or t == T)  # T: grads_final.pt
                    last = self.record(writer, t, seed, keep_grads=keep)
                    if first is None or t == T:
                        last.update(self.label_accuracy())
                    first = first or last
            if s["grad_features"]:
                self.save_grads(run_dir, "grads_final.pt", T + 1, T, 0.0)
        result = {"first": first, "last": last, "steps": T, "seconds": round(time.time() - t0, 2)}
        if "label_accuracy" in last:
            result.update(label_accuracy_first=first["label_accuracy"], label_accuracy_last=last["label_accuracy"])
        write_json(run_dir / DONE_FILE, {**s, "seed": seed, **result})
        return result

@contextlib.contextmanager
def run_lock(output_dir: str | os.PathLike, name: str):
    """Hold an exclusive lock on one run of output_dir while it is made (<output_dir>/.locks/<name>.lock). Another
    process asking for the same run is refused (DataError naming the holder), never allowed to delete it."""
    import fcntl
    folder = Path(output_dir) / ".locks"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.lock"
    f = open(path, "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "?"
        f.close()
        raise DataError(f"{Path(output_dir) / name}: being made by another process ({holder}); wait for it to finish, "
                        "or use another --output_dir") from None
    try:
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} on {socket.gethostname()}")
        f.flush()
        yield
    finally:
        fcntl.flock(f, fcntl.LOCK_UN)
        f.close()


def make_runs(maker: RunMaker, seeds: Iterable[int], output_dir: str | os.PathLike) -> list[Path]:
    """Make one run per seed under output_dir. Finished runs (run_done.json) are kept; a run folder without it
    (interrupted) is removed and made again, under a lock that keeps other processes away from that run. Refuses a
    folder whose runs were made with other settings (check_output_dir). Returns the run folders."""
    from tqdm.auto import tqdm

    output_dir = Path(output_dir)
    check_output_dir(output_dir, maker.settings)
    dirs = []
    for seed in tqdm(list(seeds), desc="runs", disable=not maker.progress):
        run_dir = output_dir / run_dir_name(maker.settings, seed)
        dirs.append(run_dir)
        if (run_dir / DONE_FILE).is_file():
            logger.info("seed %d: finished run kept (%s)", seed, run_dir.name)
            continue
        with run_lock(output_dir, run_dir.name):
            if (run_dir / DONE_FILE).is_file():  # finished by another process while we waited
                continue
            if run_dir.exists():
                logger.info("seed %d: removing interrupted run %s", seed, run_dir.name)
                shutil.rmtree(run_dir)
            res = maker.run(seed, run_dir)
        logger.info("seed %d: %d steps in %.1f s, mean test loss %.4f -> %.4f", seed, res["steps"], res["seconds"],
                    res["first"]["loss"], res["last"]["loss"])
    return dirs
