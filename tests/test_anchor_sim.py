"""anchor_sim (gptfluence/simulators/anchor_sim.py): the closed form equals a plain least-squares fit of the
rollout, the cross-validation falls back to the mean trajectory when batches carry no signal, planted dynamics
are recovered, influence is exact, predictions stay in range, unseen test examples use the shifted mean."""

from __future__ import annotations

import math

import pytest
import torch

from gptfluence import influence as I
from gptfluence.metrics import evaluate
from gptfluence.runs import load_runs
from gptfluence.simulators import AnchorSim
from gptfluence.simulators.anchor_sim import _mean, _normal_equations, _solve
from gptfluence.simulators.base import batch_counts
from gptfluence.synthetic import make_planted
from gptfluence.training import Dynamics


def toy(R=6, N=5, T=7, P=12, d=6, seed=0, signal=1.0, noise=0.0):
    """Runs whose residuals around a shared curve are a planted bilinear batch effect (+ noise)."""
    g = torch.Generator().manual_seed(seed)
    emb_tr, emb_te = torch.randn(P, 2 * d, generator=g), torch.randn(N, 2 * d, generator=g)
    batches = torch.stack([torch.stack([torch.randperm(P, generator=g)[:3] for _ in range(T)]) for _ in range(R)])
    w = torch.randn(2 * d, generator=g)
    eff = signal * torch.tanh(emb_tr @ w)[:, None] * torch.tanh(emb_te @ w)[None]     # [P, N]
    eff = eff - eff.mean(0)
    counts = batch_counts(batches.reshape(R * T, -1), P).reshape(R, T, P)
    steps = counts @ eff                                                              # [R, T, N]
    steps[:, 0] = 0
    curve = torch.linspace(2.0, 1.0, T)
    values = curve[None, None] + steps.cumsum(1).transpose(1, 2) + noise * torch.randn(R, N, T, generator=g)
    data = Dynamics(values.float(), torch.ones(R, N, T, dtype=torch.bool), batches, torch.arange(N),
                    torch.arange(1, T + 1))
    return data, emb_tr, emb_te


def test_normal_equations_equal_an_explicit_least_squares_fit():
    data, tr, te = toy(R=12, N=8, T=8, noise=0.05)  # noise: the first values differ, e_0 is identifiable
    sim = AnchorSim(tr, te, k=2)
    sim._pca_fit()
    U, q = sim._cumulative(data.batches), sim._q(data.test_rows)
    v, mask = data.values.double(), data.mask
    m = _mean(v, mask)
    stats = _normal_equations(U, q, v, mask, m, e0_on=True)
    W, kap = _solve(stats, 1e-9, e0_on=True)
    # the explicit design: one row per (run, test example, step t >= 1)
    R, N, T = v.shape
    rows, ys = [], []
    for r in range(R):
        for z in range(N):
            for t in range(1, T):
                e0 = float(v[r, z, 0] - m[z, 0])
                onehot = torch.zeros(T, dtype=torch.float64)
                onehot[t] = e0
                rows.append(torch.cat([torch.outer(U[r, t], q[z]).reshape(-1), onehot]))
                ys.append(float(v[r, z, t] - m[z, t]))
    X, y = torch.stack(rows), torch.tensor(ys, dtype=torch.float64)
    keep = torch.cat([torch.ones(U.shape[-1] * q.shape[-1], dtype=torch.bool), torch.arange(T) > 0])
    assert torch.linalg.matrix_rank(X[:, keep]) == int(keep.sum())  # a unique least-squares solution
    ref = torch.linalg.lstsq(X[:, keep], y[:, None]).solution[:, 0]
    got = torch.cat([W.reshape(-1), kap[1:]])
    assert torch.allclose(got, ref, atol=1e-6, rtol=1e-5)


