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

Losses are mean token cross-entropy in nats. Scoring runs the transformer body on padded
batches and applies the output layer only at the scored positions, so the cost of the
vocabulary projection is paid for the output tokens alone.

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

import ast
import copy
import hashlib
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F

from .formats import RawRunWriter, raw_run_name
from .io import DataError, atomic_open, iter_jsonl, read_json, sample_target, write_json

logger = logging.getLogger(__name__)

GENERATION_TASKS = ("webnlg", "wmt16_de_en")
RUN_ARGS_FILE = "run_args.json"
DONE_FILE = "run_done.json"
# Settings that change a run's numbers: runs in one output folder must agree on all of them.
RESULT_KEYS = ("task", "model", "model_seed", "train_sha", "eval_sha", "shot", "sample", "bs", "epochs", "lr",
               "weight_decay", "loss_last_token", "append_eos", "max_len", "record_interval", "metrics",
               "do_sample", "top_p", "temperature", "gen_len_factor", "grad_features", "grad_steps", "grad_dim",
               "grad_seed", "bf16", "tf32", "pool_ids", "exclude_ids")


def is_generation_task(task: str) -> bool:
    """True for the tasks whose outputs are scored with BLEU / ROUGE (webnlg*, wmt16_de_en*)."""
    return any(task.startswith(g) for g in GENERATION_TASKS)


# ----------------------------------------------------------------------------- encoding

@dataclass
class Encoded:
    """One tokenised example: ids = context tokens + output tokens; n_ctx >= 1 context tokens
    (an eos token stands in for an empty context); score_from = index of the first scored
    token (n_ctx, or the last output token in last-token mode)."""
    ids: list[int]
    n_ctx: int
    score_from: int
    score_to: int  # exclusive

    @property
    def n_scored(self) -> int:
        return self.score_to - self.score_from


def encode_samples(samples: Sequence[dict], tokenizer, max_len: int = 256, append_eos: bool = True,
                   last_token: bool = False) -> list[Encoded]:
    """Tokenise context and target separately (so the boundary is exact) and join them.

    append_eos adds eos after the target (it is scored, and lets generation stop).
    last_token scores only the last target token (before the eos). Too long examples lose
    context tokens from the left first, then target tokens from the right.
    """
    eos = tokenizer.eos_token_id
    out = []
    for s in samples:
        ctx_text, tgt_text = s.get("context", ""), sample_target(s)
        ctx = tokenizer(ctx_text, add_special_tokens=False)["input_ids"] if ctx_text else []
        tgt = tokenizer(tgt_text, add_special_tokens=False)["input_ids"] if tgt_text else []
        if not ctx:
            ctx = [eos]
        if not tgt and not append_eos:
            raise DataError(f"sample id {s.get('id')}: empty target (input == context) and no eos to score")
        tgt_core = len(tgt)
        if append_eos:
            tgt = tgt + [eos]
        tgt = tgt[:max_len - 1]
        ctx = ctx[-(max_len - len(tgt)):]
        n_ctx = len(ctx)
        ids = ctx + tgt
        if last_token:
            last = n_ctx + max(0, min(tgt_core, len(tgt)) - 1)
            out.append(Encoded(ids, n_ctx, last, last + 1))
        else:
            out.append(Encoded(ids, n_ctx, n_ctx, len(ids)))
    return out


def collate(encs: Sequence[Encoded], pad_id: int, device) -> dict:
    """Right-padded batch and the scored positions.

    Returns input_ids / attention_mask LongTensor [B, L]; rows, cols LongTensor [P] (the
    position whose hidden state predicts a scored token is (rows, cols - 1)); targets
    LongTensor [P]; example LongTensor [P] (batch row of each scored token); counts FloatTensor [B].
    """
    L = max(len(e.ids) for e in encs)
    ids = torch.full((len(encs), L), pad_id, dtype=torch.long)
    mask = torch.zeros((len(encs), L), dtype=torch.long)
    rows, cols = [], []
    for b, e in enumerate(encs):
        ids[b, :len(e.ids)] = torch.tensor(e.ids)
        mask[b, :len(e.ids)] = 1
        rows.extend([b] * e.n_scored)
        cols.extend(range(e.score_from, e.score_to))
    rows_t, cols_t = torch.tensor(rows), torch.tensor(cols)
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "rows": rows_t.to(device),
            "cols": cols_t.to(device), "targets": ids[rows_t, cols_t].to(device), "example": rows_t.to(device),
            "counts": torch.tensor([float(e.n_scored) for e in encs], device=device)}


