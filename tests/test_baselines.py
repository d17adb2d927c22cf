"""TracIn-CP and Grad-Dot (gptfluence/baselines.py, utils/run_tracin.py).

Hand-made runs of a linear softmax model trained by SGD: its last layer is the whole model, the
gradient of an example's cross-entropy w.r.t. W [V, H] is (softmax(W x) - onehot(y)) x^T, written
unprojected (D = V * H) in the run maker's grads file format. Influences are checked against a
direct loop computation; first-order SGD dynamics must be recovered (a ~ 1 / batch size). One
end-to-end test makes real tiny runs with the run maker and scores them with utils/run_tracin.main.
"""

import json
import math
import os
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest
import torch

from gptfluence import baselines as B
from gptfluence.cli import construct_runs, run_tracin
from gptfluence.formats import RawRunWriter
from gptfluence.io import DataError, atomic_open
from gptfluence.preprocess import preprocess_run
from gptfluence.runs import load_run, load_runs

ROOT = Path(__file__).resolve().parents[1]
N_POOL, N_TEST, V, H, S, BS = 8, 4, 3, 5, 8, 2



# ----------------------------------------------------------------------------- hand-made linear runs

def _data():
    g = torch.Generator().manual_seed(0)
    X, Xt = torch.randn(N_POOL, H, generator=g, dtype=torch.float64), torch.randn(N_TEST, H, generator=g,
                                                                                  dtype=torch.float64)
    Y, Yt = torch.randint(0, V, (N_POOL,), generator=g), torch.randint(0, V, (N_TEST,), generator=g)
    W0 = 0.3 * torch.randn(V, H, generator=g, dtype=torch.float64)
    return X, Y, Xt, Yt, W0


def linear_grads(W, X, Y):
    """Analytic dCE/dW of each example, flattened: [n, V*H] = vec((softmax(W x) - e_y) x^T)."""
    p = torch.softmax(X @ W.T, dim=-1)
    p[torch.arange(len(Y)), Y] -= 1.0
    return (p[:, :, None] * X[:, None, :]).reshape(len(Y), -1)


def linear_losses(W, X, Y):
    return torch.nn.functional.cross_entropy(X @ W.T, Y, reduction="none")


def _save_grads(path, step, lr, W, data):
    X, Y, Xt, Yt, _ = data
    obj = {"step": step, "params_after_step": step - 1, "learning_rate": lr,
           "train": linear_grads(W, X, Y).half(), "test": linear_grads(W, Xt, Yt).half(),
           "train_ids": torch.arange(N_POOL), "test_ids": torch.arange(N_TEST), "dim": V * H,
           "proj_shape": (V, H), "proj_seed": 0}
    with atomic_open(path, "wb") as f:
        torch.save(obj, f)