def test_recovers_planted_batch_effects_and_cross_validates():
    data, tr, te = toy(R=10, signal=0.3)
    train, held = data.runs(list(range(8))), data.runs([8, 9])
    sim = AnchorSim(tr, te, k=6)
    sim.fit_data(train)
    pred = sim.predict(held.batches, held.values[..., 0], held.test_rows, held.steps)
    mean = _mean(train.values.double(), train.mask).float()
    err = evaluate(pred, held.values, held.mask)["all_steps_mse_mean"]
    base = evaluate(mean[None].expand_as(held.values), held.values, held.mask)["all_steps_mse_mean"]
    assert err < 0.05 * base, (err, base)
    assert math.isfinite(float(sim.chosen[0]))  # the batch model is used


def test_falls_back_to_the_mean_trajectory_without_signal():
    data, tr, te = toy(R=10, signal=0.0, noise=0.05, seed=3)
    sim = AnchorSim(tr, te, k=6)
    sim.fit_data(data.runs(list(range(8))))
    held = data.runs([8, 9])
    pred = sim.predict(held.batches, held.values[..., 0], held.test_rows, held.steps)
    mean = _mean(data.runs(list(range(8))).values.double(), data.mask[:8]).float()
    err = evaluate(pred, held.values, held.mask)["all_steps_mse_mean"]
    base = evaluate(mean[None].expand_as(held.values), held.values, held.mask)["all_steps_mse_mean"]
    assert err <= 1.05 * base  # pure noise: at most a hair worse than the mean trajectory it falls back to
    assert float(sim.W.abs().max()) < 1e-2 or not math.isfinite(float(sim.chosen[0]))


def test_the_guard_drops_a_batch_term_that_does_not_carry_over_to_unseen_runs(monkeypatch):
    """The inner cross-validation made to keep a batch term at a weak ridge (as a fold choice won by a hair can) on
    pure noise: the guard, judging the whole fit on folds it did not choose on, drops it, and the simulator is the
    mean trajectory of the training runs exactly. With a planted effect the guard keeps the fit."""
    import gptfluence.simulators.anchor_sim as A
    data, tr, te = toy(R=10, signal=0.0, noise=0.05, seed=3)
    train = data.runs(list(range(8)))
    monkeypatch.setattr(A, "_one_se_choice", lambda errs: (1e-3, False))
    sim = AnchorSim(tr, te, k=6)
    sim.fit_data(train)
    gain, se, kept = sim.guard.tolist()
    assert kept == 0.0 and gain <= se, sim.guard
    assert float(sim.W.abs().max()) == 0.0 and float(sim.kappa.abs().max()) == 0.0
    held = data.runs([8, 9])
    pred = sim.predict(held.batches, held.values[..., 0], held.test_rows, held.steps)
    mean = _mean(train.values.double(), train.mask).float()
    assert torch.allclose(pred, mean[None].expand_as(pred).clamp(min=0), atol=1e-6)
    monkeypatch.undo()
    # planted batch effects: kept, with a gain beyond twice its standard error
    data, tr, te = toy(R=10, signal=0.3)
    sim = AnchorSim(tr, te, k=6)
    sim.fit_data(data.runs(list(range(8))))
    gain, se, kept = sim.guard.tolist()
    assert kept == 1.0 and gain > 2 * se and float(sim.W.abs().max()) > 0
    # too few runs to check (a fit without a fold needs 2 runs): kept unchecked, said so; 3 runs are checked
    sim = AnchorSim(tr, te, k=6)
    sim.fit_data(data.runs([0, 1]))
    assert sim.guard[2] == 1.0 and all(math.isnan(float(x)) for x in sim.guard[:2])
    sim.fit_data(data.runs([0, 1, 2]))
    assert all(math.isfinite(float(x)) for x in sim.guard)


def test_a_fit_logs_its_own_choices_not_those_of_its_cross_validation_refits(caplog):
    import logging
    data, tr, te = toy(R=10, signal=0.3)
    with caplog.at_level(logging.INFO, logger="gptfluence.simulators.anchor_sim"):
        AnchorSim(tr, te, k=6).fit_data(data.runs(list(range(8))))
    lines = [r.getMessage() for r in caplog.records]
    assert sum("chosen by" in x for x in lines) == 1 and sum("whole fit" in x for x in lines) == 1, lines


