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
