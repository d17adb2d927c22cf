"""Small simulators of every published kind on random embeddings, for the rollout and simulator tests."""

import torch

from gptfluence.simulators import make_simulator


def make_sims(P=7, N=5, d=8, order=1):
    torch.manual_seed(0)
    tr, te = torch.randn(P, d), torch.randn(N, d)
    sims = [make_simulator("original", {"n_train": P, "n_test": N, "order": order, "batch_size": 3}),
            make_simulator("enc_sim", {"order": order}, tr, te),
            make_simulator("enc_sim", {"order": order, "separate_proj": True}, tr, te),
            make_simulator("gpt_sim", {"order": order}, tr, te),
            make_simulator("norder_enc_sim", {"order": order}, tr, te)]
    for s in sims:  # move Simfluence away from its identity start
        if s.name == "original":
            with torch.no_grad():
                s.A.add_(0.05 * torch.randn_like(s.A))
                s.B.add_(0.05 * torch.randn_like(s.B))
    return sims
