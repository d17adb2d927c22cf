"""The paper's metrics (gptfluence/metrics.py) against hand computations."""


import math

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from gptfluence.metrics import evaluate, spearman, trajectory_errors


def test_metrics_match_hand_computation():
    true = torch.tensor([[[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]], [[2.0, 2.0, 2.0], [0.0, 1.0, 5.0]]])
    pred = true.clone()
    pred[0, 0, 1] += 1.0     # error 1 at step 2
    pred[1, 1, 2] -= 2.0     # error -2 at step 3
    pred[1, 0, 0] += 100.0   # the first step never counts
    mask = torch.ones_like(true, dtype=torch.bool)
    m = evaluate(pred, true, mask)
    mses = np.array([0.5, 0.0, 0.0, 2.0])
    maes = np.array([0.5, 0.0, 0.0, 1.0])
    assert math.isclose(m["all_steps_mse_mean"], mses.mean()) and math.isclose(m["all_steps_mse_std"], mses.std())
    assert math.isclose(m["all_steps_mae_mean"], maes.mean()) and math.isclose(m["all_steps_mae_std"], maes.std())
    assert m["final_step_spearman_per_run"] == pytest.approx([1.0, 1.0]) and m["num_scored_trajectories"] == 4
    mse, _, cnt = trajectory_errors(pred, true, mask)
    assert cnt.tolist() == [[2, 2], [2, 2]]

def test_spearman_matches_scipy_with_ties():
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 5, 30).astype(float), rng.random(30)
    assert math.isclose(spearman(x, y), spearmanr(x, y).statistic, rel_tol=1e-12)

def test_diverged_trajectories_are_counted_not_averaged():
    true = torch.ones(1, 3, 4)
    pred = torch.ones(1, 3, 4)
    pred[0, 1, 3] = float("inf")
    pred[0, 2, 2] = 1e9
    m = evaluate(pred, true, torch.ones_like(true, dtype=torch.bool))
    assert m["diverged_trajectories"] == 2 and m["num_scored_trajectories"] == 1
    assert m["all_steps_mse_mean"] == 0.0 and math.isfinite(m["all_steps_mse_mean"])


def test_out_of_range_predictions_are_counted():
    true = torch.ones(1, 2, 4)
    pred = torch.tensor([[[1.0, -0.1, 0.5, 0.2], [1.0, 0.9, 0.8, 0.7]]])
    mask = torch.ones_like(true, dtype=torch.bool)
    m = evaluate(pred, true, mask, metric="loss")
    assert m["invalid_predictions"] == 1 and m["invalid_trajectories"] == 1 and m["valid_range"] == [0.0, None]
    m = evaluate(pred * 200, true, mask, metric="bleu")
    assert m["invalid_predictions"] == 4 and m["valid_range"] == [0.0, 100.0]  # t >= 1: -20 < 0; 180, 160, 140 > 100
    assert evaluate(pred, true, mask)["invalid_predictions"] == 0  # no metric named: nothing checked
