"""The offline base model and the run maker (gptfluence.basemodel, gptfluence.dynamics).

Tiny preset, tiny built-in tasks, a few optimizer steps: the whole file runs in well under a
minute on 2 CPU cores.
"""

import ast
import copy
import json
import math
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest
import torch

from gptfluence import runmaker as D
from gptfluence import tasks
from gptfluence.basemodel import PRESETS, build_base_model, get_base_model
from gptfluence.formats import checkpoint_path
from gptfluence.io import DataError
from gptfluence.runmaker import generation as G
from gptfluence.runmaker.gradients import GradProjector, grad_features

SHOT, SAMPLE, BS, EPOCHS = 24, 8, 4, 2  # 4 optimizer steps per run
T = SAMPLE // BS * EPOCHS


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: the shared 2-core machine stays usable and timings stay stable."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def base(tmp_path_factory, one_thread):
    cache = tmp_path_factory.mktemp("models")
    corpus = tasks.pretraining_corpus(400, seed=0)
    with pytest.MonkeyPatch.context() as mp:  # a shorter pre-training keeps the file fast
        mp.setitem(PRESETS, "tiny", {**PRESETS["tiny"], "steps": 60, "tune_steps": 20})
        model, tok = get_base_model("tiny", cache_dir=cache, seed=0, corpus=corpus, progress=False)
        yield model, tok, cache


@pytest.fixture(scope="module")
def sst2():
    return tasks.build_task("sst2", SHOT, 12, seed=0)


def settings_for(task="sst2", **over):
    s = dict(task=task, model="tiny", model_tag="gptneox-tiny-seed0", model_seed=0, train_sha="a", eval_sha="b",
             shot=SHOT, sample=SAMPLE, bs=BS, epochs=EPOCHS, lr=2e-3, weight_decay=0.001, loss_last_token=False,
             append_eos=True, max_len=256, record_interval=1, metrics=False, do_sample=False, top_p=0.95,
             temperature=0.2, gen_len_factor=1.5, grad_features=False, grad_steps="all", grad_dim=16, grad_seed=0,
             bf16=False, tf32=False, eval_batch_size=8)
    s.update(over)
    return s


def make(base, data, out, seeds, **over):
    model, tok, _ = base
    maker = D.RunMaker(model, tok, data[0], data[1], settings_for(**over), progress=False)
    return maker, D.make_runs(maker, seeds, out)


def read_losses(run_dir, task, step):
    return [json.loads(line) for line in open(checkpoint_path(run_dir, task, step))]