def test_same_numbers_whatever_the_seed():
    data, tr, te = toy()
    preds = []
    for seed in (0, 1, 2):
        torch.manual_seed(seed)
        sim = AnchorSim(tr, te, k=3)
        sim.fit_data(data)
        preds.append(sim.predict(data.batches, data.values[..., 0], data.test_rows, data.steps))
    assert torch.equal(preds[0], preds[1]) and torch.equal(preds[0], preds[2])


def test_influence_is_exact_and_matches_edited_rollouts():
    data, tr, te = toy(signal=0.3)
    sim = AnchorSim(tr, te, k=4)
    sim.fit_data(data)
    init = data.values[:2, :, 0]
    for kw in ({}, {"renormalize": False}, {"mode": "add"}, {"mode": "add", "insert_steps": [2, 4]}):
        res = I.influence(sim, data.batches[:2], init, data.test_rows, **kw)
        ref = I.reference_influence(sim, data.batches[:2], init, data.test_rows, **kw)
        assert torch.allclose(res.final.float(), ref, atol=1e-5), kw
    own = I.self_influence(sim, data.batches[:1], 1.5)
    assert own.final.shape == (1, sim.n_train, 1) and torch.isfinite(own.final).all()


def test_influence_in_memory_bounded_chunks_is_the_same(monkeypatch):
    """With the block budget so small that every training example is its own chunk (step tables built chunk by
    chunk), influence is what one chunk of all examples gives."""
    data, tr, te = toy(R=10, signal=0.3)
    sim = AnchorSim(tr, te, k=4)
    sim.fit_data(data)
    init = data.values[:2, :, 0]
    whole = I.influence(sim, data.batches[:2], init, data.test_rows, chunk_size=None, return_trajectory=True)
    monkeypatch.setattr(I, "ADDITIVE_CHUNK_ELEMENTS", 1)
    small = I.influence(sim, data.batches[:2], init, data.test_rows, return_trajectory=True)
    assert float(whole.final.abs().max()) > 1e-3  # there is an effect to compare
    for name in ("final", "trajectory", "baseline", "delta"):
        assert torch.allclose(getattr(small, name), getattr(whole, name), rtol=0, atol=1e-12), name


def test_predictions_stay_in_the_metric_range():
    data, tr, te = toy(signal=3.0)
    data.values.sub_(1.9)  # values near 0: an unclipped additive model would go below
    sim = AnchorSim(tr, te, k=4, metric="loss")
    sim.fit_data(data)
    pred = sim.predict(data.batches, data.values[..., 0], data.test_rows, data.steps)
    assert float(pred.min()) >= 0.0


def test_unseen_test_examples_follow_their_first_value():
    """An example it never saw: at every step the least-squares line phi_t = a_t + b_t phi_0 over the training
    runs' (run, example) pairs, computed here directly; an old checkpoint without the line keeps the seen
    examples' mean curve shifted to the first value."""
    import numpy as np
    data, tr, te = toy(N=6)
    data.values.mul_(1.0 + 0.3 * torch.arange(6.0)[None, :, None])  # first values that say something
    sim = AnchorSim(tr, te, k=3)
    sim.fit_data(data)
    sim.forget_test_examples(2)  # two new test examples: nothing recorded for them
    sim.W.zero_()
    init = torch.tensor([[1.7, 2.3]])
    pred = sim.predict(data.batches[:1], init, torch.arange(2), data.steps)
    v = data.values.double().numpy()
    for t in range(1, v.shape[-1]):
        b, a = np.polyfit(v[..., 0].ravel(), v[..., t].ravel(), 1)
        assert abs(float(pred[0, 0, t]) - (a + b * 1.7)) < 1e-4 and abs(float(pred[0, 1, t]) - (a + b * 2.3)) < 1e-4
    state = {k: x for k, x in sim.state_dict().items() if k != "unseen_coef"}
    old = AnchorSim(tr, te, k=3, n_steps=data.steps.numel())
    old.forget_test_examples(2)
    old.load_state_dict(state)
    pred = old.predict(data.batches[:1], init, torch.arange(2), data.steps)
    curve = _mean(data.values.double(), data.mask).mean(0)  # the mean curve of the examples seen in training
    assert torch.allclose(pred[0, 0].double(), 1.7 + curve - curve[0], atol=1e-5)


