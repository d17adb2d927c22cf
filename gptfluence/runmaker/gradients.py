"""Projected last-layer gradients of every example (the features TracIn-CP and Grad-Dot need).

The gradient of an example's loss L with respect to the output projection W [V, H] (lm_head; a bias,
if any, is left out) is
    dL/dW = (1/P) sum_p (softmax(W h_p) - onehot(y_p)) h_p^T
over its P scored positions (h_p = final hidden state). It is stored through a fixed random
Kronecker projection  feat = vec(Pv^T (dL/dW) Ph)  with Pv [V, d1] ~ N(0, 1/d1) and
Ph [H, d2] ~ N(0, 1/d2), d1 * d2 = D (torch.Generator seeded with grad_seed), so that
E[<feat_a, feat_b>] = <dL_a/dW, dL_b/dW> (a Johnson-Lindenstrauss sketch). File format: see
gptfluence.runmaker.maker (grads/grads_step-<t>.pt).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from ..io import DataError
from .encoding import Encoded, _length_batches, collate
from .scoring import example_means, hidden_keeping_prefill


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

def _batch_features(h: torch.Tensor, logits: torch.Tensor, batch: dict, projector: GradProjector,
                    n: int) -> torch.Tensor:
    """Projected gradients [n, D] of a collated batch from its scored hidden states h [P, H] and their output
    logits [P, V] (float)."""
    probs = torch.softmax(logits, dim=-1)  # [P, V]
    e_proj = probs @ projector.pv - projector.pv[batch["targets"]]  # [P, d1]
    h_proj = h @ projector.ph  # [P, d2]
    w = (1.0 / batch["counts"])[batch["example"]]  # [P]
    outer = (e_proj * w[:, None])[:, :, None] * h_proj[:, None, :]  # [P, d1, d2]
    feats = torch.zeros(n, projector.d1 * projector.d2, device=h.device)
    feats.index_add_(0, batch["example"], outer.reshape(outer.shape[0], -1))
    return feats

@torch.no_grad()
def grad_features(model, encs: Sequence[Encoded], pad_id: int, projector: GradProjector, batch_size: int = 32,
                  device="cpu", with_losses: bool = False, prefill: dict | None = None):
    """Projected gradient of each example's mean output-token loss w.r.t. the output layer
    weight: FloatTensor [N, D] (CPU), in the order of `encs`. No autograd: the gradient is
    a sum of outer products (softmax - onehot) h^T, projected factor by factor.
    with_losses: also return the examples' mean output-token losses [N] from the same forward pass, equal to
    scoring.score_losses with the same batch_size (no autocast): (features, losses).
    prefill: a dict filled as scoring.score_losses(prefill=...) fills it (decoding can start from this pass)."""
    was_training = model.training
    model.eval()
    out = torch.empty(len(encs), projector.dim)
    losses = torch.empty(len(encs))
    dev = torch.device(device)
    for idx in _length_batches(encs, batch_size):
        batch = collate([encs[i] for i in idx], pad_id, dev)
        hidden = hidden_keeping_prefill(model, batch, [encs[i] for i in idx], idx, prefill)
        h = hidden[batch["rows"], batch["cols"] - 1].float()  # [P, H]
        logits = model.get_output_embeddings()(h.to(model.dtype)).float()  # [P, V]
        out[idx] = _batch_features(h, logits, batch, projector, len(idx)).cpu()
        if with_losses:
            losses[idx] = example_means(F.cross_entropy(logits, batch["targets"], reduction="none"), batch).cpu()
    model.train(was_training)
    return (out, losses) if with_losses else out

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