@pytest.fixture(scope="module")
def two_runs(base, sst2, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return make(base, sst2, out, [1, 2])


# ----------------------------------------------------------------------------- scoring

@pytest.mark.parametrize("last_token", [False, True])
def test_fast_scoring_equals_naive(base, sst2, last_token):
    model, tok, _ = base
    encs = D.encode_samples(sst2[1], tok, last_token=last_token)
    fast = D.score_losses(model, encs, tok.pad_token_id, batch_size=5)
    naive = D.score_losses_naive(model, encs)
    assert fast.shape == (12,)
    assert torch.allclose(fast, naive, atol=1e-4, rtol=1e-5), (fast - naive).abs().max()
    assert all(e.n_scored == 1 for e in encs) == last_token
    assert float(fast.mean()) > 0.1


def test_grad_features_match_autograd(base, sst2):
    model, tok, _ = base
    encs = D.encode_samples(sst2[1][:3], tok)
    W = model.get_output_embeddings().weight
    proj = D.GradProjector(W.shape[0], W.shape[1], dim=12, seed=3)
    assert (proj.d1 * proj.d2, proj.pv.shape, proj.ph.shape) == (12, (W.shape[0], proj.d1), (W.shape[1], proj.d2))
    feats = D.grad_features(model, encs, tok.pad_token_id, proj, batch_size=2)
    shared, losses = D.grad_features(model, encs, tok.pad_token_id, proj, batch_size=2, with_losses=True)
    assert torch.equal(shared, feats) and torch.equal(losses, D.score_losses(model, encs, tok.pad_token_id, 2))
    # the features are the output layer's gradient; the base model ties it to the input embeddings, so the
    # exact value comes from an untied copy of the head (same weights: same forward pass)
    head = torch.nn.Linear(W.shape[1], W.shape[0], bias=False)
    head.weight = torch.nn.Parameter(W.detach().clone())
    tied = model.get_output_embeddings()
    model.set_output_embeddings(head)
    try:
        for i, e in enumerate(encs):
            model.zero_grad()
            loss = D.train_loss(model, [e], tok.pad_token_id, "cpu")
            loss.backward()
            exact = proj.project_full(head.weight.grad)
            assert torch.allclose(feats[i], exact, atol=1e-5, rtol=1e-3)
    finally:
        model.set_output_embeddings(tied)
        model.zero_grad()


def test_parse_grad_steps():
    assert D.parse_grad_steps("all", 5) == [1, 2, 3, 4, 5]
    assert D.parse_grad_steps("3", 9) == [1, 5, 9]
    assert D.parse_grad_steps("2,7", 9) == [2, 7]
    with pytest.raises(DataError, match="outside"):
        D.parse_grad_steps("0,10", 9)


# ----------------------------------------------------------------------------- runs

def test_raw_layout(two_runs, sst2):
    _, dirs = two_runs
    run = dirs[0]
    assert run.name.endswith("_loss-output-token_seed-1") and run.name.startswith("output_sst2_bs-4_shot-24")
    recs = [ast.literal_eval(line) for line in open(run / "log.out")]
    assert [r["step"] for r in recs] == list(range(1, T + 1))
    assert all(len(r["samples_id"]) == BS and set(r["samples_id"]) <= set(range(SHOT)) for r in recs)
    lrs = [r["learning_rate"] for r in recs]
    assert lrs[0] == pytest.approx(2e-3) and all(a > b for a, b in zip(lrs, lrs[1:]))
    assert lrs[-1] == pytest.approx(2e-3 / T)
    # each epoch visits the same K sampled ids once
    ids = [i for r in recs for i in r["samples_id"]]
    half = len(ids) // 2
    assert sorted(ids[:half]) == sorted(ids[half:]) and len(set(ids[:half])) == SAMPLE
    for step in range(1, T + 1):
        rows = read_losses(run, "sst2", step)
        assert [r["id"] for r in rows] == list(range(12))
        assert all(math.isfinite(r["loss"]) and r["loss"] > 0 for r in rows)
    assert not checkpoint_path(run, "sst2", T + 1).exists()
    assert (run / D.DONE_FILE).is_file() and (run / D.RUN_ARGS_FILE).is_file()


def test_dynamics_are_real(two_runs, sst2, capsys):
    """The dynamics report of the run maker's folder (written beside the runs and printed)."""
    from gptfluence.pipeline.runs import report_raw_runs
    _, dirs = two_runs
    rep = report_raw_runs(dirs[0].parent, "sst2", sst2[0], sst2[1])
    assert rep["runs"] == 2 and rep["steps"]["first"] == 1 and rep["steps"]["last"] == T
    assert rep["metric_last"] < rep["metric_first"] - 0.1
    assert rep["frac_improved"] > 0.8
    assert 0 <= rep["label_accuracy_first"] <= 1 and 0 <= rep["label_accuracy_last"] <= 1
    assert rep["final_spread"] > 0.0 and rep["share_explained"] is None  # 2 runs: too few for the batch fit
    assert json.loads((dirs[0].parent / "dynamics_report.json").read_text())["runs"] == 2
    assert "dynamics report" in capsys.readouterr().out


def test_deterministic_by_seed(base, sst2, two_runs, tmp_path):
    _, dirs = two_runs
    _, again = make(base, sst2, tmp_path, [1])
    for step in (1, T):
        assert read_losses(again[0], "sst2", step) == read_losses(dirs[0], "sst2", step)
    assert open(again[0] / "log.out").read() == open(dirs[0] / "log.out").read()
    assert open(dirs[1] / "log.out").read() != open(dirs[0] / "log.out").read()
    assert D.make_curriculum(SHOT, SAMPLE, BS, EPOCHS, 1) == D.make_curriculum(SHOT, SAMPLE, BS, EPOCHS, 1)
    assert D.make_curriculum(SHOT, SAMPLE, BS, EPOCHS, 1) != D.make_curriculum(SHOT, SAMPLE, BS, EPOCHS, 2)


def test_resume_keeps_finished_and_redoes_interrupted(base, sst2, tmp_path):
    _, dirs = make(base, sst2, tmp_path, [1, 2])
    done_mtime = os.path.getmtime(checkpoint_path(dirs[0], "sst2", T))
    before = read_losses(dirs[1], "sst2", T)
    (dirs[1] / D.DONE_FILE).unlink()  # seed 2 "interrupted"
    (dirs[1] / "junk.txt").write_text("partial")
    _, dirs2 = make(base, sst2, tmp_path, [1, 2])
    assert dirs2 == dirs
    assert os.path.getmtime(checkpoint_path(dirs[0], "sst2", T)) == done_mtime
    assert not (dirs[1] / "junk.txt").exists() and (dirs[1] / D.DONE_FILE).is_file()
    assert read_losses(dirs[1], "sst2", T) == before
    assert len(open(dirs[1] / "log.out").readlines()) == T


def test_settings_mismatch_refused(base, sst2, two_runs):
    _, dirs = two_runs
    with pytest.raises(DataError, match=r"weight_decay=0.001, now weight_decay=0.1"):
        make(base, sst2, dirs[0].parent, [3], weight_decay=0.1)


def test_sample_larger_than_pool_refused(base, sst2, tmp_path):
    with pytest.raises(DataError, match="--sample 30 is larger than the training pool"):
        make(base, sst2, tmp_path, [1], sample=30)
    with pytest.raises(DataError, match="--shot 99 is larger than the training file"):
        make(base, sst2, tmp_path, [1], shot=99)


def test_grad_feature_files(base, sst2, tmp_path):
    _, dirs = make(base, sst2, tmp_path, [1], grad_features=True, grad_steps="1,3", grad_dim=16)
    g = torch.load(dirs[0] / "grads" / "grads_step-3.pt")
    assert g["train"].shape == (SHOT, 16) and g["test"].shape == (12, 16) and g["train"].dtype == torch.float16
    assert g["step"] == 3 and g["params_after_step"] == 2 and g["proj_shape"] == (4, 4)
    assert g["train_ids"].tolist() == list(range(SHOT)) and g["test_ids"].tolist() == list(range(12))
    lr3 = [ast.literal_eval(line) for line in open(dirs[0] / "log.out")][2]["learning_rate"]
    assert g["learning_rate"] == pytest.approx(lr3)
    assert sorted(p.name for p in (dirs[0] / "grads").iterdir()) == ["grads_final.pt", "grads_step-1.pt",
                                                                     "grads_step-3.pt"]
    assert float(g["train"].float().norm()) > 0
    # step 3's test features come from the scoring pass of step 2; recorded only every 3rd step (no scoring pass
    # at step 2), the run computes them in a pass of their own: the same numbers
    _, alone = make(base, sst2, tmp_path / "alone", [1], grad_features=True, grad_steps="1,3", grad_dim=16,
                    record_interval=3)
    for name in ("grads_step-3.pt", "grads_final.pt"):
        g1, g2 = (torch.load(d / "grads" / name) for d in (dirs[0], alone[0]))
        assert torch.equal(g1["test"], g2["test"]) and torch.equal(g1["train"], g2["train"])


def test_generation_task_records_metrics(base, tmp_path):
    data = tasks.build_task("webnlg", SHOT, 4, seed=0)
    _, dirs = make(base, data, tmp_path, [1], task="webnlg", metrics=True, epochs=1, gen_len_factor=0.5)
    rows = [json.loads(line) for line in open(checkpoint_path(dirs[0], "webnlg", 2, "metric"))]
    assert [r["id"] for r in rows] == [0, 1, 2, 3]
    for r in rows:
        assert set(r) == {"id", "loss", "rouge1", "rouge2", "rougeL", "bleu"}
        assert 0 <= r["bleu"] <= 100 and 0 <= r["rougeL"] <= 1
    from gptfluence.pipeline.runs import report_raw_runs
    rep = report_raw_runs(dirs[0].parent, "webnlg", data[0], data[1])
    assert set(rep["other_metrics"]) == {"bleu", "rougeL"} and "label_accuracy_first" not in rep


def test_batched_generation_equals_single(base):
    model, tok, _ = base
    test = tasks.build_task("webnlg", 4, 5, seed=1)[1]
    encs = D.encode_samples(test, tok)
    ref_lens = [len(e.ids) - e.n_ctx for e in encs]
    batched = D.generate_outputs(model, tok, encs, ref_lens, batch_size=5, len_factor=0.5)
    single = [D.generate_outputs(model, tok, [e], [n], batch_size=1, len_factor=0.5)[0] for e, n in zip(encs, ref_lens)]
    assert batched == single and any(batched)


def test_greedy_decode_equals_model_generate(base):
    """The pruned greedy decoder gives the tokens of model.generate (greedy, each row with its own
    max_new_tokens), for rows that stop at eos and rows that stop at their limit."""
    model, tok, _ = base
    test = tasks.build_task("webnlg", 4, 8, seed=2)[1]
    encs = D.encode_samples(test, tok)
    ctxs = [e.ids[:e.n_ctx] for e in encs]
    limits = [1, 3, 5, 8, 12, 20, 30, 40]
    eos, pad = tok.eos_token_id, tok.pad_token_id
    got = G.greedy_decode(model.eval(), ctxs, limits, eos, pad)
    for c, n, g in zip(ctxs, limits, got):
        ref = model.generate(input_ids=torch.tensor([c]), attention_mask=torch.ones(1, len(c), dtype=torch.long),
                             max_new_tokens=n, do_sample=False, pad_token_id=pad, eos_token_id=eos)[0, len(c):].tolist()
        if eos in ref:
            ref = ref[:ref.index(eos) + 1]
        assert g == ref and 1 <= len(g) <= n
    assert any(len(g) == n and g[-1] != eos for g, n in zip(got, limits))  # some rows stop at their limit


def test_decoding_from_the_scoring_pass_equals_decoding_from_scratch(base, tmp_path):
    """Greedy decoding that starts from the scoring pass's context states (score_losses' prefill) gives the losses
    and tokens of scoring and decoding apart, along a fine-tuning run; the run maker's files are the same either way
    (metric files byte for byte), including steps whose test losses come from the gradient-feature pass."""
    model, tok, _ = base
    m = copy.deepcopy(model)
    pool, test = tasks.build_task("webnlg", 16, 6, seed=3)
    train_encs, encs = D.encode_samples(pool, tok), D.encode_samples(test, tok)
    ref_lens = [len(e.ids) - e.n_ctx for e in encs]
    opt = torch.optim.AdamW(m.parameters(), lr=2e-3)
    for step in range(4):
        prefill = {}
        with_prefill = D.score_losses(m, encs, tok.pad_token_id, 4, prefill=prefill)
        assert sorted(prefill) == list(range(len(encs)))
        assert all(len(kv) == m.config.num_hidden_layers and kv[0][0].shape[1] == e.n_ctx
                   for (kv, _), e in zip((prefill[i] for i in range(len(encs))), encs))
        assert torch.equal(with_prefill, D.score_losses(m, encs, tok.pad_token_id, 4))
        from_grads = {}  # the gradient-feature pass (TracIn checkpoints) keeps the same states
        W = m.get_output_embeddings().weight
        _, losses = grad_features(m, encs, tok.pad_token_id, GradProjector(W.shape[0], W.shape[1], 16, 0, "cpu"), 4,
                                  with_losses=True, prefill=from_grads)
        assert torch.equal(losses, with_prefill) and sorted(from_grads) == sorted(prefill)
        for i, (kv, first) in prefill.items():
            assert first == from_grads[i][1]
            assert all(torch.equal(a, c) and torch.equal(b, d) for (a, b), (c, d) in zip(kv, from_grads[i][0]))
        texts = D.generate_outputs(m, tok, encs, ref_lens, 4, len_factor=0.7, prefill=prefill)
        assert texts == D.generate_outputs(m, tok, encs, ref_lens, 4, len_factor=0.7) and any(texts)
        m.train()
        D.train_loss(m, train_encs[4 * step:4 * step + 4], tok.pad_token_id, "cpu").backward()
        opt.step()
        opt.zero_grad()
    ctxs = [e.ids[:e.n_ctx] for e in encs]
    with pytest.raises(ValueError, match="does not match"):
        G.greedy_decode(m.eval(), ctxs[:2], [3, 3], tok.eos_token_id, tok.pad_token_id,
                        prefills=[prefill[1], prefill[0]] if encs[0].n_ctx != encs[1].n_ctx else [prefill[0]])
    with pytest.raises(ValueError, match="autocast"):
        D.score_losses(m, encs, tok.pad_token_id, 4, autocast_dtype=torch.bfloat16, prefill={})
    data = tasks.build_task("webnlg", SHOT, 4, seed=0)
    files = {}
    for share in (True, False):
        maker = D.RunMaker(model, tok, data[0], data[1],
                           settings_for("webnlg", metrics=True, epochs=1, gen_len_factor=0.7, grad_features=True,
                                        grad_steps="2"), progress=False)
        maker.share_prefill = share
        _, = dirs = D.make_runs(maker, [1], tmp_path / str(share))
        files[share] = {f.relative_to(dirs[0]): f.read_bytes() for f in sorted(dirs[0].glob("*_webnlg/*.out"))}
    assert files[True] == files[False] and len(files[True]) >= 4  # loss and metric files of every step


def test_no_prefill_from_a_cut_cache(base):
    """A cache with a sliding-window layer does not hold every context state: nothing is kept, and decoding then
    starts from scratch with the same outputs."""
    from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

    class Cut:  # one full layer, one sliding-window layer
        layers = [DynamicLayer(), DynamicSlidingWindowLayer(sliding_window=4)]

    model, tok, _ = base
    out = {}
    G.keep_prefill(model, Cut(), torch.zeros(1, 3, model.config.hidden_size), [3], [0], out)
    assert out == {}
    encs = D.encode_samples(tasks.build_task("webnlg", 4, 3, seed=5)[1], tok)
    ref_lens = [len(e.ids) - e.n_ctx for e in encs]
    assert (D.generate_outputs(model.eval(), tok, encs, ref_lens, 4, len_factor=0.5, prefill={})
            == D.generate_outputs(model, tok, encs, ref_lens, 4, len_factor=0.5))


def _other_architecture(arch: str, tok):
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM
    torch.manual_seed(0)
    ids = dict(pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=tok.eos_token_id)
    if arch == "llama":  # SmolLM2's architecture: grouped-query attention, RMSNorm, rotary positions
        return LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                                            num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                            max_position_embeddings=256, tie_word_embeddings=False, **ids))
    return GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=2, n_head=4, n_positions=256, **ids))


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_runs_with_another_architecture_from_a_folder(base, tmp_path, arch):
    """A local folder of another causal-LM architecture (SmolLM2's Llama with an untied head, GPT-2 with learned
    positions) makes a generation task's runs end to end: scoring, greedy decoding (the tokens of
    model.generate), BLEU / ROUGE and the gradient features of its output layer."""
    _, tok, _ = base
    folder = tmp_path / arch
    _other_architecture(arch, tok).save_pretrained(folder)
    tok.save_pretrained(folder)
    model, tok2 = get_base_model(str(folder))
    data = tasks.build_task("webnlg", SHOT, 4, seed=0)
    maker = D.RunMaker(model, tok2, data[0], data[1],
                       settings_for("webnlg", model=str(folder), model_tag=arch, metrics=True, epochs=1,
                                    grad_features=True, grad_steps="1", gen_len_factor=0.5), progress=False)
    _, = dirs = D.make_runs(maker, [1], tmp_path / "runs")
    rows = [json.loads(line) for line in open(checkpoint_path(dirs[0], "webnlg", 2, "metric"))]
    assert [r["id"] for r in rows] == [0, 1, 2, 3]
    assert all(math.isfinite(r["loss"]) and r["loss"] > 0 and 0 <= r["bleu"] <= 100 for r in rows)
    g = torch.load(dirs[0] / "grads" / "grads_step-1.pt")
    assert g["train"].shape == (SHOT, 16) and float(g["train"].float().norm()) > 0
    maker.share_prefill = False  # decoding from scratch makes the same files (the default starts from scoring)
    scratch, = D.make_runs(maker, [1], tmp_path / "scratch")
    assert all(f.read_bytes() == (scratch / f.relative_to(dirs[0])).read_bytes()
               for f in dirs[0].glob("*_webnlg/*.out"))
    encs = D.encode_samples(data[1], tok2)
    ctxs, limits = [e.ids[:e.n_ctx] for e in encs], [3, 6, 9, 12]
    got = G.greedy_decode(maker.model.eval(), ctxs, limits, tok2.eos_token_id, tok2.pad_token_id)
    for c, n, out in zip(ctxs, limits, got):
        ref = maker.model.generate(input_ids=torch.tensor([c]), attention_mask=torch.ones(1, len(c), dtype=torch.long),
                                   max_new_tokens=n, do_sample=False, pad_token_id=tok2.pad_token_id,
                                   eos_token_id=tok2.eos_token_id)[0, len(c):].tolist()
        assert out == (ref[:ref.index(tok2.eos_token_id) + 1] if tok2.eos_token_id in ref else ref)


