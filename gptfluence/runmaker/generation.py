"""Generated outputs and their scores: greedy (or nucleus) decoding with a KV cache, sentence BLEU (0-100)
and ROUGE-1/2/L F-measures (0-1)."""

from __future__ import annotations

import math
from typing import Sequence

import torch

from .encoding import Encoded


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

def _cache_kwarg(model) -> str:
    """The forward keyword of the KV cache: "cache" (transformers >= 5.x renamed it) or "past_key_values"."""
    import inspect
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"

def _left_padded(ctxs: Sequence[Sequence[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    L = max(len(c) for c in ctxs)
    ids = torch.full((len(ctxs), L), pad, dtype=torch.long)
    mask = torch.zeros((len(ctxs), L), dtype=torch.long)
    for b, c in enumerate(ctxs):
        ids[b, L - len(c):] = torch.tensor(c)
        mask[b, L - len(c):] = 1
    return ids, mask

def keep_prefill(model, cache, hidden: torch.Tensor, n_ctx: Sequence[int], idx: Sequence[int], out: dict) -> None:
    """Keep, for decoding, the context part of a right-padded scoring batch (scoring.score_losses with prefill):
    out[idx[b]] = (per layer (keys, values) [heads, n_ctx[b], head dim], the first greedy token: the argmax of
    the output layer at the context's last position). Kept only from a cache of plain full-attention layers
    (transformers' DynamicLayer): a sliding-window or otherwise cut cache does not hold every context state, and
    generate_outputs then decodes from scratch."""
    from transformers.cache_utils import DynamicLayer
    if not all(type(layer) is DynamicLayer for layer in cache.layers):
        return
    rows = torch.arange(len(idx), device=hidden.device)
    last = torch.tensor([n - 1 for n in n_ctx], device=hidden.device)
    first = model.get_output_embeddings()(hidden[rows, last]).argmax(-1).tolist()
    for b, i in enumerate(idx):
        kv = [(layer.keys[b, :, :n_ctx[b]].clone(), layer.values[b, :, :n_ctx[b]].clone()) for layer in cache.layers]
        out[i] = (kv, first[b])

def _prefilled_cache(model, prefills, L: int, device):
    """A left-padded DynamicCache of L positions from keep_prefill's per-example keys and values (zeros under the
    padding, which the attention mask hides), and the first tokens."""
    from transformers import DynamicCache
    cache = DynamicCache(config=model.config)
    for layer in range(len(prefills[0][0])):
        k0 = prefills[0][0][layer][0]
        K = k0.new_zeros(len(prefills), k0.shape[0], L, k0.shape[2])
        V = torch.zeros_like(K)
        for b, (kv, _) in enumerate(prefills):
            k, v = kv[layer]
            K[b, :, L - k.shape[1]:] = k
            V[b, :, L - v.shape[1]:] = v
        cache.update(K.to(device), V.to(device), layer)
    return cache, torch.tensor([f for _, f in prefills], device=device)

@torch.no_grad()
def greedy_decode(model, ctxs: Sequence[Sequence[int]], limits: Sequence[int], eos: int, pad: int,
                  device="cpu", prefills: Sequence | None = None) -> list[list[int]]:
    """Greedy continuation of every context (token ids), KV cache, left-padded: row b stops at its first eos
    (kept) or after limits[b] new tokens, and leaves the batch then, so that the tail of a batch costs only the
    rows still going. The same tokens as model.generate(do_sample=False) with max_new_tokens=limits[b] per row
    (tests/test_dynamics.py). On the default preset's webnlg test set: 617 row-steps instead of 2,100, and a
    run's decoding 25.9 s instead of 35.6 s.

    prefills: one keep_prefill entry per context (the keys and values of its tokens and its first greedy token,
    kept from the scoring pass at the same parameters): decoding starts from them instead of running the contexts
    through the model (about half of the decoding time on the default preset's test sets). They equal the
    contexts' own forward pass up to float rounding (the padding differs), so a token may differ only where two
    logits tie to rounding."""
    from transformers import DynamicCache
    ids, mask = (t.to(device) for t in _left_padded(ctxs, pad))
    pos = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)  # the positions model.generate gives left-padded rows
    key = _cache_kwarg(model)
    if prefills is None:
        cache = DynamicCache(config=model.config)
        out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1,
                    **{key: cache})
        nxt = out.logits[:, -1].argmax(-1)
    else:
        if len(prefills) != len(ctxs) or any(p[0][0][0].shape[1] != len(c) for p, c in zip(prefills, ctxs)):
            raise ValueError("greedy_decode: a prefill does not match its context's length")
        cache, nxt = _prefilled_cache(model, prefills, ids.shape[1], device)
    rows = torch.arange(len(ctxs), device=device)  # batch row -> context index
    limit = torch.tensor(list(limits), device=device)
    tokens = torch.full((len(ctxs), max(limits)), pad, dtype=torch.long, device=device)
    length = torch.zeros(len(ctxs), dtype=torch.long, device=device)
    last = pos[:, -1]
    n = 0
    while True:
        n += 1
        tokens[rows, n - 1] = nxt
        length[rows] = n
        going = (nxt != eos) & (n < limit[rows])
        if not going.any():
            return [t[:k].tolist() for t, k in zip(tokens.cpu(), length.tolist())]
        if not going.all():
            keep = going.nonzero()[:, 0]
            cache.batch_select_indices(keep)
            rows, nxt, mask, last = rows[keep], nxt[keep], mask[keep], last[keep]
        mask = torch.cat([mask, mask.new_ones(len(rows), 1)], 1)
        last = last + 1
        out = model(input_ids=nxt[:, None], attention_mask=mask, position_ids=last[:, None], use_cache=True,
                    **{key: cache})
        nxt = out.logits[:, -1].argmax(-1)

@torch.no_grad()
def generate_outputs(model, tokenizer, encs: Sequence[Encoded], ref_lens: Sequence[int], batch_size: int = 32,
                     device="cpu", do_sample: bool = False, top_p: float = 0.95, temperature: float = 0.2,
                     len_factor: float = 1.5, seed: int = 0, prefill: dict | None = None) -> list[str]:
    """Generated output text for every example (KV cache, left-padded batches). Greedy (greedy_decode) unless
    do_sample (then nucleus sampling by model.generate, seeded). At most ceil(len_factor * reference length in
    tokens) + 1 new tokens per example; text stops at the first eos. Greedy outputs do not depend on the batch
    size. prefill: score_losses' prefill of these encs at the current parameters (greedy decoding starts from it).
    """
    was_training = model.training
    model.eval()
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    texts: list[str] = [""] * len(encs)
    order = sorted(range(len(encs)), key=lambda i: encs[i].n_ctx)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        ctxs = [encs[i].ids[:encs[i].n_ctx] for i in idx]
        limits = [int(math.ceil(len_factor * ref_lens[i])) + 1 for i in idx]
        if do_sample:
            ids, mask = _left_padded(ctxs, pad)
            torch.manual_seed(seed + start)
            gen = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), max_new_tokens=max(limits),
                                 pad_token_id=pad, eos_token_id=eos, use_cache=True, do_sample=True, top_p=top_p,
                                 temperature=temperature)
            outs = [gen[b, ids.shape[1]:ids.shape[1] + limits[b]].tolist() for b in range(len(idx))]  # own limit
        else:
            outs = greedy_decode(model, ctxs, limits, eos, pad, device,
                                 prefills=[prefill[i] for i in idx] if prefill and all(i in prefill for i in idx)
                                 else None)
        for b, i in enumerate(idx):
            new = outs[b]
            if eos in new:
                new = new[:new.index(eos)]
            texts[i] = tokenizer.decode(new, skip_special_tokens=True)
    model.train(was_training)
    return texts

def generation_metrics(hyps: Sequence[str], refs: Sequence[str]) -> list[dict]:
    """[{"bleu" (0-100), "rouge1", "rouge2", "rougeL" (0-1)}] per (hypothesis, reference)."""
    return [{"bleu": bleu_score(h, r), **rouge_scores(h, r)} for h, r in zip(hyps, refs)]
