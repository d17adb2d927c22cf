"""Tests of the ground-truth influence check and the mislabelled-data experiment:
label-word accuracy, TracIn-CP per-example and self-influence on hand-made gradient files, relabelling,
and a tiny end-to-end run of each command (tiny model pre-trained briefly into a temporary cache)."""

import json
import math
import random
from pathlib import Path

import pytest
import torch

from gptfluence import baselines as BL
from gptfluence import runmaker as D
from gptfluence import tasks
from gptfluence.basemodel import PRESETS, get_base_model
from gptfluence.cli import influence_check as IC_CLI
from gptfluence.cli import mislabelled as ML_CLI
from gptfluence.experiments import influence_check as IC
from gptfluence.experiments import mislabelled as ML
from gptfluence.io import DataError


@pytest.fixture(scope="module")
def short_tiny():
    """The tiny preset with a short pre-training, so building it takes a few seconds."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(PRESETS, "tiny", {**PRESETS["tiny"], "steps": 40, "n_docs": 300})
        yield


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory, short_tiny):
    cache = tmp_path_factory.mktemp("models")
    get_base_model("tiny", cache_dir=cache, seed=0, progress=False)
    return cache


# ----------------------------------------------------------------------------- accuracy

def test_predictions_and_accuracy_hand_case(monkeypatch):
    losses = torch.tensor([[1.0, 2.0], [3.0, 0.5], [1.0, 1.0]])
    assert D.predictions_from_losses(losses).tolist() == [0, 1, 0]
    monkeypatch.setattr("gptfluence.runmaker.scoring.label_word_losses", lambda *a, **k: losses)
    samples = [{"id": 0, "label": 0}, {"id": 1, "label": 1}, {"id": 2, "label": 1}]
    acc, preds = D.label_word_accuracy(None, None, samples, ("negative", "positive"))
    assert acc == pytest.approx(2 / 3) and preds.tolist() == [0, 1, 0]
    with pytest.raises(DataError, match="sample id 2"):
        D.label_word_accuracy(None, None, samples[:2] + [{"id": 2}], ("negative", "positive"))


def test_label_word_losses_equal_naive_sums(model_cache):
    model, tok = get_base_model("tiny", cache_dir=model_cache, seed=0, progress=False)
    _, test = tasks.build_task("sst2", 4, 3, seed=0)
    got = D.label_word_losses(model, tok, test, ("negative", "positive"))
    assert got.shape == (3, 2)
    for c, w in enumerate(("negative", "positive")):
        variants = [{"id": s["id"], "context": s["context"], "input": s["context"] + " " + w} for s in test]
        encs = D.encode_samples(variants, tok, append_eos=False)
        naive = D.score_losses_naive(model, encs) * torch.tensor([float(e.n_scored) for e in encs])
        assert torch.allclose(got[:, c], naive, atol=1e-4)


# ----------------------------------------------------------------------------- TracIn on hand-made files

def _grads_file(path, step, lr, train, test):
    torch.save({"step": step, "learning_rate": lr, "train": train.half(), "test": test.half(),
                "train_ids": torch.arange(train.shape[0]), "test_ids": torch.arange(test.shape[0])}, path)


@pytest.fixture()
def grads_run(tmp_path):
    g = torch.Generator().manual_seed(0)
    P, N, D_ = 5, 3, 4
    feats = {s: (torch.randn(P, D_, generator=g), torch.randn(N, D_, generator=g), lr)
             for s, lr in ((1, 0.5), (3, 0.25))}
    (tmp_path / "grads").mkdir()
    for s, (tr, te, lr) in feats.items():
        _grads_file(tmp_path / "grads" / f"grads_step-{s}.pt", s, lr, tr, te)
    return tmp_path, {s: (tr.half().double(), te.half().double(), lr) for s, (tr, te, lr) in feats.items()}


def test_tracin_self_influence_equals_direct_sum(grads_run):
    run_dir, feats = grads_run
    got, steps = BL.tracin_self_influence(run_dir)
    want = sum(lr * (tr * tr).sum(1) for tr, _, lr in feats.values())
    assert steps == [1, 3]
    assert torch.allclose(got, want, atol=1e-9)
    one, _ = BL.tracin_self_influence(run_dir, num_checkpoints=1)  # the first checkpoint only
    tr, _, lr = feats[1]
    assert torch.allclose(one, lr * (tr * tr).sum(1), atol=1e-9)


def test_tracin_example_influence_equals_direct_loop(grads_run):
    run_dir, feats = grads_run
    opt_steps = torch.tensor([1, 2, 3, 4])
    samples = torch.tensor([[0, 1], [1, 1], [2, -1], [4, 0]])
    lrs = {1: 0.5, 2: 0.5, 3: 0.25, 4: 0.25}  # no log.out: a step without a file takes its checkpoint's lr
    test_ids = torch.tensor([2, 0])
    got, chosen = BL.example_influence(run_dir, opt_steps, samples, test_ids, num_checkpoints=None)
    assert chosen == [1, 3]
    want = torch.zeros(5, 2, dtype=torch.float64)
    for u, batch in zip(opt_steps.tolist(), samples.tolist()):
        tr, te, _ = feats[1 if u < 3 else 3]
        for i in batch:
            if i >= 0:
                want[i] += lrs[u] * (tr[i] @ te[test_ids].T)
    assert torch.allclose(got, want, atol=1e-9)


# ----------------------------------------------------------------------------- relabelling

def test_relabel_restores_clean_labels():
    train, _ = tasks.build_task("sst2", 10, 2, seed=0, label_noise=0.4)
    flipped = {s['id'] for s in train if s.get('flipped')}
    assert len(flipped) == 4
    fix = sorted(flipped)[:2] + [i for i in range(10) if i not in flipped][:1]
    out = ML.relabel(train, fix)
    for s, o in zip(train, out):
        if s["id"] in fix:
            assert o["label"] == s["clean_label"] and not o["flipped"]
            assert o["output"] == tasks.LABEL_WORDS["sst2"][s["clean_label"]]
            assert o["input"] == o["context"] + " " + o["output"] and o["target"] == " " + o["output"]
        else:
            assert o == s
    assert {s['id'] for s in out if s.get('flipped')} == flipped - set(fix)
    assert train[fix[0]]["flipped"]  # the input list is not modified
    with pytest.raises(DataError, match="clean_label"):
        ML.relabel([{"id": 0, "context": "x"}], [0])


def test_found_fraction_and_rank():
    assert ML.rank([0.1, 3.0, -1.0, 3.0]) == [1, 3, 0, 2]
    assert ML.found_fraction([1, 3, 0, 2], 2, {3, 2}) == 0.5


def test_simulate_removal_empty_batch_keeps_value():
    from gptfluence.simulators import Simulator

    class Const(Simulator):  # alpha = 1 / batch size per example, beta = -0.1 per example: identity dynamics - 0.1
        def __init__(self):
            super().__init__(3, 1)

        def step_factors(self, batches, test_rows):
            m = (batches >= 0).float()
            alpha = (m.sum(-1, keepdim=True) * 0 + 1.0)[..., None].expand(*batches.shape[:2], len(test_rows), 1)
            beta = -0.1 * m.sum(-1)[..., None].expand(*batches.shape[:2], len(test_rows))
            return alpha, beta
    batches = torch.tensor([[[-1, -1], [0, 1], [2, -1], [0, -1]]])
    init = torch.tensor([[1.0]])
    # removing 2 empties step 2 (no update there); the other steps keep their mean factor
    change = IC.simulate_removal(Const(), batches, init, torch.tensor([0]), [2])
    assert float(change) == pytest.approx(0.1, abs=1e-6)


# ----------------------------------------------------------------------------- end to end

def _read(path):
    return json.loads(Path(path).read_text())


def test_influence_check_end_to_end(tmp_path, model_cache):
    out = tmp_path / "ic"
    IC_CLI.main(["--preset", "quick", "--runs", "4", "--shot", "16", "--sample", "8", "--epochs", "2",
                 "--n_test", "6", "--n_examples", "2", "--k", "2", "--n_random", "1", "--grad_dim", "16",
                 "--out_dir", str(out), "--model_cache", str(model_cache), "--no_progress"])
    for f in ("table.md", "scatter.png", "results.json", "args.json"):
        assert (out / f).is_file(), f
    res = _read(out / "results.json")
    assert res["rerun_max_abs_diff"] == 0.0  # the identical re-run reproduces the run exactly
    assert res["n_pairs"] == 2 * res["n_sets"] and res["n_sets"] >= 2
    for p in res["pairs"]:
        assert all(math.isfinite(v) for v in p["pred"].values()) and math.isfinite(p["actual"])
    assert any(abs(p["actual"]) > 0 for p in res["pairs"])  # removals really change the run
    assert set(res["methods"]) == set(IC.METHODS)
    assert "| gptfluence |" in (out / "table.md").read_text() and "| anchor_lex_sim |" in (out / "table.md").read_text()
    # a method's own top-k helpful set is predicted to help more than its own top-k harmful set (TracIn-CP sums
    # the scores it ranked by; anchor_sim is additive, so its set prediction is the sum of its example scores)
    for m in ("tracin_cp", "anchor_lex_sim"):
        for z in res["test_ids"]:
            own = {p["kind"][m]: p["pred"][m] for p in res["pairs"] if p["test_id"] == z and m in p["kind"]}
            assert own["helpful"] >= own["harmful"] - 1e-9, (m, z, own)
    # TracIn-CP's prediction for a set is the rescaled sum of its per-example scores: the same for a set whatever
    # the test example it was chosen for, and zero change predicted by no method for the empty set
    by_set = {}
    for p in res["pairs"]:
        by_set.setdefault(p["set"], []).append(p)
    assert all(len(ps) == 2 for ps in by_set.values())


def test_mislabelled_end_to_end(tmp_path, model_cache):
    out = tmp_path / "ml"
    flags = ["--preset", "quick", "--shot", "8", "--sample", "4", "--runs", "3", "--n_test", "6", "--epochs", "1",
             "--bs", "2", "--n_shuffles", "3", "--random_runs", "1", "--grad_dim", "16",
             "--model_cache", str(model_cache), "--no_progress"]
    ML_CLI.main([*flags, "--fractions", "0.5,1.0", "--out_dir", str(out)])
    for f in ("table.md", "mislabelled.png", "results.json", "args.json"):
        assert (out / f).is_file(), f
    res = _read(out / "results.json")
    assert res["n_flipped"] == 3  # round(0.4 x 8)
    assert [r["fraction"] for r in res["rows"]] == [0.5, 1.0]
    for r in res["rows"]:
        for m in ML.METHODS:
            assert 0.0 <= r["found"][m] <= 1.0 and 0.0 <= r["accuracy"][m] <= 1.0
    # "found" is the share of flipped ids among the top of each method's descending ranking of its scores
    flipped = set(res["flipped_ids"])
    for m, scores in res["scores"].items():
        order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
        assert res["rows"][0]["found"][m] == pytest.approx(len(set(order[:5]) & flipped) / len(flipped))
    # checking everything fixes every label: each method's re-made run is the clean run, to the last digit
    for m in ML.METHODS:
        assert res["rows"][-1]["accuracy"][m] == res["clean"]["accuracy"]
        assert res["rows"][-1]["test_loss"][m] == res["clean"]["loss"]
    assert all(math.isfinite(v) for vs in res["scores"].values() for v in vs)
    assert set(res["scores"]) == {"gptfluence", "anchor_lex_sim", "tracin_cp"}
    # the fully fixed training file has no flipped label left
    fixed = list((out / "work" / "fixed").rglob("*.json"))
    assert any(not any(json.loads(line).get("flipped") for line in open(p)) for p in fixed)
    # own test points: the simulator-training runs recorded the test set and then every pool example (noisy label)
    assert res["settings"]["own_test_points"] == "on"
    (own,) = list((out / "work" / "data" / "own_test_points").glob("*.json"))
    rows = [json.loads(line) for line in open(own)]
    pool = [json.loads(line) for line in open(next((out / "work" / "data").rglob("*mislabelled*train*.json")))]
    assert [r["id"] for r in rows] == list(range(6 + 8))
    assert [r["input"] for r in rows[6:]] == [p["input"] for p in sorted(pool, key=lambda p: p["id"])]
    assert all("label" not in r for r in rows[6:]) and all(isinstance(r["label"], int) for r in rows[:6])
    traj = next((out / "work" / "runs").rglob("*_own/**/all_loss_trajectory.out"))
    assert sorted(json.loads(line)["id"] for line in open(traj)) == list(range(14))
    # the reference ranking by the pool examples' own final loss: every flipped label found once all is checked
    found = [r["found_by_own_final_loss"] for r in res["rows"]]
    assert 0.0 <= found[0] <= 1.0 and found[-1] == 1.0
    assert "own final loss" in (out / "table.md").read_text()
    left = [r["found_by_leave_out"] for r in res["rows"]]
    assert 0.0 <= left[0] <= 1.0 and left[-1] == 1.0
    assert "leaving them out" in (out / "table.md").read_text()
    # labels restored per order, and the test loss per true test label: their weighted mean is the test loss
    test_file = out / "work" / "data" / "sft_tasks" / "sst2" / "sst2_validation_0-5.json"
    test_rows = [json.loads(line) for line in open(test_file)]
    n_by = {str(y): sum(t["label"] == y for t in test_rows) for y in (0, 1)}
    for part in (res["noisy"], res["clean"]):
        by = part["loss_by_label"]
        assert sum(by[y] * n for y, n in n_by.items() if n) / len(test_rows) == pytest.approx(part["loss"])
    clean_of = {p["id"]: p.get("clean_label", p["label"]) for p in pool}
    for r in res["rows"]:
        for m in ("gptfluence", "anchor_lex_sim", "tracin_cp"):
            order = sorted(range(8), key=lambda i: (-res["scores"][m][i], i))
            fixed = set(order[:r["n_checked"]]) & flipped
            assert r["restored"][m] == {str(y): sum(clean_of[i] == y for i in fixed) for y in (0, 1)}
    assert "Which labels each order restores (negative / positive" in (out / "table.md").read_text()
    means = res["curve_means"]["accuracy"]
    assert means["random"] == pytest.approx(sum(r["accuracy"]["random"] for r in res["rows"]) / len(res["rows"]))
    assert f"averaged over the fractions checked (0.5, 1; the area under the curves): accuracy GPTfluence " \
           f"{means['gptfluence']:.3f}" in (out / "table.md").read_text()

    # the same runs and simulators, now every set of fixed labels re-made with 2 seeds and scored on a held-out
    # set of 10 examples (true labels, no pool input among them); accuracy and loss are the means of the 2 runs
    out2 = tmp_path / "ml_eval"
    ML_CLI.main([*flags, "--fractions", "1.0", "--eval_n_test", "10", "--eval_runs", "2", "--out_dir", str(out2),
                 "--work_root", str(out / "work")])
    res2 = _read(out2 / "results.json")
    assert res2["eval_seeds"] == [100, 101] and res2["scores"] == res["scores"]
    for part in ("noisy", "clean"):
        runs = res2[part]["per_run"]
        assert [r["seed"] for r in runs] == [100, 101]
        assert res2[part]["accuracy"] == pytest.approx(sum(r["accuracy"] for r in runs) / 2)
        assert res2[part]["loss"] == pytest.approx(sum(r["loss"] for r in runs) / 2)
    (row,) = res2["rows"]
    assert all(len(v) == 2 for v in row["runs_accuracy"].values())
    assert row["accuracy"]["anchor_lex_sim"] == res2["clean"]["accuracy"]
    (ev,) = list((out / "work" / "data" / "eval").rglob("*.json"))
    made = list((out / "work" / "remake").rglob("eval10/*/*/run_done.json"))
    assert len(made) == 4  # no fix and every fix, 2 seeds each
    assert all(Path(_read(d)["eval_data_path"]).resolve() == ev.resolve() for d in made)
    ev_rows = [json.loads(line) for line in open(ev)]
    assert len(ev_rows) == 10 and not {r["context"] for r in ev_rows} & {r["context"] for r in rows[6:]}
    assert all(isinstance(r["label"], int) for r in ev_rows)
    assert "the mean of 2 re-made runs on 10 held-out test examples" in (out2 / "table.md").read_text()
    # the TracIn-CP target run (gradient features) keeps the target seed and the runs' test set
    assert _read(Path(res2["tracin_run"]["run_dir"]) / "run_done.json")["eval_data_path"].endswith("0-5.json")
    # a third seed adds one run per set: the two made before are kept (not re-made) and give the same values;
    # a work folder of the earlier layout (eval<N>_runs<R>/) is taken over, not made again
    before = {p: p.stat().st_mtime_ns for p in made}
    (ev_dir,) = {p.parents[2] for p in made}
    ev_dir.rename(ev_dir.with_name("eval10_runs2"))
    out3 = tmp_path / "ml_eval3"
    ML_CLI.main([*flags, "--fractions", "1.0", "--eval_n_test", "10", "--eval_runs", "3", "--out_dir", str(out3),
                 "--work_root", str(out / "work")])
    res3 = _read(out3 / "results.json")
    assert len(list((out / "work" / "remake").rglob("eval10/*/*/run_done.json"))) == 6
    assert not list((out / "work" / "remake").rglob("eval10_runs2"))
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())
    for part in ("noisy", "clean"):
        assert res3[part]["per_run"][:2] == res2[part]["per_run"] and res3[part]["per_run"][2]["seed"] == 102
    # --order label_balanced: every ranking (and random's shuffles) taken one noisy label at a time
    out4 = tmp_path / "ml_balanced"
    ML_CLI.main([*flags, "--fractions", "0.5,1.0", "--eval_n_test", "10", "--eval_runs", "1", "--order",
                 "label_balanced", "--flipped_controls", "2", "--out_dir", str(out4), "--work_root",
                 str(out / "work")])
    res4 = _read(out4 / "results.json")
    assert res4["settings"]["order"] == "label_balanced" and res4["scores"] == res["scores"]
    labels = {p["id"]: p["label"] for p in pool}  # 7 positive, 1 negative: the negative is among each top 2
    for m, scores in res4["scores"].items():
        order = ML.label_balanced(sorted(range(len(scores)), key=lambda i: (-scores[i], i)), labels)
        assert res4["rows"][0]["found"][m] == pytest.approx(len(set(order[:4]) & flipped) / len(flipped))
        assert sorted(labels[i] for i in order[:2]) == [0, 1]
        fixed = set(order[:4]) & flipped
        assert list((out / "work" / "remake").rglob(f"eval10/{IC.set_name(fixed)}/*/run_done.json"))
    assert "every order label-balanced" in (out4 / "table.md").read_text()
    # the control: 2 random sets of as many flipped labels as anchor_lex_sim's order fixed, the mean of their runs
    a_order = ML.label_balanced(sorted(range(8), key=lambda i: (-res["scores"]["anchor_lex_sim"][i], i)), labels)
    for r in res4["rows"]:
        c = r["flipped_control"]
        assert c["n_fixed"] == len(set(a_order[:r["n_checked"]]) & flipped) and len(c["per_set"]) == 2
        assert c["accuracy"] == pytest.approx(sum(x["accuracy"] for x in c["per_set"]) / 2)
    assert res4["rows"][-1]["flipped_control"]["accuracy"] == res4["clean"]["accuracy"]  # every flip: the clean run
    assert "Control: random sets of flipped labels" in (out4 / "table.md").read_text()


def test_label_balanced_order():
    """One id of each label in turn (labels in order of first appearance), each label's ids in ranked order; the
    others go on when a label runs out; a permutation whose prefixes never differ by more than one per label
    while both labels remain."""
    labels = {0: 0, 1: 1, 2: 0, 3: 1, 4: 0, 5: 1, 6: 1}
    assert ML.label_balanced([5, 3, 1, 0, 2, 4, 6], labels) == [5, 0, 3, 2, 1, 4, 6]
    assert ML.label_balanced([0, 2, 4, 1], labels) == [0, 1, 2, 4]
    order = list(range(40))
    random.Random(3).shuffle(order)
    lab = {i: int(i % 5 == 0) for i in order}  # 8 of label 1, 32 of label 0
    out = ML.label_balanced(order, lab)
    assert sorted(out) == sorted(order)
    assert all(abs(sum(lab[i] for i in out[:n]) * 2 - n) <= 1 for n in range(1, 17))
    for y in (0, 1):
        assert [i for i in out if lab[i] == y] == [i for i in order if lab[i] == y]


def test_curve_means_by_hand():
    """The recovery summary: each method's accuracy and test loss averaged over the rows, and random's per shuffle
    (missing when a row lacks the per-shuffle values)."""
    def row(acc, loss, shuffles):
        return {"accuracy": {m: acc[i] for i, m in enumerate(ML.METHODS)},
                "test_loss": {m: loss[i] for i, m in enumerate(ML.METHODS)},
                "random_shuffles": [{"accuracy": a, "loss": b} for a, b in shuffles]}
    rows = [row([0.5, 0.6, 0.7, 0.8], [1.0, 2.0, 3.0, 4.0], [(0.7, 5.0), (0.9, 3.0)]),
            row([0.7, 0.8, 0.9, 1.0], [2.0, 2.0, 2.0, 2.0], [(0.9, 2.0), (1.0, 4.0)])]
    c = ML.curve_means(rows)
    assert [c["accuracy"][m] for m in ML.METHODS] == pytest.approx([0.6, 0.7, 0.8, 0.9])
    assert [c["test_loss"][m] for m in ML.METHODS] == pytest.approx([1.5, 2.0, 2.5, 3.0])
    assert [x["accuracy"] for x in c["random_shuffles"]] == pytest.approx([0.8, 0.95])
    assert [x["loss"] for x in c["random_shuffles"]] == pytest.approx([3.5, 3.5])
    del rows[1]["random_shuffles"]
    assert "random_shuffles" not in ML.curve_means(rows)


def test_reference_scores_by_hand(monkeypatch):
    """An example's own final loss in the runs without it minus in the runs with it; 0 where every run (or none)
    trained on it; test-set rows (ids < n_test) are not pool examples."""
    from argparse import Namespace

    from gptfluence import runs as RUNS
    # n_test = 1 (id 0), pool ids 0, 1, 2 recorded as own test points 1, 2, 3; 3 runs of 2 steps
    batches = torch.tensor([[[0, -1], [0, -1]],      # run 0 trains on pool 0
                            [[1, 2], [1, -1]],       # run 1 on pool 1 and 2
                            [[0, 2], [2, 0]]])       # run 2 on pool 0 and 2
    last = torch.tensor([[9.0, 1.0, 5.0, 7.0],
                         [9.0, 2.0, 3.0, 4.0],
                         [9.0, 3.0, 6.0, 8.0]])
    values = torch.stack([torch.zeros_like(last), last], -1)
    rs = RUNS.RunSet(names=["a", "b", "c"], steps=torch.tensor([1, 2]), test_ids=torch.tensor([0, 1, 2, 3]),
                     values=values, mask=torch.ones_like(values, dtype=torch.bool), batches=batches, metric="loss")
    monkeypatch.setattr(RUNS, "load_runs", lambda dirs: rs)
    ref = ML.reference_scores(Namespace(n_test=1, shot=3), ["a", "b", "c"])
    assert ref["own_final_loss"].tolist() == pytest.approx([2.0, 14 / 3, 19 / 3])  # the mean over the runs
    scores = ref["leave_out"]
    # pool 0: without it run 1 (2.0), with it runs 0 and 2 (mean 2.0) -> 0; pool 1: without runs 0, 2 (5.5), with
    # run 1 (3.0) -> 2.5; pool 2: trained on in runs 1 and 2 (6.0), left out in run 0 (7.0) -> 1.0
    assert scores.tolist() == pytest.approx([0.0, 2.5, 1.0])
    # every run trained on pool 0 and 1: no runs without them, so no estimate (0); pool 2 only in run 0 (7.0 with
    # it, 6.0 without): training on it raised its own loss -> -1.0
    rs.batches = torch.tensor([[[0, 1], [2, -1]], [[0, 1], [1, -1]], [[0, 1], [0, -1]]])
    assert ML.reference_scores(Namespace(n_test=1, shot=3), ["a"])["leave_out"].tolist() == pytest.approx(
        [0.0, 0.0, -1.0])
    rs.test_ids = torch.tensor([0, 1, 2, 3]) * 0  # no own test points
    assert ML.reference_scores(Namespace(n_test=1, shot=3), ["a"]) is None
