"""Registry of simulators, keyed by the names of the released code, plus the honest baselines.

    original         Simfluence-linear: free factors per (train, test) pair
    vec_sim          Simfluence with a small MLP over per-pair vectors (released variant)
    enc_sim          GPTfluence, order 1 (or n, dot-product form), frozen encoder features
    norder_enc_sim   GPTfluence, order n, concat head as released
    gpt_sim          enc_sim on a causal LM's last-token hidden states
    no_change        baseline: the first value repeated
    mean_trajectory  baseline: per test example, the mean trajectory over the training runs
    anchor_sim       this repo's simulator: the mean trajectory plus a closed-form, cross-validated batch model
    anchor_lex_sim   anchor_sim plus a six-coefficient word-overlap batch effect (TF-IDF bags of words of both examples)
"""

from __future__ import annotations

from .anchor_sim import AnchorLexSim, AnchorSim
from .base import Simulator, batch_counts
from .baselines import MeanTrajectory, NoChange, TrajectoryBaseline
from .enc_sim import EncSim, FeatureSimulator, GPTSim
from .norder_enc_sim import NOrderEncSim
from .original import Simfluence
from .vec_sim import VecSim

SIMULATORS: dict[str, type[Simulator]] = {
    "original": Simfluence,
    "vec_sim": VecSim,
    "enc_sim": EncSim,
    "norder_enc_sim": NOrderEncSim,
    "gpt_sim": GPTSim,
    "no_change": NoChange,
    "mean_trajectory": MeanTrajectory,
    "anchor_sim": AnchorSim,
    "anchor_lex_sim": AnchorLexSim,
}
#: the simulator this repo recommends (see README, "Simulators"): the mean trajectory plus what each batch moves
#: (a word-overlap effect and a bilinear one on embeddings), fitted in closed form on whole rollouts, with its
#: settings cross-validated over training runs
RECOMMENDED = "anchor_lex_sim"
BASELINES = ("no_change", "mean_trajectory")


def simulator_class(name: str) -> type[Simulator]:
    if name not in SIMULATORS:
        raise ValueError(f"unknown simulator {name!r}; known: {', '.join(SIMULATORS)}")
    return SIMULATORS[name]


def make_simulator(name: str, config: dict, train_emb=None, test_emb=None) -> Simulator:
    """A simulator from its registry name and constructor config (embeddings [P, d], [N, d] for feature ones)."""
    cls = simulator_class(name)
    if cls.uses_features:
        return cls(train_emb, test_emb, **config)
    return cls(**config)


__all__ = ["RECOMMENDED", "AnchorSim", "AnchorLexSim", "make_simulator", "BASELINES", "SIMULATORS", "Simulator",
           "FeatureSimulator", "Simfluence", "VecSim", "EncSim",
           "GPTSim", "NOrderEncSim", "NoChange", "MeanTrajectory", "TrajectoryBaseline", "simulator_class",
           "batch_counts"]
