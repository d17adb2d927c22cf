"""GPTfluence: simulate GPT training dynamics to measure training-data influence.

The package is the library shared by the top-level scripts (train.py, test.py,
influence.py) and the scripts under utils/. One concept per module:

    io          JSON-lines reading with line numbers, atomic writes, sample files
    formats     the GPTDynamics raw / processed run layouts (writers and readers)
    preprocess  raw run dirs -> processed run dirs
    runs        processed run dirs -> stacked tensors (+ on-disk cache)
    tasks       built-in task generators and dataset importers
    encoders    frozen text encoders and the embedding cache
    simulators  Simfluence, GPTfluence (order 1 and n), gpt_sim; a registry
    rollout     teacher-forced predictions and autoregressive rollout
    metrics     all-steps MSE / MAE, final-step Spearman
    dynamics    the run maker (fine-tune a causal LM over many curricula)
    baselines   TracIn-CP, Grad-Dot
    influence   counterfactual influence, self-influence
"""

__version__ = "0.2.0"  # as pyproject.toml