# ----------------------------------------------------------------------------- scoring

def scored_hidden(model, batch: dict) -> torch.Tensor:
    """Final hidden states at the positions that predict the scored tokens: [P, H].
    Runs the transformer body only (no vocabulary projection)."""
    body = getattr(model, model.base_model_prefix)
    hs = body(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).last_hidden_state
    return hs[batch["rows"], batch["cols"] - 1]


def token_losses(model, batch: dict) -> torch.Tensor:
    """Cross-entropy (nats) of every scored token: FloatTensor [P]. The output layer is
    applied to the P scored positions only."""
    logits = model.get_output_embeddings()(scored_hidden(model, batch))
    return F.cross_entropy(logits.float(), batch["targets"], reduction="none")


def example_means(values: torch.Tensor, batch: dict) -> torch.Tensor:
    """Per-example mean of per-token values [P] -> [B]."""
    sums = torch.zeros(batch["counts"].shape[0], dtype=values.dtype, device=values.device)
    sums.index_add_(0, batch["example"], values)
    return sums / batch["counts"]


def _length_batches(encs: Sequence[Encoded], batch_size: int) -> list[list[int]]:
    order = sorted(range(len(encs)), key=lambda i: len(encs[i].ids))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


@torch.no_grad()
def score_losses(model, encs: Sequence[Encoded], pad_id: int, batch_size: int = 32, device="cpu",
                 autocast_dtype=None) -> torch.Tensor:
    """Mean output-token loss (nats) of every example, fast path: FloatTensor [N] (CPU), in
    the order of `encs`. Length-sorted padded batches, logits only at scored positions."""
    was_training = model.training
    model.eval()
    out = torch.empty(len(encs))
    dev = torch.device(device)
    for idx in _length_batches(encs, batch_size):
        batch = collate([encs[i] for i in idx], pad_id, dev)
        with torch.autocast(dev.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            losses = example_means(token_losses(model, batch), batch)
        out[idx] = losses.float().cpu()
    model.train(was_training)
    return out


@torch.no_grad()
def score_losses_naive(model, encs: Sequence[Encoded], device="cpu") -> torch.Tensor:
    """Reference scoring: one example at a time, full-vocabulary logits at every position
    (model(...).logits), loss over the scored tokens. FloatTensor [N]."""
    was_training = model.training
    model.eval()
    out = torch.empty(len(encs))
    for i, e in enumerate(encs):
        ids = torch.tensor([e.ids], device=device)
        logits = model(input_ids=ids).logits[0]  # [L, V]
        tgt = ids[0, e.score_from:e.score_to]
        out[i] = F.cross_entropy(logits[e.score_from - 1:e.score_to - 1].float(), tgt).cpu()
    model.train(was_training)
    return out


def train_loss(model, encs: Sequence[Encoded], pad_id: int, device, autocast_dtype=None) -> torch.Tensor:
    """Training loss of a batch: mean cross-entropy over all its scored (output) tokens, as
    a causal LM with the context labels set to -100 computes it. Scalar tensor."""
    dev = torch.device(device)
    batch = collate(encs, pad_id, dev)
    with torch.autocast(dev.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
        return token_losses(model, batch).mean()


# ----------------------------------------------------------------------------- gradient features

def _split_dim(dim: int) -> tuple[int, int]:
    d1 = int(math.isqrt(dim))
    while dim % d1:
        d1 -= 1
    return dim // d1, d1


class GradProjector:
    """Fixed random Kronecker projection of last-layer gradients [V, H] -> [D] (see module doc)."""

    def __init__(self, vocab: int, hidden: int, dim: int = 256, seed: int = 0, device="cpu"):
        if dim < 1:
            raise DataError(f"grad_dim must be >= 1, got {dim}")
        self.d1, self.d2 = _split_dim(dim)
        self.dim, self.seed = dim, seed
        g = torch.Generator().manual_seed(seed)
        self.pv = (torch.randn(vocab, self.d1, generator=g) / math.sqrt(self.d1)).to(device)  # [V, d1]
        self.ph = (torch.randn(hidden, self.d2, generator=g) / math.sqrt(self.d2)).to(device)  # [H, d2]

    def project_full(self, grad_w: torch.Tensor) -> torch.Tensor:
        """Project an exact gradient [V, H] -> [D] (for checks)."""
        return (self.pv.T @ grad_w.float() @ self.ph).reshape(-1)


@torch.no_grad()
def grad_features(model, encs: Sequence[Encoded], pad_id: int, projector: GradProjector, batch_size: int = 32,
                  device="cpu") -> torch.Tensor:
    """Projected gradient of each example's mean output-token loss w.r.t. the output layer
    weight: FloatTensor [N, D] (CPU), in the order of `encs`. No autograd: the gradient is
    a sum of outer products (softmax - onehot) h^T, projected factor by factor."""
    was_training = model.training
    model.eval()
    out = torch.empty(len(encs), projector.dim)
    dev = torch.device(device)
    for idx in _length_batches(encs, batch_size):
        batch = collate([encs[i] for i in idx], pad_id, dev)
        h = scored_hidden(model, batch).float()  # [P, H]
        probs = torch.softmax(model.get_output_embeddings()(h.to(model.dtype)).float(), dim=-1)  # [P, V]
        e_proj = probs @ projector.pv - projector.pv[batch["targets"]]  # [P, d1]
        h_proj = h @ projector.ph  # [P, d2]
        w = (1.0 / batch["counts"])[batch["example"]]  # [P]
        outer = (e_proj * w[:, None])[:, :, None] * h_proj[:, None, :]  # [P, d1, d2]
        feats = torch.zeros(len(idx), projector.d1 * projector.d2, device=dev)
        feats.index_add_(0, batch["example"], outer.reshape(outer.shape[0], -1))
        out[idx] = feats.cpu()
    model.train(was_training)
    return out


def parse_grad_steps(spec: str, total_steps: int) -> list[int]:
    """"all" -> 1..T; an integer k -> k steps evenly spaced over 1..T; "3,10,50" -> those steps."""
    spec = str(spec).strip()
    if spec == "all":
        return list(range(1, total_steps + 1))
    if "," not in spec and spec.isdigit():
        k = max(1, min(int(spec), total_steps))
        if k == 1:
            return [1]
        return sorted({round(1 + i * (total_steps - 1) / (k - 1)) for i in range(k)})
    try:
        steps = sorted({int(x) for x in spec.split(",") if x.strip()})
    except ValueError:
        raise DataError(f"--grad_steps {spec!r}: expected 'all', a count, or a comma list of steps") from None
    bad = [s for s in steps if not 1 <= s <= total_steps]
    if bad:
        raise DataError(f"--grad_steps {spec!r}: steps {bad} outside 1..{total_steps}")
    return steps


# ----------------------------------------------------------------------------- generation metrics

def _words(text: str) -> list[str]:
    import re
    return re.findall(r"\w+|[^\w\s]", text)


def bleu_score(hypothesis: str, reference: str) -> float:
    """Sentence BLEU, 0-100: nltk sentence_bleu, up to 4-grams with uniform weights, smoothing
    method1 (epsilon 0.1 for empty n-gram counts), case-sensitive words and punctuation as
    tokens (regex \\w+|[^\\w\\s]). An empty hypothesis or reference scores 0."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    hyp, ref = _words(hypothesis), _words(reference)
    if not hyp or not ref:
        return 0.0
    return 100.0 * float(sentence_bleu([ref], hyp, smoothing_function=SmoothingFunction().method1))


_ROUGE = None


def rouge_scores(hypothesis: str, reference: str) -> dict[str, float]:
    """ROUGE-1/2/L F-measures, 0-1 (rouge-score package, no stemming; it lowercases and keeps
    only ASCII letters and digits)."""
    global _ROUGE
    if _ROUGE is None:
        from rouge_score import rouge_scorer
        _ROUGE = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=False)
    s = _ROUGE.score(reference, hypothesis)
    return {k: float(s[k].fmeasure) for k in ("rouge1", "rouge2", "rougeL")}


@torch.no_grad()
def generate_outputs(model, tokenizer, encs: Sequence[Encoded], ref_lens: Sequence[int], batch_size: int = 32,
                     device="cpu", do_sample: bool = False, top_p: float = 0.95, temperature: float = 0.2,
                     len_factor: float = 1.5, seed: int = 0) -> list[str]:
    """Generated output text for every example (KV cache, left-padded batches). Greedy unless
    do_sample (then nucleus sampling, seeded). At most ceil(len_factor * reference length in
    tokens) + 1 new tokens per example; text stops at the first eos. Greedy outputs do not
    depend on the batch size."""
    was_training = model.training
    model.eval()
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    texts: list[str] = [""] * len(encs)
    order = sorted(range(len(encs)), key=lambda i: encs[i].n_ctx)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        ctxs = [encs[i].ids[:encs[i].n_ctx] for i in idx]
        L = max(len(c) for c in ctxs)
        ids = torch.full((len(idx), L), pad, dtype=torch.long)
        mask = torch.zeros((len(idx), L), dtype=torch.long)
        for b, c in enumerate(ctxs):
            ids[b, L - len(c):] = torch.tensor(c)
            mask[b, L - len(c):] = 1
        limits = [int(math.ceil(len_factor * ref_lens[i])) + 1 for i in idx]
        max_new = max(limits)
        kwargs = dict(do_sample=True, top_p=top_p, temperature=temperature) if do_sample else dict(do_sample=False)
        if do_sample:
            torch.manual_seed(seed + start)
        gen = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), max_new_tokens=max_new,
                             pad_token_id=pad, eos_token_id=eos, use_cache=True, **kwargs)
        for b, i in enumerate(idx):
            new = gen[b, L:L + limits[b]].tolist()  # own limit: the text does not depend on the batching
            if eos in new:
                new = new[:new.index(eos)]
            texts[i] = tokenizer.decode(new, skip_special_tokens=True)
    model.train(was_training)
    return texts


def generation_metrics(hyps: Sequence[str], refs: Sequence[str]) -> list[dict]:
    """[{"bleu" (0-100), "rouge1", "rouge2", "rougeL" (0-1)}] per (hypothesis, reference)."""
    return [{"bleu": bleu_score(h, r), **rouge_scores(h, r)} for h, r in zip(hyps, refs)]


# ----------------------------------------------------------------------------- runs

def make_curriculum(shot: int, sample: int, bs: int, epochs: int, seed: int,
                    pool_ids: Sequence[int] | None = None, exclude_ids: Sequence[int] | None = None) -> list[list[int]]:
    """The batches of one run: K = `sample` ids drawn from the pool without replacement,
    shuffled anew every epoch, cut into batches of `bs` (a last partial batch is kept).

    pool_ids: draw only from these pool positions (default range(shot)), e.g. one half of the
    pool for the unseen-data experiments. exclude_ids: remove these from every batch of the
    curriculum the seed gives (a counterfactual re-run: the other examples keep their steps;
    a batch can shrink, or become empty, in which case that step makes no update).
    """
    candidates = list(range(shot)) if pool_ids is None else [int(i) for i in pool_ids]
    bad = [i for i in candidates if not 0 <= i < shot]
    if bad:
        raise DataError(f"--pool_ids {bad[:5]} are outside the training pool 0..{shot - 1}")
    if sample > len(candidates):
        raise DataError(f"--sample {sample} is larger than the training pool ({len(candidates)} ids to draw from)")
    g = torch.Generator().manual_seed(seed)
    pool = torch.tensor(candidates)
    chosen = pool[torch.randperm(len(candidates), generator=g)[:sample]]
    batches = []
    for _ in range(epochs):
        perm = chosen[torch.randperm(sample, generator=g)].tolist()
        batches.extend(perm[i:i + bs] for i in range(0, sample, bs))
    if exclude_ids:
        drop = set(int(i) for i in exclude_ids)
        batches = [[i for i in b if i not in drop] for b in batches]
    return batches


def format_lr(lr: float) -> str:
    """5e-07 -> "5e-7", 0.00025 -> "2.5e-4" (the released folder-name style)."""
    mant, exp = f"{lr:e}".split("e")
    mant = mant.rstrip("0").rstrip(".")
    return f"{mant}e{int(exp)}"


def file_sha(path: str | os.PathLike) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


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

    settings: a dict with at least the RESULT_KEYS plus "model_tag", "eval_batch_size".
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
        if s["grad_features"]:
            W = model.get_output_embeddings().weight
            self.projector = GradProjector(W.shape[0], W.shape[1], s["grad_dim"], s["grad_seed"], device)

    def record(self, writer: RawRunWriter, step: int, seed: int) -> dict:
        """Score every test example after `step`; write the checkpoint files. Returns mean values."""
        s = self.settings
        losses = score_losses(self.model, self.test_encs, self.pad, s["eval_batch_size"], self.device, self.amp)
        ids = [x["id"] for x in self.test]
        writer.write_loss(step, ids, losses.tolist())
        means = {"loss": float(losses.mean())}
        if s["metrics"]:
            hyps = generate_outputs(self.model, self.tok, self.test_encs, self.ref_lens, s["eval_batch_size"],
                                    self.device, s["do_sample"], s["top_p"], s["temperature"],
                                    s["gen_len_factor"], seed=seed * 100003 + step)
            rows = [{"id": i, "loss": float(l), **m}
                    for i, l, m in zip(ids, losses.tolist(), generation_metrics(hyps, self.refs))]
            writer.write_metrics(step, rows)
            for k in ("bleu", "rougeL"):
                means[k] = sum(r[k] for r in rows) / len(rows)
        return means

    def save_grads(self, run_dir: Path, name: str, step: int, after: int, lr: float) -> None:
        s = self.settings
        train = grad_features(self.model, self.train_encs, self.pad, self.projector, s["eval_batch_size"], self.device)
        test = grad_features(self.model, self.test_encs, self.pad, self.projector, s["eval_batch_size"], self.device)
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
        torch.manual_seed(seed)
        batches = make_curriculum(s["shot"], s["sample"], s["bs"], s["epochs"], seed, s.get("pool_ids"),
                                  s.get("exclude_ids"))
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
                    last = self.record(writer, t, seed)
                    first = first or last
            if s["grad_features"]:
                self.save_grads(run_dir, "grads_final.pt", T + 1, T, 0.0)
        result = {"first": first, "last": last, "steps": T, "seconds": round(time.time() - t0, 2)}
        write_json(run_dir / DONE_FILE, {**s, "seed": seed, **result})
        return result


def make_runs(maker: RunMaker, seeds: Iterable[int], output_dir: str | os.PathLike) -> list[Path]:
    """Make one run per seed under output_dir. Finished runs (run_done.json) are kept; a run
    folder without it (interrupted) is removed and made again. Refuses a folder whose runs
    were made with other settings (check_output_dir). Returns the run folders."""
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
        if run_dir.exists():
            logger.info("seed %d: removing interrupted run %s", seed, run_dir.name)
            shutil.rmtree(run_dir)
        res = maker.run(seed, run_dir)
        logger.info("seed %d: %d steps in %.1f s, mean test loss %.4f -> %.4f", seed, res["steps"], res["seconds"],
                    res["first"]["loss"], res["last"]["loss"])
    return dirs


# ----------------------------------------------------------------------------- evidence summary

def read_raw_run(run_dir: str | os.PathLike, task: str) -> dict:
    """A raw run folder as dicts: {"batches": {step: [ids]}, "lr": {step: lr},
    "values": {metric: {step: {test_id: value}}}}. Unparseable log lines are skipped."""
    run_dir = Path(run_dir)
    batches, lrs = {}, {}
    with open(run_dir / "log.out", encoding="utf-8") as f:
        for line in f:
            start = line.find("{")
            try:
                rec = ast.literal_eval(line[start:].strip()) if start >= 0 else None
            except (ValueError, SyntaxError):
                rec = None
            if isinstance(rec, dict) and "step" in rec and "samples_id" in rec:
                batches[int(rec["step"])] = list(rec["samples_id"])
                if "learning_rate" in rec:
                    lrs[int(rec["step"])] = float(rec["learning_rate"])
    values: dict[str, dict[int, dict[int, float]]] = {}
    for kind in ("loss", "metric"):
        folder = run_dir / f"{kind}_{task}"
        if not folder.is_dir():
            continue
        for p in folder.glob(f"{kind}_{task}_checkpoint-*.out"):
            step = int(p.stem.rsplit("-", 1)[1])
            for _, row in iter_jsonl(p):
                for m, v in row.items():
                    if m != "id" and (m == "loss") == (kind == "loss"):  # loss from loss_ files only
                        values.setdefault(m, {}).setdefault(step, {})[int(row["id"])] = float(v)
    return {"batches": batches, "lr": lrs, "values": values}


def _labels(samples: Sequence[dict] | None) -> dict[int, str] | None:
    """Target text per id when the task looks like classification (few distinct targets)."""
    if not samples:
        return None
    labels = {int(s["id"]): sample_target(s).strip() for s in samples}
    distinct = set(labels.values())
    return labels if len(distinct) <= 10 and len(distinct) * 4 <= len(labels) else None


def summarize_runs(run_dirs: Sequence[str | os.PathLike], task: str, train_samples: Sequence[dict] | None = None,
                   test_samples: Sequence[dict] | None = None) -> dict:
    """Evidence that the recorded dynamics are real, from raw run folders.

    Returns a dict with
      n_runs, steps (first, last, mid = common step used for the spread)
      loss_first_mean, loss_last_mean: mean test loss (nats) at the first / last recorded step
      frac_test_loss_fell: fraction of (run, test example) whose loss is lower at the last step
      n_distinct_curricula, mean_sample_overlap (Jaccard of the sampled id sets, over run pairs)
      spread_change_std: mean over test examples of the std over runs of (loss at mid - loss at first)
      spread_change_abs_mean: mean |loss at mid - loss at first| (scale of the change)
      for classification-like tasks (train_samples and test_samples given, <= 10 labels):
        match_delta_mean / other_delta_mean: mean one-step change of test loss for test examples whose
        label equals the batch's majority label / the others (match should be lower), n_match, n_other
      for metric runs: bleu_first_mean, bleu_last_mean, rougeL_first_mean, rougeL_last_mean
    """
    runs = [read_raw_run(d, task) for d in run_dirs]
    if not runs or not runs[0]["values"].get("loss"):
        raise DataError(f"no loss checkpoints for task {task!r} in {list(map(str, run_dirs))[:3]}")
    steps = sorted(set.intersection(*(set(r["values"]["loss"]) for r in runs)))
    ids = sorted(runs[0]["values"]["loss"][steps[0]])
    s0, s1, sm = steps[0], steps[-1], steps[len(steps) // 2]

    def mat(r, metric, step):
        return torch.tensor([r["values"][metric][step][i] for i in ids])

    L0 = torch.stack([mat(r, "loss", s0) for r in runs])  # [R, N]
    L1 = torch.stack([mat(r, "loss", s1) for r in runs])
    Lm = torch.stack([mat(r, "loss", sm) for r in runs])
    out = {"n_runs": len(runs), "n_test": len(ids), "steps": {"first": s0, "last": s1, "mid": sm},
           "loss_first_mean": float(L0.mean()), "loss_last_mean": float(L1.mean()),
           "frac_test_loss_fell": float((L1 < L0).float().mean())}
    curricula = [tuple(tuple(r["batches"][k]) for k in sorted(r["batches"])) for r in runs]
    sets = [set(i for b in c for i in b) for c in curricula]
    pairs = [(a, b) for a in range(len(sets)) for b in range(a + 1, len(sets))]
    out["n_distinct_curricula"] = len(set(curricula))
    out["mean_sample_overlap"] = (sum(len(sets[a] & sets[b]) / len(sets[a] | sets[b]) for a, b in pairs) / len(pairs)
                                  if pairs else 1.0)
    change = Lm - L0
    out["spread_change_std"] = float(change.std(dim=0, unbiased=False).mean()) if len(runs) > 1 else 0.0
    out["spread_change_abs_mean"] = float(change.abs().mean())
    train_lab, test_lab = _labels(train_samples), _labels(test_samples)
    if train_lab and test_lab:
        out.update(_batch_label_effect(runs, steps, ids, train_lab, test_lab))
    for m in ("bleu", "rougeL"):
        if all(m in r["values"] and s0 in r["values"][m] and s1 in r["values"][m] for r in runs):
            out[f"{m}_first_mean"] = float(torch.stack([mat(r, m, s0) for r in runs]).mean())
            out[f"{m}_last_mean"] = float(torch.stack([mat(r, m, s1) for r in runs]).mean())
    return out


def _batch_label_effect(runs, steps, ids, train_lab, test_lab) -> dict:
    """Mean one-step test-loss change for label-matching vs other test examples."""
    match, other = [], []
    test_labels = [test_lab.get(i) for i in ids]
    for r in runs:
        for prev, cur in zip(steps[:-1], steps[1:]):
            batch = [i for k in range(prev + 1, cur + 1) for i in r["batches"].get(k, [])]
            counts: dict[str, int] = {}
            for i in batch:
                counts[train_lab[i]] = counts.get(train_lab[i], 0) + 1
            if not counts:
                continue
            top = sorted(counts.values())[-2:]
            if len(top) == 2 and top[0] == top[1]:
                continue  # no majority label
            major = max(counts, key=counts.get)
            for i, lab in zip(ids, test_labels):
                d = r["values"]["loss"][cur][i] - r["values"]["loss"][prev][i]
                (match if lab == major else other).append(d)
    mean = lambda xs: sum(xs) / len(xs) if xs else float("nan")  # noqa: E731
    return {"match_delta_mean": mean(match), "other_delta_mean": mean(other), "n_match": len(match),
            "n_other": len(other)}


def format_summary(summary: dict) -> str:
    """Human-readable lines of summarize_runs' figures."""
    s = summary
    lines = [
        f"runs {s['n_runs']}, test examples {s['n_test']}, recorded steps {s['steps']['first']}..{s['steps']['last']}",
        f"mean test loss: step {s['steps']['first']} {s['loss_first_mean']:.4f} -> step {s['steps']['last']} "
        f"{s['loss_last_mean']:.4f} (nats/token); loss fell for {100 * s['frac_test_loss_fell']:.1f}% of "
        f"(run, test example)",
        f"curricula: {s['n_distinct_curricula']} distinct of {s['n_runs']}; mean Jaccard overlap of sampled ids "
        f"{s['mean_sample_overlap']:.3f}",
        f"at step {s['steps']['mid']}: change since step {s['steps']['first']} has std across runs "
        f"{s['spread_change_std']:.4f} per test example (mean |change| {s['spread_change_abs_mean']:.4f})",
    ]
    if "match_delta_mean" in s:
        lines.append(f"batch content: one-step loss change {s['match_delta_mean']:+.5f} for test examples whose label is "
                     f"the batch majority ({s['n_match']}) vs {s['other_delta_mean']:+.5f} for the others "
                     f"({s['n_other']})")
    for m in ("bleu", "rougeL"):
        if f"{m}_first_mean" in s:
            lines.append(f"{m}: {s[f'{m}_first_mean']:.3f} -> {s[f'{m}_last_mean']:.3f}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- classification accuracy

def label_word_losses(model, tokenizer, samples: Sequence[dict], label_words: Sequence[str], max_len: int = 256,
                      batch_size: int = 64, device="cpu", autocast_dtype=None) -> torch.Tensor:
    """Summed cross-entropy (nats) of each label word as the completion of each sample's prompt.

    samples: dicts with "context" (the prompt); label_words: e.g. ("negative", "positive"), each scored
    as " " + word after the prompt (no eos). Summing over the word's tokens makes it the word's negative
    log-probability, so words of different token counts compare fairly. Returns FloatTensor [N, C].
    """
    cols = []
    for w in label_words:
        variants = [{"id": s.get("id"), "context": s.get("context", ""), "input": s.get("context", "") + " " + w}
                    for s in samples]
        encs = encode_samples(variants, tokenizer, max_len=max_len, append_eos=False)
        pad = tokenizer.pad_token_id
        means = score_losses(model, encs, pad, batch_size, device, autocast_dtype)
        cols.append(means * torch.tensor([float(e.n_scored) for e in encs]))
    return torch.stack(cols, 1)


def predictions_from_losses(losses: torch.Tensor) -> torch.Tensor:
    """Predicted class of each row of label-word losses [N, C]: the lowest loss (ties: the lower index).
    LongTensor [N]."""
    return losses.argmin(1)


def label_word_accuracy(model, tokenizer, samples: Sequence[dict], label_words: Sequence[str],
                        label_key: str = "label", **kw) -> tuple[float, torch.Tensor]:
    """Classification accuracy (0-1) by label-word scoring: predict the word with the lowest loss
    (label_word_losses) and compare with samples[i][label_key] (an int index into label_words).
    Returns (accuracy, predictions LongTensor [N]). Raises DataError naming a sample without a label."""
    labels = []
    for s in samples:
        if not isinstance(s.get(label_key), int) or not 0 <= s[label_key] < len(label_words):
            raise DataError(f"sample id {s.get('id')}: expected an integer {label_key!r} in 0..{len(label_words) - 1}, "
                            f"got {s.get(label_key)!r}")
        labels.append(s[label_key])
    preds = predictions_from_losses(label_word_losses(model, tokenizer, samples, label_words, **kw))
    acc = float((preds == torch.tensor(labels)).double().mean()) if labels else float("nan")
    return acc, preds