def make_linear_run(raw_dir, seed, lr0=0.1, every=1, grad_steps=None, final=True, grads=True, log_lr=True):
    """Train the linear softmax model with SGD on a seeded curriculum (batch mean loss, lr decaying
    linearly); write a raw run dir. Returns {"batches": {t: ids}, "lrs": {t: lr}}."""
    data = _data()
    X, Y, Xt, Yt, W = data
    W = W.clone()
    order = torch.cat([torch.randperm(N_POOL, generator=torch.Generator().manual_seed(seed))
                       for _ in range(S * BS // N_POOL)])
    grad_steps = set(range(1, S + 1)) if grad_steps is None else set(grad_steps)
    batches, lrs = {}, {}
    with RawRunWriter(raw_dir, "lin") as w:
        for t in range(1, S + 1):
            ids = order[(t - 1) * BS:t * BS]
            lr = lr0 * (S - t + 1) / S
            if grads and t in grad_steps:
                _save_grads(Path(raw_dir) / "grads" / f"grads_step-{t}.pt", t, lr, W, data)
            g = linear_grads(W, X[ids], Y[ids]).mean(0).reshape(V, H)
            W -= lr * g
            extra = {"learning_rate": lr} if log_lr else {}
            w.log_step(t, float(linear_losses(W, X[ids], Y[ids]).mean()), ids.tolist(), **extra)
            batches[t], lrs[t] = ids.tolist(), lr
            if t % every == 0 or t == S:
                w.write_loss(t, list(range(N_TEST)), linear_losses(W, Xt, Yt).tolist())
        if grads and final:
            _save_grads(Path(raw_dir) / "grads" / "grads_final.pt", S + 1, 0.0, W, data)
    return {"batches": batches, "lrs": lrs}


def make_linear_runs(tmp_path, seeds, **kw):
    """Raw runs under tmp/raw, processed under tmp/proc (same names). Returns (processed dirs, infos)."""
    dirs, infos = [], []
    for s in seeds:
        name = f"lin_seed-{s}"
        infos.append(make_linear_run(tmp_path / "raw" / name, s, **kw))
        preprocess_run(tmp_path / "raw" / name, tmp_path / "proc" / name, "lin")
        dirs.append(str(tmp_path / "proc" / name))
    return dirs, infos


def direct_influence(feats, info, rec_steps, test_ids, ckpt_of):
    """The hand computation: loops over recorded steps, optimizer steps, batch members and test examples.
    feats: checkpoint key -> (train [P, D], test [N, D]) float64; ckpt_of: step -> checkpoint key."""
    out = torch.zeros(len(test_ids), len(rec_steps), dtype=torch.float64)
    for t, s_rec in enumerate(rec_steps):
        for u in range(rec_steps[0] + 1, s_rec + 1):
            tr, te = feats[ckpt_of(u)]
            for i in info["batches"][u]:
                for n, z in enumerate(test_ids):
                    out[n, t] += info["lrs"][u] * float(tr[i] @ te[z])
    return out


def file_feats(grads_dir, key):
    name = "grads_final.pt" if key == "final" else f"grads_step-{key}.pt"
    obj = torch.load(Path(grads_dir) / name)
    return obj["train"].double(), obj["test"].double()


@pytest.fixture(scope="module")
def lin(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lin")
    dirs, infos = make_linear_runs(tmp, [1, 2, 3, 4])
    return tmp, dirs, infos


# ----------------------------------------------------------------------------- tests: features, influence

def test_linear_grads_match_autograd():
    X, Y, _, _, W0 = _data()
    W = W0.clone().requires_grad_(True)
    for i in range(3):
        W.grad = None
        linear_losses(W, X[i:i + 1], Y[i:i + 1]).sum().backward()
        assert torch.allclose(W.grad.reshape(-1), linear_grads(W0, X[i:i + 1], Y[i:i + 1])[0], atol=1e-12)


def test_load_grad_features_indexed_by_id(lin, tmp_path):
    tmp, dirs, _ = lin
    feats = B.load_grad_features(dirs[0], raw_root=tmp / "raw", steps=[2, 5])
    assert feats.grads_dir == tmp / "raw" / "lin_seed-1" / "grads"
    assert feats.available == list(range(1, S + 1)) and sorted(feats.steps) == [2, 5]
    assert feats.dim == V * H and feats.final is not None
    g = feats.steps[5]
    tr, te = file_feats(feats.grads_dir, 5)
    assert g.train.dtype == torch.float32 and torch.equal(g.train.double(), tr) and torch.equal(g.test.double(), te)
    assert g.lr == pytest.approx(0.1 * (S - 5 + 1) / S)
    # rows are indexed by id: a file holding ids in another order gives the same rows
    obj = torch.load(feats.grads_dir / "grads_step-5.pt")
    perm = torch.tensor([3, 0, 7, 1, 6, 2, 5, 4])
    obj["train"], obj["train_ids"] = obj["train"][perm], obj["train_ids"][perm]
    torch.save(obj, tmp_path / "p.pt")
    g2, ids, _ = B.read_grads_file(tmp_path / "p.pt")
    assert torch.equal(ids, perm) and torch.equal(g2.train, g.train)


def test_tracin_all_equals_hand_computation(lin):
    tmp, dirs, infos = lin
    run = load_run(dirs[0])
    rec = run["rec_steps"]
    test_ids = torch.tensor([3, 0, 2])
    I, chosen = B.run_influence(dirs[0], run["opt_steps"], run["samples"], rec, test_ids, "tracin_cp", None,
                                raw_root=tmp / "raw")
    assert chosen == list(range(1, S + 1))
    gdir = tmp / "raw" / "lin_seed-1" / "grads"
    feats = {s: file_feats(gdir, s) for s in range(1, S + 1)}
    want = direct_influence(feats, infos[0], rec.tolist(), test_ids.tolist(), lambda u: u)
    assert I.shape == (3, S) and torch.all(I[:, 0] == 0)
    assert torch.allclose(I, want, rtol=1e-10, atol=1e-12)
    assert float(want.abs().max()) > 0.05  # not a trivially zero influence


def test_tracin_k_picks_checkpoints(lin):
    assert B.select_checkpoints(range(1, 97), 10) == [1, 12, 22, 33, 43, 54, 64, 75, 85, 96]
    from gptfluence.runmaker import parse_grad_steps
    assert B.select_checkpoints(range(1, 97), 10) == parse_grad_steps("10", 96)
    assert B.select_checkpoints([2, 4, 6, 8], 3) == [2, 6, 8]  # round(1.5) = 2: Python rounds half to even
    assert B.select_checkpoints([2, 4, 6], 10) == [2, 4, 6] and B.select_checkpoints([2, 4, 6], None) == [2, 4, 6]
    assert B.select_checkpoints([3, 9], 1) == [3]
    steps = torch.arange(1, 11)
    assert B.assign_checkpoints(steps, [1, 5, 9]).tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    assert B.assign_checkpoints(steps, [3, 7]).tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 1, 1]
    # TracIn-CP(3) on a run with all 8 checkpoints: positions 0, round(3.5) = 4, 7 -> steps 1, 5, 8
    tmp, dirs, infos = lin
    run = load_run(dirs[1])
    I, chosen = B.run_influence(dirs[1], run["opt_steps"], run["samples"], run["rec_steps"], torch.arange(N_TEST),
                                "tracin_cp", 3, raw_root=tmp / "raw")
    assert chosen == [1, 5, 8]
    gdir = tmp / "raw" / "lin_seed-2" / "grads"
    feats = {s: file_feats(gdir, s) for s in chosen}
    ck = lambda u: 8 if u >= 8 else 5 if u >= 5 else 1  # noqa: E731
    want = direct_influence(feats, infos[1], run["rec_steps"].tolist(), list(range(N_TEST)), ck)
    assert torch.allclose(I, want, rtol=1e-10, atol=1e-12)
    I_all, _ = B.run_influence(dirs[1], run["opt_steps"], run["samples"], run["rec_steps"], torch.arange(N_TEST),
                               "tracin_cp", None, raw_root=tmp / "raw")
    assert not torch.allclose(I, I_all)


def test_grad_dot_uses_final_features(lin):
    tmp, dirs, infos = lin
    run = load_run(dirs[2])
    I, chosen = B.run_influence(dirs[2], run["opt_steps"], run["samples"], run["rec_steps"], torch.arange(N_TEST),
                                "grad_dot", raw_root=tmp / "raw")
    assert chosen == []
    feats = {"final": file_feats(tmp / "raw" / "lin_seed-3" / "grads", "final")}
    want = direct_influence(feats, infos[2], run["rec_steps"].tolist(), list(range(N_TEST)), lambda u: "final")
    assert torch.allclose(I, want, rtol=1e-10, atol=1e-12)


def test_record_every_k_sums_each_step_with_its_lr(tmp_path):
    """Metrics every 3 steps, features every step: I sums all optimizer steps in between, each with its own
    lr from log.out; without log.out (and a step file) the checkpoint's lr stands in."""
    dirs, infos = make_linear_runs(tmp_path, [5], every=3)
    run = load_run(dirs[0])
    assert run["rec_steps"].tolist() == [3, 6, 8]
    I, _ = B.run_influence(dirs[0], run["opt_steps"], run["samples"], run["rec_steps"], torch.arange(N_TEST),
                           "tracin_cp", None, raw_root=tmp_path / "raw")
    gdir = tmp_path / "raw" / "lin_seed-5" / "grads"
    feats = {s: file_feats(gdir, s) for s in range(1, S + 1)}
    want = direct_influence(feats, infos[0], [3, 6, 8], list(range(N_TEST)), lambda u: u)
    assert torch.allclose(I, want, rtol=1e-10, atol=1e-12)
    # no log.out learning rates, checkpoints 1 and 5 only: steps 2-4 use lr_1, steps 6-8 use lr_5
    dirs2, infos2 = make_linear_runs(tmp_path / "b", [5], every=3, grad_steps=[1, 5], log_lr=False)
    run2 = load_run(dirs2[0])
    I2, chosen = B.run_influence(dirs2[0], run2["opt_steps"], run2["samples"], run2["rec_steps"],
                                 torch.arange(N_TEST), "tracin_cp", 10, raw_root=tmp_path / "b" / "raw")
    assert chosen == [1, 5]
    info = {"batches": infos2[0]["batches"], "lrs": {u: infos2[0]["lrs"][1 if u < 5 else 5] for u in range(1, 9)}}
    gdir2 = tmp_path / "b" / "raw" / "lin_seed-5" / "grads"
    feats2 = {s: file_feats(gdir2, s) for s in (1, 5)}
    want2 = direct_influence(feats2, info, [3, 6, 8], list(range(N_TEST)), lambda u: 1 if u < 5 else 5)
    assert torch.allclose(I2, want2, rtol=1e-10, atol=1e-12)
    # no log.out learning rates but a grads file at every step: TracIn-CP(2) reads each step's lr from its file
    dirs3, infos3 = make_linear_runs(tmp_path / "c", [5], every=3, log_lr=False)
    run3 = load_run(dirs3[0])
    I3, chosen3 = B.run_influence(dirs3[0], run3["opt_steps"], run3["samples"], run3["rec_steps"],
                                  torch.arange(N_TEST), "tracin_cp", 2, raw_root=tmp_path / "c" / "raw")
    gdir3 = tmp_path / "c" / "raw" / "lin_seed-5" / "grads"
    feats3 = {s: file_feats(gdir3, s) for s in chosen3}
    want3 = direct_influence(feats3, infos3[0], [3, 6, 8], list(range(N_TEST)), lambda u: 8 if u >= 8 else 1)
    assert chosen3 == [1, 8] and torch.allclose(I3, want3, rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- tests: rescaling

def test_rescaling_recovers_planted_relation():
    g = torch.Generator().manual_seed(0)
    I = torch.randn(3, 5, 7, generator=g, dtype=torch.float64)
    I[..., 0] = 0
    first = 2.0 + torch.rand(3, 5, generator=g)
    values = (first[..., None] - (0.37 * I + 0.05)).float()
    values[..., 0] = first
    mask = torch.ones(3, 5, 7, dtype=torch.bool)
    mask[0, 1, 3] = False
    values[0, 1, 3] = 99.0  # masked: ignored
    a, c = B.fit_rescaling(I, values, mask)
    assert a == pytest.approx(0.37, abs=1e-6) and c == pytest.approx(0.05, abs=1e-6)
    pred = B.predict_trajectories(I, first, a, c)
    assert torch.allclose(pred[mask], values[mask], atol=1e-5)
    assert B.fit_rescaling(torch.zeros(3, 5, 7), values, mask)[0] == 0.0  # constant influence: offset only


def test_rescaling_fitted_on_training_runs_only(lin):
    tmp, dirs, _ = lin
    train_rs, test_rs = load_runs(dirs[:3]), load_runs(dirs[3:])
    res = B.fit_and_predict(train_rs, test_rs, "tracin_cp", None, raw_root=tmp / "raw")
    changed = replace(test_rs, values=test_rs.values * 3.0 + 1.0)
    res2 = B.fit_and_predict(train_rs, changed, "tracin_cp", None, raw_root=tmp / "raw")
    assert (res2["scale"], res2["offset"]) == (res["scale"], res["offset"])
    # the test runs enter only through their first value: shifting it shifts the prediction
    assert torch.allclose(res2["pred"] - res["pred"], (changed.values - test_rs.values)[..., :1], atol=1e-5)
    # and the fit is the least-squares line of (first value - value) on the training runs' own influence, over
    # the recorded steps after the first (solved here directly)
    import numpy as np
    I, v, m = res["train_influence"].double(), train_rs.values.double(), train_rs.mask.clone()
    m[..., 0] = False
    y = (v[..., :1] - v)[m].numpy()
    X = np.stack([I[m].numpy(), np.ones_like(y)], 1)
    a, c = np.linalg.lstsq(X, y, rcond=None)[0]
    assert res["scale"] == pytest.approx(a, rel=1e-6) and res["offset"] == pytest.approx(c, abs=1e-8)


def test_first_order_sgd_dynamics_recovered(lin):
    """SGD on the batch-mean loss: L_t - L_{t-1} ~ -(lr / B) sum_i <g_i, g_z>, so a ~ 1 / B and c ~ 0,
    and the held-out trajectories are predicted far better than by a constant."""
    tmp, dirs, _ = lin
    train_rs, test_rs = load_runs(dirs[:3]), load_runs(dirs[3:])
    res = B.fit_and_predict(train_rs, test_rs, "tracin_cp", None, raw_root=tmp / "raw")
    assert res["scale"] == pytest.approx(1 / BS, rel=0.1) and abs(res["offset"]) < 0.01
    true, pred = test_rs.values[..., 1:], res["pred"][..., 1:]
    mse = float(((pred - true) ** 2).mean())
    const = float(((test_rs.values[..., :1] - true) ** 2).mean())
    assert const > 1e-3 and mse < 0.02 * const, (mse, const)
    # fresher gradients predict better: TracIn-CP(all) < TracIn-CP(3) < Grad-Dot in MSE
    mses = [mse]
    for method, k in (("tracin_cp", 3), ("grad_dot", None)):
        p = B.fit_and_predict(train_rs, test_rs, method, k, raw_root=tmp / "raw")["pred"][..., 1:]
        mses.append(float(((p - true) ** 2).mean()))
    assert mses == sorted(mses) and mses[2] > 5 * mses[0], mses


# ----------------------------------------------------------------------------- tests: refusals

def test_bleu_refused(lin, tmp_path):
    tmp, dirs, _ = lin
    with pytest.raises(DataError, match="do not predict BLEU"):
        B.check_metric("bleu")
    with pytest.raises(DataError, match="do not predict BLEU"):
        run_tracin.main(["--metric", "bleu", "--train_run_dirs", dirs[0], "--test_run_dirs", dirs[1],
                         "--save_dir", str(tmp_path / "out"), "--no_progress"])
    assert B.parse_num_checkpoints("all") is None and B.parse_num_checkpoints("10") == 10
    with pytest.raises(DataError, match="positive integer or 'all'"):
        B.parse_num_checkpoints("0")


def test_missing_grads_refused_with_hint(tmp_path, lin):
    dirs, _ = make_linear_runs(tmp_path, [7], grads=False)
    run = load_run(dirs[0])
    with pytest.raises(DataError, match=r"make_runs\.py --grad_features") as e:
        B.run_influence(dirs[0], run["opt_steps"], run["samples"], run["rec_steps"], torch.arange(N_TEST),
                        "tracin_cp", 10, raw_root=tmp_path / "raw")
    assert str(tmp_path / "raw" / "lin_seed-7" / "grads") in str(e.value)
    # TracIn-CP(all) with features at 2 of 8 steps; Grad-Dot without grads_final.pt
    dirs2, _ = make_linear_runs(tmp_path / "b", [8], grad_steps=[1, 5], final=False)
    run2 = load_run(dirs2[0])
    args = (dirs2[0], run2["opt_steps"], run2["samples"], run2["rec_steps"], torch.arange(N_TEST))
    with pytest.raises(DataError, match=r"TracIn-CP\(all\) needs .* 6 of 8 steps have none"):
        B.run_influence(*args, "tracin_cp", None, raw_root=tmp_path / "b" / "raw")
    with pytest.raises(DataError, match=r"grads_final\.pt: file not found .*make_runs\.py --grad_features"):
        B.run_influence(*args, "grad_dot", raw_root=tmp_path / "b" / "raw")
    # a test id without a feature row
    tmp, ldirs, _ = lin
    r = load_run(ldirs[0])
    with pytest.raises(DataError, match=r"test ids \[9\] have no gradient feature"):
        B.run_influence(ldirs[0], r["opt_steps"], r["samples"], r["rec_steps"], torch.tensor([0, 9]),
                        "grad_dot", raw_root=tmp / "raw")


# ----------------------------------------------------------------------------- end to end

def test_main_on_linear_runs_writes_outputs(lin, tmp_path):
    tmp, dirs, _ = lin
    save = tmp_path / "out"
    m = run_tracin.main(["--method", "tracin_cp", "--num_checkpoints", "all", "--train_run_dirs", *dirs[:3],
                         "--test_run_dirs", dirs[3], "--raw_root", str(tmp / "raw"), "--save_dir", str(save),
                         "--task", "lin", "--test_example_start_id", "1", "--test_example_end_id", "3",
                         "--no_progress"])
    saved = json.loads((save / "metrics.json").read_text())
    assert saved["sim_name"] == "tracin_cp(all)" and saved["metric"] == "loss" and saved["task"] == "lin"
    assert saved["scale"] == pytest.approx(1 / BS, rel=0.1) and saved["num_test_examples"] == 3
    assert saved["all_steps_mse_mean"] == pytest.approx(m["all_steps_mse_mean"]) and m["all_steps_mse_mean"] < 1e-3
    assert json.loads((save / "spec.json").read_text())["num_checkpoints"] is None  # 'all': every checkpoint
    lines = [json.loads(x) for x in (save / "pred_and_gt_loss_trajectories.out").read_text().splitlines()]
    assert [[r["id"] for r in line] for line in lines] == [[1], [2], [3]]  # one line per test id, a run per entry
    rows = [line[0] for line in lines]
    assert rows[0]["run"] == "lin_seed-4" and set(rows[0]) == {"gt_loss", "pred_loss", "step", "run", "id"}
    assert rows[0]["step"] == list(range(1, S + 1)) and rows[0]["pred_loss"][0] == rows[0]["gt_loss"][0]
    mse = sum(sum((p - g) ** 2 for p, g in zip(r["pred_loss"][1:], r["gt_loss"][1:])) / (S - 1) for r in rows) / 3
    assert mse == pytest.approx(m["all_steps_mse_mean"], rel=1e-4)


def test_main_on_real_tiny_runs(tmp_path_factory):
    """The run maker's tiny preset: 3 runs x 4 steps with features at every step, preprocessed with
    utils/construct_runs-data.py, then TracIn-CP(2) and Grad-Dot through run_tracin.main."""
    from gptfluence import runmaker as D
    from gptfluence import tasks
    from gptfluence.basemodel import PRESETS, get_base_model

    tmp = tmp_path_factory.mktemp("real")
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(PRESETS, "tiny", {**PRESETS["tiny"], "steps": 30})
        model, tok = get_base_model("tiny", cache_dir=tmp / "models", seed=0,
                                    corpus=tasks.pretraining_corpus(200, seed=0), progress=False)
    pool, test = tasks.build_task("sst2", 16, 6, seed=0)
    settings = dict(task="sst2", model="tiny", model_tag="gptneox-tiny-seed0", model_seed=0, train_sha="a",
                    eval_sha="b", shot=16, sample=8, bs=4, epochs=2, lr=2e-3, weight_decay=0.0,
                    loss_last_token=False, append_eos=True, max_len=64, record_interval=1, metrics=False,
                    do_sample=False, top_p=0.95, temperature=0.2, gen_len_factor=1.5, grad_features=True,
                    grad_steps="all", grad_dim=16, grad_seed=0, bf16=False, tf32=False, eval_batch_size=8)
    maker = D.RunMaker(model, tok, pool, test, settings, progress=False)
    raw_dirs = D.make_runs(maker, [1, 2, 3], tmp / "raw")
    construct_runs.main(["--raw_root", str(tmp / "raw"), "--task", "sst2", "--output_root", str(tmp / "runs")])
    proc = [str(tmp / "runs" / "sst2" / d.name) for d in raw_dirs]
    assert not (Path(proc[0]) / "grads").exists()  # the features are found under --raw_root
    out = {}
    for method, k in (("tracin_cp", "2"), ("grad_dot", "10")):
        save = tmp / f"out_{method}"
        out[method] = run_tracin.main(["--method", method, "--num_checkpoints", k, "--train_run_dirs", *proc[:2],
                                       "--test_run_dirs", proc[2], "--raw_root", str(tmp / "raw"),
                                       "--save_dir", str(save), "--task", "sst2", "--no_progress"])
    m = out["tracin_cp"]
    assert m["sim_name"] == "tracin_cp(2)" and m["checkpoints_used"] == [2]
    assert out["grad_dot"]["sim_name"] == "grad_dot"
    # recompute: the fitted scale is the least-squares fit on the two training runs
    train_rs = load_runs(proc[:2])
    I, used = B.runset_influence(train_rs, "tracin_cp", 2, raw_root=tmp / "raw")
    assert set(map(tuple, used.values())) == {(1, 4)}
    a, c = B.fit_rescaling(I, train_rs.values, train_rs.mask)
    assert m["scale"] == pytest.approx(a) and m["offset"] == pytest.approx(c)
    for res in out.values():
        assert res["num_scored_trajectories"] == 6 and math.isfinite(res["all_steps_mse_mean"])