@pytest.mark.parametrize("sim_name", ["anchor_sim", "anchor_lex_sim"])
def test_planted_runs_through_train_and_test(tmp_path, sim_name):
    """The repo's planted runs (topic-driven multiplicative dynamics): anchor_sim and the recommended
    anchor_lex_sim at their defaults, through train.py's and test.py's pipeline."""
    from gptfluence.pipeline import TestSpec, TrainSpec, test_simulator, train_simulator
    task = make_planted(tmp_path, n_train=48, n_test=40, n_runs=20, sample=32, epochs=2, seed=0)
    runs = [str(d) for d in task.run_dirs]
    res = train_simulator(TrainSpec(sim_name=sim_name, task="planted", run_dirs=runs[:16], test_dirs=runs[16:],
                                    valid_num=1, train_file=str(task.train_path), eval_file=str(task.eval_path),
                                    output_dir=str(tmp_path / "out"), progress=False))
    m = test_simulator(TestSpec(checkpoint=str(res.out_dir), plot_examples=0, progress=False))
    rs = load_runs(runs[:15])
    mean = (rs.values * rs.mask).sum(0) / rs.mask.sum(0)
    test_rs = load_runs(runs[16:])
    base = evaluate(mean[None].expand_as(test_rs.values), test_rs.values, test_rs.mask)
    assert m["all_steps_mse_mean"] < 0.4 * base["all_steps_mse_mean"], (m, base)
    assert m["final_step_spearman_mean"] > 0.8 and m["invalid_predictions"] == 0


def test_kronecker_spectrum_solves_like_the_full_gram_matrix():
    """With every step recorded for all test examples the Gram matrix is a Kronecker product; the ridge solutions
    read off its two small eigendecompositions equal those of the full matrix, for every ridge strength, with
    and without the first-value deviation."""
    from gptfluence.simulators.anchor_sim import _gram, _separable, _Spectrum
    g = torch.Generator().manual_seed(0)
    R, T, N, a, c = 5, 7, 9, 6, 4
    U = torch.randn(R, T, a, generator=g, dtype=torch.float64).cumsum(1)
    q = torch.randn(N, c, generator=g, dtype=torch.float64)
    v = torch.randn(R, N, T, generator=g, dtype=torch.float64)
    mask = torch.ones(R, N, T, dtype=torch.bool)
    mask[1, :, 3] = False  # a step missing for every example of a run keeps the structure
    assert _separable(mask)
    m = _mean(v, mask)
    kron, full = _Spectrum(U, q, mask), _Spectrum(None, None, None, _gram(U, q, mask))
    for e0_on in (False, True):
        stats = _normal_equations(U, q, v, mask, m, e0_on)
        for alpha in (1e-3, 1.0, 1e3):
            Wk, kk = _solve(stats, alpha, e0_on, kron)
            Wf, kf = _solve(stats, alpha, e0_on, full)
            assert torch.allclose(Wk, Wf, atol=1e-8) and torch.allclose(kk, kf, atol=1e-8)
    mask[2, 0, 4] = False  # one example missing at one step: the general path
    assert not _separable(mask)


def own_points_toy(R=16, T=8, P=40, d=6, seed=1, noise=0.01):
    """Runs whose test set holds 3 other examples and 8 training examples (rows 3-10 = training 0-7, the same
    embeddings), whose values fall by d_i every time their own example is trained on: 8 independent effects, more
    than the bilinear term of rank k = 2 can hold."""
    g = torch.Generator().manual_seed(seed)
    emb_tr = torch.randn(P, 2 * d, generator=torch.Generator().manual_seed(0))
    emb_te = torch.cat([torch.randn(3, 2 * d, generator=torch.Generator().manual_seed(1)), emb_tr[:8]])
    batches = torch.stack([torch.stack([torch.randperm(P, generator=g)[:4] for _ in range(T)]) for _ in range(R)])
    planted = torch.tensor([-0.3, -0.1, 0.0, -0.2, -0.25, -0.05, -0.15, 0.1])
    counts = batch_counts(batches.reshape(R * T, -1), P).reshape(R, T, P)
    counts[:, 0] = 0
    own = counts.cumsum(1)[..., :8] * planted                                        # [R, T, 8]
    values = torch.linspace(2.0, 1.0, T)[None, None].repeat(R, 11, 1) + noise * torch.randn(R, 11, T, generator=g)
    values[:, 3:] += own.transpose(1, 2)
    data = Dynamics(values.float(), torch.ones(R, 11, T, dtype=torch.bool), batches, torch.arange(11),
                    torch.arange(1, T + 1))
    return data, emb_tr, emb_te, planted