def test_bleu_rouge_hand_example():
    hyp, ref = "the cat sat on the mat", "the cat sat on a mat"
    # clipped n-gram precisions 5/6, 3/5, 2/4, 1/3; equal lengths, so no brevity penalty
    assert D.bleu_score(hyp, ref) == pytest.approx(100 * (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25, abs=1e-6)
    r = D.rouge_scores(hyp, ref)
    assert r["rouge1"] == pytest.approx(5 / 6) and r["rouge2"] == pytest.approx(3 / 5)
    assert r["rougeL"] == pytest.approx(5 / 6)  # LCS "the cat sat on mat"
    assert D.bleu_score(ref, ref) == pytest.approx(100.0)
    assert D.bleu_score("", ref) == 0.0


# ----------------------------------------------------------------------------- base model

def test_unknown_preset_refused(tmp_path):
    with pytest.raises(DataError, match=r"not a preset \(tiny, small\)"):
        get_base_model("huge", cache_dir=tmp_path)
    with pytest.raises(DataError, match="pass a local folder"):
        get_base_model("no-such-org/no-such-model-xyz", cache_dir=tmp_path)


def test_base_model_cached_and_loadable(base):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tok, cache = base
    folder = cache / "tiny-seed0"
    info = json.loads((folder / "basemodel.json").read_text())
    assert info["preset"] == "tiny" and info["last_loss"] < info["first_loss"]
    # the instruction stage (loss on the targets of corpus-format task instances) learns too
    assert info["tune_steps"] == 20 and info["tune_last_loss"] < info["tune_first_loss"]
    tok2 = AutoTokenizer.from_pretrained(folder)
    assert tok2.eos_token == "<|endoftext|>" and tok2.pad_token_id != tok2.eos_token_id
    m2 = AutoModelForCausalLM.from_pretrained(folder)
    assert m2.config.model_type == "gpt_neox" and m2.config.hidden_size == 64
    with pytest.raises(DataError, match="another corpus"):
        get_base_model("tiny", cache_dir=cache, seed=0, corpus=["other text"])


def test_base_model_reproducible(tmp_path, monkeypatch):
    monkeypatch.setitem(PRESETS, "tiny", {**PRESETS["tiny"], "steps": 5})
    corpus = tasks.pretraining_corpus(100, seed=1)
    a = build_base_model("tiny", tmp_path / "a", seed=3, corpus=corpus, progress=False)
    b = build_base_model("tiny", tmp_path / "b", seed=3, corpus=corpus, progress=False)
    assert (a / "tokenizer.json").read_text() == (b / "tokenizer.json").read_text()
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()


def test_base_model_rebuilt_when_preset_settings_change(tmp_path, monkeypatch):
    """A cached preset model built with other settings than the current preset's is built again, never
    silently reused (a new version's presets would otherwise keep the old model)."""
    corpus = tasks.pretraining_corpus(60, seed=1)
    monkeypatch.setitem(PRESETS, "tiny", {**PRESETS["tiny"], "steps": 3, "tune_steps": 2})
    get_base_model("tiny", cache_dir=tmp_path, seed=0, corpus=corpus, progress=False)
    monkeypatch.setitem(PRESETS, "tiny", {**PRESETS["tiny"], "steps": 4})
    get_base_model("tiny", cache_dir=tmp_path, seed=0, corpus=corpus, progress=False)
    info = json.loads((tmp_path / "tiny-seed0" / "basemodel.json").read_text())
    assert info["settings"]["steps"] == 4 and info["steps"] == 4


def test_curriculum_pool_ids_and_exclusion():
    half = D.make_curriculum(20, 8, 4, 2, seed=3, pool_ids=range(10, 20))
    assert all(10 <= i < 20 for b in half for i in b) and len(half) == 4
    full = D.make_curriculum(20, 8, 4, 2, seed=3)
    cut = D.make_curriculum(20, 8, 4, 2, seed=3, exclude_ids=[full[0][0], full[1][1]])
    # the same curriculum with the two ids taken out of every batch they were in
    assert cut == [[i for i in b if i not in (full[0][0], full[1][1])] for b in full]
    with pytest.raises(DataError, match="larger than the training pool"):
        D.make_curriculum(20, 11, 4, 1, seed=0, pool_ids=range(10))
    with pytest.raises(DataError, match="outside the training pool"):
        D.make_curriculum(20, 4, 4, 1, seed=0, pool_ids=[18, 25])
