"""Tokenising task samples for the run maker: context + target, the scored positions, padded batches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ..io import DataError, sample_target


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

def _length_batches(encs: Sequence[Encoded], batch_size: int) -> list[list[int]]:
    order = sorted(range(len(encs)), key=lambda i: len(encs[i].ids))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
