"""Registry of simulators, keyed by the names of the released code.

    original        Simfluence-linear: free factors per (train, test) pair
    enc_sim         GPTfluence, order 1 (or n, dot-product form), frozen encoder features
    norder_enc_sim  GPTfluence, order n, concat head as released
    gpt_sim         enc_sim on a causal LM's last-token hidden states
"""

from __future__ import annotations

from .base import Simulator, batch_counts
from .enc_sim import EncSim, FeatureSimulator, GPTSim
from .norder_enc_sim import NOrderEncSim
from .original import Simfluence

SIMULATORS: dict[str, type[Simulator]] = {
    "original": Simfluence,
    "enc_sim": EncSim,
    "norder_enc_sim": NOrderEncSim,
    "gpt_sim": GPTSim,
}


def simulator_class(name: str) -> type[Simulator]:
    if name not in SIMULATORS:
        raise ValueError(f"unknown simulator {name!r}; known: {', '.join(SIMULATORS)}")
    return SIMULATORS[name]


__all__ = ["SIMULATORS", "Simulator", "FeatureSimulator", "Simfluence", "EncSim", "GPTSim", "NOrderEncSim",
           "simulator_class", "batch_counts"]