def test_a_test_example_that_is_a_training_example_gets_its_own_effect():
    data, tr, te, planted = own_points_toy()
    sim = AnchorSim(tr, te, k=2)
    sim.fit_data(data)
    d = sim.self_effect[:8].float()
    # fitted after the shared terms, on what they leave (they take part of it): the planted order and signs
    assert torch.corrcoef(torch.stack([d, planted]))[0, 1] > 0.95
    assert bool((d[planted.abs() >= 0.1].sign() == planted[planted.abs() >= 0.1].sign()).all())
    assert sim.self_effect[8:].abs().max() == 0  # no test example is training example 8..39
    held, _, _, _ = own_points_toy(seed=2)  # other curricula, the same examples
    pred = sim.predict(held.batches, held.values[..., 0], held.test_rows, held.steps)
    with_term = evaluate(pred, held.values, held.mask)["all_steps_mse_mean"]
    kept = sim.self_effect.clone()
    sim.self_effect.zero_()
    pred = sim.predict(held.batches, held.values[..., 0], held.test_rows, held.steps)
    assert with_term < 0.25 * evaluate(pred, held.values, held.mask)["all_steps_mse_mean"]
    sim.self_effect.copy_(kept)
    # influence stays exact (closed form = edited rollouts), the test rows that are training examples included
    init = held.values[:2, :, 0]
    res = I.influence(sim, held.batches[:2], init, held.test_rows)
    ref = I.reference_influence(sim, held.batches[:2], init, held.test_rows)
    assert torch.allclose(res.final.float(), ref, atol=1e-5)
    # self-influence (every training example as its own test point): removing example i raises its own final
    # value by -d_i per time it was trained on, beside what the shared terms say
    own = I.self_influence(sim, held.batches[:1], 1.5)
    times = batch_counts(held.batches[0, 1:], sim.n_train).sum(0)
    base = sim.self_effect.clone()
    sim.self_effect.zero_()
    without = I.self_influence(sim, held.batches[:1], 1.5)
    assert torch.allclose((own.final - without.final)[0, :, 0], -(base * times), atol=1e-6)


def test_no_own_effect_without_such_test_examples_and_old_checkpoints_load():
    data, tr, te = toy(R=8, signal=0.3)
    sim = AnchorSim(tr, te, k=2)
    sim.fit_data(data)
    assert sim.self_effect.abs().max() == 0
    # saved before the own-effect term and the guard existed
    state = {k: v for k, v in sim.state_dict().items() if k not in ("self_effect", "guard")}
    other = AnchorSim(tr, te, k=2, n_steps=data.values.shape[-1])
    other.load_state_dict(state)
    assert other.self_effect.abs().max() == 0 and other.guard.abs().max() == 0
    data, tr, te, _ = own_points_toy()
    sim = AnchorSim(tr, te, k=2)
    sim.fit_data(data)
    # a test text that agrees with a training text on the first columns only is not that example
    near = tr[5].clone()
    near[-1] += 1.0
    probe = AnchorSim(tr, torch.stack([tr[3], near, te[0]]), k=2)
    assert probe._duplicates(torch.arange(3)).nonzero().tolist() == [[0, 3]]
    sim.set_examples(train_emb=tr.flip(0))  # another pool: d_i belonged to the old one
    assert sim.self_effect.shape == (tr.shape[0],) and sim.self_effect.abs().max() == 0
