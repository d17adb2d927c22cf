"""Counterfactual influence (gptfluence.influence) and the influence.py CLI, on tiny seeded data.

- the vectorised counterfactual equals a loop of single rollouts with the example removed / added;
- the sign convention on a hand-made simulator (positive = the example helps);
- planted dynamics: top helpful examples share the test example's topic, top harmful are of the rival topic;
- the CLI end to end on a checkpoint made by train.py, and its errors on bad input.
"""

import csv
import json
import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

from gptfluence import influence as I  # noqa: E402
from gptfluence.io import DataError  # noqa: E402
from gptfluence.simulators import (  # noqa: E402
    EncSim,
    Simfluence,
    make_simulator,  # noqa: E402
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small tensor ops crawl when 2 threads compete with other jobs on 2 cores."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def small_sim(name, order=1, P=9, N=5, d=8, M=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    if name == "original":
        sim = make_simulator(name, {"n_train": P, "n_test": N, "order": order, "batch_size": M})
        with torch.no_grad():
            sim.A.add_(0.05 * torch.randn(sim.A.shape, generator=g))
            sim.B.add_(0.05 * torch.randn(sim.B.shape, generator=g))
        return sim
    torch.manual_seed(seed)
    return make_simulator(name, {"order": order}, 0.3 * torch.randn(P, d, generator=g),
                           0.3 * torch.randn(N, d, generator=g))


def small_curriculum(P=9, M=3, T=12, R=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    b = torch.randint(-1, P, (R, T, M), generator=g)
    b[0, 4, 1:] = -1  # a smaller batch
    init = 1.0 + torch.rand(R, 5, generator=g)
    return b, init


# ------------------------------------------------------------------------------------------------
# vectorised == loop
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,order", [("original", 1), ("enc_sim", 1), ("norder_enc_sim", 2)])
@pytest.mark.parametrize("mode,insert", [("remove", None), ("add", None), ("add", [2, 7])])
@pytest.mark.parametrize("renormalize", [False, True])
def test_vectorised_equals_loop_of_rollouts(name, order, mode, insert, renormalize):
    sim = small_sim(name, order)
    b, init = small_curriculum()
    res = I.influence(sim, b, init, mode=mode, insert_steps=insert, chunk_size=4, return_trajectory=True,
                      renormalize=renormalize)
    ref = I.reference_influence(sim, b, init, mode=mode, insert_steps=insert, renormalize=renormalize)
    assert res.final.shape == (2, 9, 5) and res.delta.shape == (2, 9, 5, 12)
    scale = ref.abs().max().item()
    assert scale > 1e-4
    assert torch.allclose(res.final.float(), ref, atol=max(1e-6, 1e-5 * scale), rtol=1e-4)
    # the trajectory score is the mean over simulated steps of the same signed change
    signed = I._signed(res.delta, mode, False)
    assert torch.allclose(res.trajectory, signed[..., 1:].mean(-1), atol=1e-12)
    assert torch.allclose(res.final, signed[..., -1], atol=1e-12)
    assert torch.allclose(res.baseline.float(), I.simulate_curriculum(sim, b, init), atol=1e-5)


def test_single_curriculum_train_subset_and_chunks_agree():
    sim = small_sim("enc_sim")
    b, init = small_curriculum(R=1)
    full = I.influence(sim, b[0], init[0], chunk_size=None)
    part = I.influence(sim, b[0], init[0], train_idx=[7, 2, 5], chunk_size=2)
    assert full.final.shape == (1, 9, 5)
    assert torch.equal(part.train_idx, torch.tensor([7, 2, 5]))
    assert torch.allclose(part.final, full.final[:, [7, 2, 5]], atol=1e-12)
    # examples that never appear at a simulated step have no counterfactual: exactly 0 and not "used"
    unused = ~full.used[0]
    assert torch.all(full.final[0][unused] == 0)


def test_self_influence_is_the_diagonal():
    sim = small_sim("enc_sim")
    b, _ = small_curriculum()
    start = torch.full((2, 9), 1.5)
    diag = I.self_influence(sim, b, start, renormalize=True)
    full = I.influence(I.as_own_test_points(sim), b, start, renormalize=True)
    assert torch.allclose(diag.final[..., 0], full.final.diagonal(dim1=1, dim2=2), atol=1e-12)
    assert torch.allclose(diag.trajectory[..., 0], full.trajectory.diagonal(dim1=1, dim2=2), atol=1e-12)
    assert sim.test_emb.shape[0] == 5  # the original simulator is untouched


# ------------------------------------------------------------------------------------------------
# sign convention
# ------------------------------------------------------------------------------------------------

def hand_made():
    """Example 2 carries the identity (A = 1); example 0 lowers the loss by 0.1 per step, example 1 raises it."""
    sim = Simfluence(3, 1)
    with torch.no_grad():
        sim.A.zero_()
        sim.A[2, 0, 0] = 1.0
        sim.B[:, 0] = torch.tensor([-0.1, 0.1, 0.0])
    batches = torch.tensor([[2, 0], [2, 0], [2, 1], [2, 0], [2, 1]])  # slot 0 is never simulated
    return sim, batches


def test_sign_convention_on_hand_made_simulator():
    sim, b = hand_made()
    res = I.influence(sim, b, 2.0, renormalize=False)
    assert res.baseline[0, 0].tolist() == pytest.approx([2.0, 1.9, 2.0, 1.9, 2.0])
    # removing 0 (in 2 simulated steps) raises the final loss by 0.2: it helps -> +0.2
    assert res.final[0, 0, 0].item() == pytest.approx(0.2)
    assert res.final[0, 1, 0].item() == pytest.approx(-0.2)
    add = I.influence(sim, b, 2.0, mode="add", renormalize=False)
    assert add.final[0, :2, 0].tolist() == pytest.approx([0.2, -0.2])
    # the same numbers read as a higher-is-better metric
    bleu = I.influence(sim, b, 2.0, higher_is_better=True, renormalize=False)
    assert bleu.final[0, :2, 0].tolist() == pytest.approx([-0.2, 0.2])
    hi, hs, li, ls = I.top_k(res.final[0, :2], 1)  # (removing the carrier 2 zeroes the loss: the most "harmful")
    assert hi.tolist() == [[0]] and li.tolist() == [[1]] and hs.item() == pytest.approx(0.2)
    assert "cf_removed_final - baseline_final" in res.convention
    assert "baseline_final - cf_removed_final" in bleu.convention


def test_compare_curricula_matches_removal():
    sim, b = hand_made()
    what_if = I.edit_curriculum(b, 0)[0]
    cmp = I.compare_curricula(sim, b, what_if, 2.0)
    res = I.influence(sim, b, 2.0, renormalize=False)
    assert cmp["gain_final"][0, 0].item() == pytest.approx(-res.final[0, 0, 0].item())
    assert cmp["what_if"][0, 0, -1].item() == pytest.approx(2.2)
    # what-if minus baseline at steps 1..4: 0.1, 0.1, 0.2, 0.2 (loss: a higher what-if is a loss of 0.15)
    assert cmp["gain_mean"][0, 0].item() == pytest.approx(-0.15, abs=1e-6)


def test_self_influence_refuses_simfluence():
    sim, b = hand_made()
    with pytest.raises(DataError, match="free factors"):
        I.self_influence(sim, b, 2.0)


# ------------------------------------------------------------------------------------------------
# planted dynamics
# ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    from gptfluence.runs import load_runs
    from gptfluence.synthetic import make_planted
    from gptfluence.training import Dynamics, TrainConfig, fit
    task = make_planted(tmp_path_factory.mktemp("planted"), n_train=48, n_test=24, n_runs=8, sample=32, epochs=2,
                        batch=4, help=0.15, hurt=0.08, seed=0)
    data = Dynamics.from_runset(load_runs(task.run_dirs))
    g = torch.Generator().manual_seed(0)
    onehot = lambda t: torch.nn.functional.one_hot(torch.as_tensor(t), 4).float()
    emb = [onehot(t) + 0.05 * torch.randn(len(t), 4, generator=g) for t in (task.train_topics, task.test_topics)]
    torch.manual_seed(0)
    sim = EncSim(*emb, hidden=16, separate_proj=True)  # the rival relation is asymmetric: f != g
    fit(sim, data.runs(list(range(7))), data.runs([7]),
        TrainConfig(lr=1e-2, max_epoch=30, train_bs=256, warmup_steps=0, patience=100, seed=0, show_progress=False))
    return task, data, sim.eval()


def topic_fractions(task, scores, used, k=5):
    tr, te = torch.as_tensor(task.train_topics), torch.as_tensor(task.test_topics)
    hi, _, li, _ = I.top_k(scores, k, used)
    own = (tr[hi] == te[:, None]).float().mean().item()
    rival = (tr[li] == ((te + 1) % 4)[:, None]).float().mean().item()
    return own, rival


def test_planted_true_factors_recover_topics(planted):
    task, data, _ = planted
    tr, te = torch.as_tensor(task.train_topics), torch.as_tensor(task.test_topics)
    true = Simfluence(48, 24, batch_size=4)
    with torch.no_grad():
        true.A[:, :, 0] = (1 - task.help * (tr[:, None] == te[None]).float()) / 4
        true.B[:] = task.hurt * (tr[:, None] == ((te[None] + 1) % 4)).float()
    res = I.influence(true, data.batches[7], data.values[7, :, 0], data.test_rows, renormalize=True)
    assert topic_fractions(task, res.final[0], res.used[0]) == (1.0, 1.0)


def test_planted_trained_enc_sim_ranks_topics(planted):
    """Chance is 0.25 for both fractions (4 topics); measured 0.83 / 0.78 (remove) and 0.82 / 0.93 (insert)."""
    task, data, sim = planted
    init = data.values[7, :, 0]
    res = I.influence(sim, data.batches[7], init, data.test_rows, renormalize=True)
    own, rival = topic_fractions(task, res.final[0], res.used[0])
    assert own >= 0.65 and rival >= 0.6, (own, rival)
    ins = I.influence(sim, data.batches[7], init, data.test_rows, mode="add", insert_steps=[1])
    own, rival = topic_fractions(task, ins.final[0], ins.used[0])
    assert own >= 0.65 and rival >= 0.75, (own, rival)


# ------------------------------------------------------------------------------------------------
# curriculum files
# ------------------------------------------------------------------------------------------------

def write(path, obj):
    path.write_text(json.dumps(obj))
    return path


def test_read_curriculum_formats_and_errors(tmp_path):
    b, steps = I.read_curriculum(write(tmp_path / "a.json", [[0, 1], [2], []]), 5)
    assert steps == [1, 2, 3] and b.tolist() == [[0, 1], [2, -1], [-1, -1]]
    b, steps = I.read_curriculum(write(tmp_path / "b.json", [{"step": 0, "samples_id": []},
                                                             {"step": 5, "samples_id": [4, 4]}]), 5)
    assert steps == [0, 5] and b.tolist() == [[-1, -1], [4, 4]]
    lines = tmp_path / "train_samples_id.json"
    lines.write_text('{"step": 1, "samples_id": [3]}\n{"step": 2, "samples_id": [1]}\n')
    assert I.read_curriculum(lines, 5)[1] == [1, 2]
    with pytest.raises(DataError, match=r"c.json: step 2: training id 7 is outside the pool \(expected ids 0..4\)"):
        I.read_curriculum(write(tmp_path / "c.json", [[0], [7]]), 5)
    with pytest.raises(DataError, match="entry 2: step 3 comes after step 4"):
        I.read_curriculum(write(tmp_path / "d.json", [{"step": s, "samples_id": [0]} for s in (1, 4, 3)]), 5)
    with pytest.raises(DataError, match="entry 1 .*integer training ids"):
        I.read_curriculum(write(tmp_path / "e.json", [[0], ["x"]]), 5)
    with pytest.raises(DataError, match="not found"):
        I.read_curriculum(tmp_path / "missing.json", 5)


# ------------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny Simfluence checkpoint made by train.py on planted runs."""
    from gptfluence.cli import train
    from gptfluence.synthetic import make_planted
    root = tmp_path_factory.mktemp("cli")
    task = make_planted(root, n_train=24, n_test=12, n_runs=8, sample=16, epochs=2, batch=4, seed=1)
    paths = {"planted": {"train": [str(d) for d in task.run_dirs[:7]], "test": [str(task.run_dirs[7])]}}
    out = train.main(["--sim_name", "original", "--task", "planted", "--data_paths_dict", json.dumps(paths),
                      "--train_data_path", str(task.train_path), "--eval_data_path", str(task.eval_path),
                      "--valid_num", "1", "--no_progress",
                      "--output_dir", str(root / "out")])
    return task, out, root


def run_cli(*argv):
    from gptfluence.cli import influence as cli
    return cli.main([str(a) for a in argv])


def test_cli_end_to_end(trained, capsys):
    from gptfluence.checkpoint import load_checkpoint, simulator_from_checkpoint
    from gptfluence.runs import load_runs
    task, ckpt_dir, root = trained
    run = task.run_dirs[7]
    out = run_cli("--checkpoint", ckpt_dir, "--run_dir", run, "--test_ids", "0-2,5", "--top_k", "3",
                  "--save_dir", root / "inf", "--save_matrix", "--no_progress")
    text = capsys.readouterr().out
    assert "sign convention: influence > 0 = the training example helps" in text and "test id 5" in text
    saved = json.loads((root / "inf" / "influence.json").read_text())
    assert saved["sign_convention"] == out["sign_convention"] and "cf_removed_final - baseline_final" in \
        saved["sign_convention"]
    assert [r["test_id"] for r in saved["results"]] == [0, 1, 2, 5]
    # the listed scores are the library's numbers on the checkpoint's simulator
    sim = simulator_from_checkpoint(load_checkpoint(ckpt_dir))
    rs = load_runs([run], test_ids=[0, 1, 2, 5])
    res = I.influence(sim, rs.batches, rs.values[..., 0], rs.test_ids)
    used = res.used[0].clone()
    used[saved["unranked_unseen_train_ids"]] = False  # ids Simfluence never trained on are not ranked
    hi, hs, li, ls = I.top_k(res.final[0], 3, used)
    for n, r in enumerate(saved["results"]):  # helpful lists positive scores only, harmful negative ones only
        assert [e["train_id"] for e in r["helpful"]] == [i for i, v in zip(hi[n].tolist(), hs[n].tolist()) if v > 0]
        assert [e["score"] for e in r["harmful"]] == pytest.approx([v for v in ls[n].tolist() if v < 0], abs=1e-9)
        assert r["helpful"][0]["text"].startswith("Note:")
    rows = list(csv.DictReader(open(root / "inf" / "influence.csv")))
    assert len(rows) == sum(len(r["helpful"]) + len(r["harmful"]) for r in saved["results"]) > 0
    assert {r["kind"] for r in rows} <= {"helpful", "harmful"}
    mat = torch.load(root / "inf" / "influence_matrix.pt")
    assert mat["final"].shape == (24, 4)


def test_cli_curriculum_what_if_and_add(trained):
    task, ckpt_dir, root = trained
    samples = [json.loads(line) for line in open(task.run_dirs[7] / "train_samples_id.json")]
    what_if = write(root / "what_if.json", [dict(s, samples_id=[i for i in s["samples_id"] if i != 3])
                                            for s in samples])
    out = run_cli("--checkpoint", ckpt_dir, "--curriculum", task.run_dirs[7] / "train_samples_id.json",
                  "--init_value", "2.2", "--test_ids", "0-3", "--what_if", what_if, "--mode", "add",
                  "--insert_steps", "2-4", "--renormalize", "1", "--save_dir", root / "wi", "--no_progress")
    assert out["mode"] == "add" and "baseline_final - cf_added_final" in out["sign_convention"]
    assert out["train_in_curriculum"] == 24  # insertion applies to every example
    assert all(r["baseline_final"] != 0 for r in out["results"])
    wi = json.loads((root / "wi" / "what_if.json").read_text())
    assert len(wi["examples"]) == 4 and (root / "wi" / "what_if_loss.png").stat().st_size > 1000
    assert wi["examples"][0]["baseline_final"] == pytest.approx(out["results"][0]["baseline_final"], rel=1e-5)


def test_cli_bad_inputs(trained, tmp_path):
    task, ckpt_dir, root = trained
    base = ["--checkpoint", ckpt_dir, "--save_dir", tmp_path / "o", "--no_progress"]
    with pytest.raises(DataError, match=r"bad.json: step 2: training id 99 is outside the pool"):
        run_cli(*base, "--curriculum", write(tmp_path / "bad.json", [[0, 1], [99]]), "--init_value", "2")
    with pytest.raises(DataError, match="step 1 comes after step 2"):
        run_cli(*base, "--curriculum", write(tmp_path / "order.json", [{"step": 2, "samples_id": [0]},
                                                                        {"step": 1, "samples_id": [1]}]),
                "--init_value", "2")
    with pytest.raises(DataError, match="give --init_value"):
        run_cli(*base, "--curriculum", write(tmp_path / "ok.json", [[0], [1]]))
    with pytest.raises(DataError, match="exactly one of --run_dir"):
        run_cli(*base)
    with pytest.raises(DataError, match=r"test ids \[40\] outside the test set"):
        run_cli(*base, "--run_dir", task.run_dirs[7], "--test_ids", "0,40")
    texts = tmp_path / "texts.txt"
    texts.write_text("Note: a brand new text about football.\n")
    with pytest.raises(DataError, match="cannot embed or simulate new texts"):
        run_cli(*base, "--run_dir", task.run_dirs[7], "--test_texts", texts)
    with pytest.raises(DataError, match="self-influence needs a feature-based simulator"):
        run_cli(*base, "--run_dir", task.run_dirs[7], "--self_influence")
    changed = tmp_path / "train_changed.json"
    changed.write_text(task.train_path.read_text().replace("Note:", "Memo:", 1))
    with pytest.raises(DataError, match="cannot simulate examples it never saw; the train sample file"):
        run_cli(*base, "--run_dir", task.run_dirs[7], "--train_data_path", changed)
    fewer = tmp_path / "eval_fewer.json"
    fewer.write_text("".join(task.eval_path.read_text().splitlines(True)[:10]))
    with pytest.raises(DataError, match="the eval sample file"):
        run_cli(*base, "--run_dir", task.run_dirs[7], "--eval_data_path", fewer)


def test_cli_feature_simulator_new_texts_and_self_influence(trained, tmp_path):
    """An enc_sim checkpoint on the real default encoder (offline package): new texts and self-influence."""
    from gptfluence.checkpoint import load_checkpoint, save_checkpoint
    from gptfluence.encoders import DEFAULT_ENCODER, embed_texts
    from gptfluence.io import load_samples
    task, ckpt_dir, root = trained
    cache = tmp_path / "emb"
    emb = [embed_texts([s["input"] for s in load_samples(p)], cache_dir=cache, show_progress=False)
           for p in (task.train_path, task.eval_path)]
    torch.manual_seed(0)
    sim = EncSim(*emb, hidden=32)
    with torch.no_grad():  # small factors: a stable rollout whatever the random weights
        for m in (sim.alpha_f[0], sim.beta_f):
            m[-1].weight.mul_(0.05)
            m[-1].bias.mul_(0.05)
    ckpt = load_checkpoint(ckpt_dir)
    payload = {k: v for k, v in ckpt.items() if k not in ("format", "path")}
    payload.update(sim_name="enc_sim", sim_config=sim.config(), state_dict=sim.state_dict(),
                   encoder={"encoder": DEFAULT_ENCODER, "pooling": "cls", "max_length": 512})
    save_checkpoint(tmp_path / "enc.pt", payload)
    texts = tmp_path / "texts.txt"
    new = ["Note: striker goal stadium referee football league.", "Note: rocket orbit moon comet galaxy star."]
    texts.write_text("\n".join(new) + "\n")
    out = run_cli("--checkpoint", tmp_path / "enc.pt", "--run_dir", task.run_dirs[7], "--test_texts", texts,
                  "--self_influence", "--top_k", "4", "--embedding_cache", cache, "--save_dir", tmp_path / "o",
                  "--no_progress")
    assert [r["test_text"] for r in out["results"]] == new and all(r["test_id"] is None for r in out["results"])
    # same numbers as the library with the new texts' embeddings
    from gptfluence.runs import load_runs
    rs = load_runs([task.run_dirs[7]])
    sim.set_examples(test_emb=embed_texts(new, cache_dir=cache, show_progress=False))
    res = I.influence(sim, rs.batches, rs.values[..., 0].mean(1, keepdim=True).expand(1, 2))
    hi, hs, _, _ = I.top_k(res.final[0], 4, res.used[0])
    assert [e["score"] for e in out["results"][1]["helpful"]] == pytest.approx(hs[1].tolist(), rel=1e-6)
    rows = list(csv.DictReader(open(tmp_path / "o" / "self_influence.csv")))
    assert len(rows) == 24 and sum(int(r["in_curriculum"]) for r in rows) == 16
    scores = [float(r["score"]) for r in rows if r["in_curriculum"] == "1"]
    assert scores == sorted(scores, reverse=True) and len(out["self_influence"]["top"]) == 4


def test_cli_help_and_import_do_no_work():
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "influence.py", "--help"], capture_output=True, text=True,
                       cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert r.returncode == 0 and "--self_influence" in r.stdout and "helps" in r.stdout.lower()


def test_removal_that_empties_a_batch_means_no_update():
    """Removing the only example of a batch: that step makes no update (the value stays), in the
    vectorised influence and in the reference loop alike."""
    sim = Simfluence(3, 2)
    with torch.no_grad():
        sim.A.fill_(0.45)
        sim.B.fill_(0.05)
    batches = torch.tensor([[0, 1], [0, 1], [2, -1], [0, 1]])  # step 2 holds example 2 alone
    res = I.influence(sim, batches, torch.tensor([1.0, 2.0]))
    ref = I.reference_influence(sim, batches, torch.tensor([1.0, 2.0]))
    assert torch.allclose(res.final.float(), ref, atol=1e-6)
    # removing 2 skips step 2: baseline there is 0.45 * v + 0.05 (a shrink), so removal keeps the value higher
    base = res.baseline[0, 0]
    v1 = base[1]
    without = 0.9 * v1 + 0.1  # step 3 applied to the unchanged value
    assert res.final[0, 2, 0].item() == pytest.approx((without - base[-1]).item(), abs=1e-6)


def test_table_says_why_it_is_empty(capsys):
    """A simulator whose predictions ignore the batches (e.g. anchor_sim with W = 0) gives all-zero influence: the
    table says so instead of printing empty rankings."""
    from gptfluence.pipeline.influence import print_table
    row = {"test_id": 3, "test_text": "a test", "baseline_final": 0.5, "helpful": [], "harmful": []}
    print_table([row], "influence > 0 = helps", "header", 40)
    out = capsys.readouterr().out
    assert "every influence is 0" in out and "no training example changes this prediction" in out
    assert "helpful id" not in out
    hit = dict(row, helpful=[{"train_id": 7, "score": 0.25, "text": "helps"}])
    print_table([row, hit], "influence > 0 = helps", "header", 40)
    out = capsys.readouterr().out
    assert "every influence is 0" not in out and "+0.25" in out and out.count("no training example") == 1
