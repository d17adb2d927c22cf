"""Scoring with a causal LM: output-token losses (the output layer applied only at scored positions),
the training loss of a batch, and label-word classification accuracy.

Losses are mean token cross-entropy in nats. Scoring runs the transformer body on padded batches
and applies the output layer only at the scored positions, so the cost of the vocabulary
projection is paid for the output tokens alone.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from ..io import DataError
from .encoding import Encoded, _length_batches, collate, encode_samples


def body_hidden(model, batch: dict, cache=None) -> torch.Tensor:
    """Final hidden states of the transformer body (no vocabulary projection) at every position: [B, L, H].
    cache: a transformers Cache to fill with every layer's keys and values (None: none kept)."""
    body = getattr(model, model.base_model_prefix)
    if cache is None:
        kw = {"use_cache": False}
    else:
        from .generation import _cache_kwarg
        kw = {"use_cache": True, _cache_kwarg(body): cache}
    return body(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **kw).last_hidden_state

def scored_hidden(model, batch: dict) -> torch.Tensor:
    """Final hidden states at the positions that predict the scored tokens: [P, H].
    Runs the transformer body only (no vocabulary projection)."""
    return body_hidden(model, batch)[batch["rows"], batch["cols"] - 1]

def token_losses(model, batch: dict, hidden: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy (nats) of every scored token: FloatTensor [P]. The output layer is
    applied to the P scored positions only. hidden: body_hidden's output for this batch, if already computed."""
    h = scored_hidden(model, batch) if hidden is None else hidden[batch["rows"], batch["cols"] - 1]
    logits = model.get_output_embeddings()(h)
    return F.cross_entropy(logits.float(), batch["targets"], reduction="none")

def example_means(values: torch.Tensor, batch: dict) -> torch.Tensor:
    """Per-example mean of per-token values [P] -> [B]."""
    sums = torch.zeros(batch["counts"].shape[0], dtype=values.dtype, device=values.device)
    sums.index_add_(0, batch["example"], values)
    return sums / batch["counts"]

@torch.no_grad()
def score_losses(model, encs: Sequence[Encoded], pad_id: int, batch_size: int = 32, device="cpu",
                 autocast_dtype=None, prefill: dict | None = None) -> torch.Tensor:
    """Mean output-token loss (nats) of every example, fast path: FloatTensor [N] (CPU), in
    the order of `encs`. Length-sorted padded batches, logits only at scored positions.

    prefill: a dict to fill with what greedy decoding of the same examples at the same parameters would compute
    first (generation.greedy_decode's `prefills`): {index in encs: (per layer (keys, values) [heads, n_ctx, head
    dim] of the context tokens, the first greedy token)}. The context is a prefix of the scored sequence, and a
    causal model's states there do not depend on what follows, so decoding can start from them instead of
    running the contexts through the model again. Not with autocast (decoding runs in full precision)."""
    if prefill is not None and autocast_dtype is not None:
        raise ValueError("score_losses: prefill is not kept under autocast")
    was_training = model.training
    model.eval()
    out = torch.empty(len(encs))
    dev = torch.device(device)
    for idx in _length_batches(encs, batch_size):
        batch = collate([encs[i] for i in idx], pad_id, dev)
        with torch.autocast(dev.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            hidden = hidden_keeping_prefill(model, batch, [encs[i] for i in idx], idx, prefill)
            losses = example_means(token_losses(model, batch, hidden), batch)
        out[idx] = losses.float().cpu()
    model.train(was_training)
    return out

def hidden_keeping_prefill(model, batch: dict, encs: Sequence[Encoded], idx: Sequence[int],
                           prefill: dict | None) -> torch.Tensor:
    """body_hidden of a scoring batch (of encs, their indices idx); with prefill (a dict), the batch's context
    states are also kept in it for decoding (generation.keep_prefill)."""
    if prefill is None:
        return body_hidden(model, batch)
    from transformers import DynamicCache

    from .generation import keep_prefill
    cache = DynamicCache(config=model.config)
    hidden = body_hidden(model, batch, cache)
    keep_prefill(model, cache, hidden, [e.n_ctx for e in encs], idx, prefill)
    return hidden

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
