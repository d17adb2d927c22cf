"""anchor_lex_sim: the hashed bags of words approximate cosine similarities, a planted word-overlap batch effect is
recovered (where anchor_sim's bilinear form on embeddings does not see it), no lexical signal falls back to
anchor_sim, influence is exact, a checkpoint round-trips, and new test texts get lexical features."""

from __future__ import annotations

import collections
import math
import re
import subprocess
import sys

import pytest
import torch

from gptfluence import influence as I
from gptfluence.encoders import LEXICAL_DIM, embed_samples, lexical_features, lexical_idf, weight_lexical
from gptfluence.metrics import evaluate
from gptfluence.simulators import AnchorLexSim, AnchorSim
from gptfluence.simulators.anchor_sim import _mean
from gptfluence.simulators.base import batch_counts
from gptfluence.training import Dynamics

WORDS = [f"w{k}" for k in range(40)]


def _cos(a: str, b: str) -> float:
    ca, cb = (collections.Counter(re.findall(r"\w+", t.lower())) for t in (a, b))
    num = sum(ca[w] * cb[w] for w in ca)
    den = math.sqrt(sum(x * x for x in ca.values()) * sum(x * x for x in cb.values()))
    return num / den if den else 0.0


def _samples(n, g, prefix):
    out = []
    for i in range(n):
        ctx = " ".join(WORDS[int(k)] for k in torch.randint(0, 40, (5,), generator=g))
        tgt = " ".join(WORDS[int(k)] for k in torch.randint(0, 40, (4,), generator=g))
        out.append({"id": i, "context": f"{prefix} {ctx}", "input": f"{prefix} {ctx} {tgt}"})
    return out


def test_hashed_bags_approximate_the_cosine_of_word_counts():
    g = torch.Generator().manual_seed(0)
    a, b = _samples(30, g, "x"), _samples(30, g, "y")
    fa, fb = lexical_features(a), lexical_features(b)
    assert fa.shape == (30, LEXICAL_DIM)
    B = LEXICAL_DIM // 3
    err = [abs(float(fa[i, 2 * B:] @ fb[j, 2 * B:]) - _cos(a[i]["input"], b[j]["input"]))
           for i in range(30) for j in range(30)]
    assert max(err) < 0.1 and sum(err) / len(err) < 0.01
    assert torch.equal(lexical_features(a), fa)  # stable (blake2b, not Python's salted hash)
    assert float(fa[0, :B] @ fa[0, :B]) == pytest.approx(1.0)
    assert float(lexical_features([{"input": "abc"}])[0, :B].abs().sum()) == 0.0  # no context: zero part


def _tfidf_kernel(tr_lex, te_lex, part=2):
    """[P, N] TF-IDF cosine of one part (2: whole input), IDF over the pool and the test set."""
    idf = lexical_idf(torch.cat([tr_lex, te_lex]))
    return weight_lexical(tr_lex, idf)[:, part] @ weight_lexical(te_lex, idf)[:, part].T


def test_idf_weights_rare_shared_words_over_common_ones():
    docs = [{"context": f"common w{k}", "input": f"common w{k} common"} for k in range(8)]
    docs.append({"context": "common w0", "input": "common w0 x"})
    lex = lexical_features(docs)
    idf = lexical_idf(lex)
    B = LEXICAL_DIM // 3
    assert idf.shape == (3, B)
    w = weight_lexical(lex, idf)
    # plain counts: docs 1 and 2 share "common" (in every text) and look alike; with IDF they share nothing
    assert float(lex[1, :B] @ lex[2, :B]) == pytest.approx(0.5, abs=1e-6)
    assert abs(float(w[1, 0] @ w[2, 0])) < 1e-6
    # doc 0 and doc 8 share the rare word w0: their contexts are identical, so the cosine is 1 with or without IDF
    assert float(w[0, 0] @ w[8, 0]) == pytest.approx(1.0, abs=1e-6)
    assert float(w[0, 0] @ w[0, 0]) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="lexical features"):
        lexical_idf(lex[:, :B])


def planted(R=12, T=10, P=30, N=12, signal=0.05, seed=0, d=8):
    """Runs whose deviation from a shared curve is sum over the batches of signal * TF-IDF cos(bag of i, bag of z')
    (whole input), and embeddings unrelated to the words."""
    g = torch.Generator().manual_seed(seed)
    tr, te = _samples(P, g, "train"), _samples(N, g, "test")
    lex = lexical_features(tr).double(), lexical_features(te).double()
    K = _tfidf_kernel(*lex)
    K = K - K.mean(0)
    batches = torch.stack([torch.stack([torch.randperm(P, generator=g)[:3] for _ in range(T)]) for _ in range(R)])
    counts = batch_counts(batches.reshape(R * T, -1), P).reshape(R, T, P).double()
    steps = counts @ (signal * K)
    steps[:, 0] = 0
    values = torch.linspace(2.0, 1.0, T)[None, None] + steps.cumsum(1).transpose(1, 2)
    data = Dynamics(values.float(), torch.ones(R, N, T, dtype=torch.bool), batches, torch.arange(N),
                    torch.arange(1, T + 1))
    emb = [torch.cat([torch.randn(n, 2 * d, generator=g), f.float()], 1) for n, f in ((P, lex[0]), (N, lex[1]))]
    return data, emb


def _mse(sim, train, held):
    pred = sim.predict(held.batches, held.values[..., 0], held.test_rows, held.steps)
    return evaluate(pred, held.values, held.mask)["all_steps_mse_mean"]


def test_recovers_a_planted_word_overlap_effect():
    data, (tr, te) = planted()
    train, held = data.runs(list(range(9))), data.runs([9, 10, 11])
    lex = AnchorLexSim(tr, te, k=4)
    lex.fit_data(train)
    plain = AnchorSim(tr[:, :-LEXICAL_DIM], te[:, :-LEXICAL_DIM], k=4)
    plain.fit_data(train)
    mean = _mean(train.values.double(), train.mask).float()
    base = evaluate(mean[None].expand_as(held.values), held.values, held.mask)["all_steps_mse_mean"]
    assert _mse(lex, train, held) < 0.05 * base and _mse(plain, train, held) > 0.5 * base
    # the fitted word-overlap effect of a training example on a test example is the planted one (up to the ridge)
    base_tab, slope_tab, _ = lex.effect_factors(data.test_rows, data.steps.numel())
    K = _tfidf_kernel(tr[:, -LEXICAL_DIM:].double(), te[:, -LEXICAL_DIM:].double())
    planted_tab = 0.05 * (K - K.mean(0))
    got = (base_tab + 0.5 * slope_tab).reshape(-1)
    assert torch.corrcoef(torch.stack([got, planted_tab.reshape(-1)]))[0, 1] > 0.95
    assert float(got.std() / planted_tab.std()) == pytest.approx(1.0, abs=0.2)


def test_without_word_signal_it_is_anchor_sim():
    data, (tr, te) = planted(signal=0.0)
    data.values.add_(0.05 * torch.randn(data.values.shape, generator=torch.Generator().manual_seed(1)))
    train = data.runs(list(range(9)))
    lex = AnchorLexSim(tr, te, k=4)
    lex.fit_data(train)
    plain = AnchorSim(tr[:, :-LEXICAL_DIM], te[:, :-LEXICAL_DIM], k=4)
    plain.fit_data(train)
    held = data.runs([9, 10, 11])
    # no lexical term (the outer cross-validation finds no gain beyond its standard error): it is anchor_sim
    assert not math.isfinite(float(lex.lex_chosen)) and float(lex.lex_w.abs().max()) == 0.0
    a = lex.predict(held.batches, held.values[..., 0], held.test_rows, held.steps)
    b = plain.predict(held.batches, held.values[..., 0], held.test_rows, held.steps)
    assert torch.allclose(a, b, atol=1e-6)


def test_the_guard_drops_a_lexical_fit_to_the_mean_of_the_values_themselves(monkeypatch):
    """A lexical term forced on word-free noise (strength 1e-2, no check), in the fit and in every fold the guard
    refits: the guard, with its real standard error, drops it, and the simulator is the mean trajectory of the runs'
    values, not the mean of what the lexical term left (which the forced fit's anchor was)."""
    data, (tr, te) = planted(signal=0.0)
    data.values.add_(0.05 * torch.randn(data.values.shape, generator=torch.Generator().manual_seed(1)))
    train = data.runs(list(range(9)))
    mean = _mean(train.values.double(), train.mask).float()

    def forced(self, part):
        self._fit_both(part, self._lex_cumulative(part.batches, part.test_rows), 1e-2)

    monkeypatch.setattr(AnchorLexSim, "_fit_for_guard", forced)
    lex = AnchorLexSim(tr, te, k=4)
    lex._idf_fit()
    forced(lex, train)
    assert float(lex.lex_w.abs().max()) > 0  # the forced fit has a lexical term ...
    assert not torch.allclose(lex.mean[train.test_rows], mean, atol=1e-6)  # ... and the anchor of what it left
    lex._guard(train, None)
    gain, se, kept = lex.guard.tolist()
    assert kept == 0.0 and gain <= se, lex.guard
    assert float(lex.lex_w.abs().max()) == 0.0 and not math.isfinite(float(lex.lex_chosen))
    held = data.runs([9, 10, 11])
    pred = lex.predict(held.batches, held.values[..., 0], held.test_rows, held.steps)
    assert torch.allclose(pred, mean[None].expand_as(pred).clamp(min=0), atol=1e-6)


def test_few_training_runs_fit_and_say_what_they_could_not_check():
    """2 runs: neither the lexical term nor the guard can be checked (a fit without a fold of runs needs 2 runs to
    cross-validate over): no lexical term, the guard's verdict unchecked (nan). 3 runs: both are checked, and the
    planted word-overlap effect is kept."""
    data, (tr, te) = planted()
    sim = AnchorLexSim(tr, te, k=4)
    sim.fit_data(data.runs([0, 1]))
    assert not math.isfinite(float(sim.lex_chosen)) and math.isnan(float(sim.guard[0])) and sim.guard[2] == 1.0
    sim.fit_data(data.runs([0, 1, 2]))
    assert math.isfinite(float(sim.lex_chosen)) and sim.guard[2] == 1.0 and float(sim.guard[0]) > float(sim.guard[1])


def test_influence_is_exact_and_the_checkpoint_round_trips():
    data, (tr, te) = planted(signal=0.05)
    sim = AnchorLexSim(tr, te, k=4)
    sim.fit_data(data)
    assert float(sim.lex_w.abs().max()) > 0
    init = data.values[:2, :, 0]
    for kw in ({}, {"renormalize": False}, {"mode": "add"}):
        res = I.influence(sim, data.batches[:2], init, data.test_rows, **kw)
        ref = I.reference_influence(sim, data.batches[:2], init, data.test_rows, **kw)
        assert float(ref.abs().max()) > 1e-3
        assert torch.allclose(res.final.float(), ref, atol=1e-5), kw
    back = AnchorLexSim.from_config(sim.config(), sim.state_dict())
    back.load_state_dict(sim.state_dict())
    assert torch.equal(back.predict(data.batches[:2], init, data.test_rows, data.steps),
                       sim.predict(data.batches[:2], init, data.test_rows, data.steps))


def test_embedding_mode_and_bad_width(tmp_path):
    from gptfluence.encoders import DEFAULT_ENCODER
    samples = [{"input": "Alan Bean was born in Wheeler", "context": "Alan Bean"}]
    setting = {"encoder": DEFAULT_ENCODER, "pooling": "cls", "max_length": 512}
    two = embed_samples(samples, {**setting, "texts": "input+target"}, tmp_path, show_progress=False)
    three = embed_samples(samples, {**setting, "texts": "input+target+lexical"}, tmp_path, show_progress=False)
    assert three.shape == (1, two.shape[1] + LEXICAL_DIM)
    assert torch.equal(three[:, :two.shape[1]], two) and torch.equal(three[:, two.shape[1]:], lexical_features(samples))
    with pytest.raises(ValueError, match="unknown embedding texts"):
        embed_samples(samples, {**setting, "texts": "input+lexical"}, tmp_path, show_progress=False)
    with pytest.raises(ValueError, match="anchor_lex_sim expects"):
        AnchorLexSim(torch.zeros(3, 10), torch.zeros(2, 10))


def test_new_test_texts_are_embedded_like_the_checkpoint_examples(tmp_path):
    """influence.py --test_texts: new texts get the checkpoint's embedding layout ([input, target, lexical] for
    anchor_lex_sim; before, they were embedded input only and failed the width check)."""
    from types import SimpleNamespace

    from gptfluence.encoders import DEFAULT_ENCODER
    from gptfluence.pipeline.influence import test_examples
    setting = {"encoder": DEFAULT_ENCODER, "pooling": "cls", "max_length": 512, "texts": "input+target+lexical"}
    samples = [{"input": "Alan Bean was born in Wheeler", "context": "Alan Bean"},
               {"input": "The cat sat on the mat", "context": "The cat"}]
    emb = embed_samples(samples, setting, tmp_path, show_progress=False)
    sim = AnchorLexSim(emb, emb[:1])
    sim._idf_fit()  # as fit_data does: IDF over the pool and the test set it was fitted with
    texts = tmp_path / "texts.txt"
    texts.write_text("Alan Bean flew to the moon\nA new text\n")
    spec = SimpleNamespace(test_texts=str(texts), embedding_cache=tmp_path, progress=False, test_ids=None)
    new, rows, ids, got = test_examples(spec, sim, {"encoder": setting}, "cpu")
    assert got == ["Alan Bean flew to the moon", "A new text"] and ids is None and rows.tolist() == [0, 1]
    assert new.test_emb.shape == (2, emb.shape[1]) and sim.test_emb.shape[0] == 1  # a copy, the original kept
    lex = lexical_features([{"input": t} for t in got])
    assert torch.equal(new.test_emb[:, -LEXICAL_DIM:], lex)
    # the new texts are weighed with the fitted inverse document frequencies, not ones of their own
    assert torch.equal(new.lex_idf, sim.lex_idf) and float(sim.lex_idf.max()) > 0
    K = new._lex_kernel(rows)
    assert K.shape == (2, 2, 3) and torch.isfinite(K).all()


def test_checkpoint_file_stores_the_bags_of_words_sparse_and_reads_them_back_dense(tmp_path):
    from gptfluence.checkpoint import load_checkpoint, mark_finished, save_checkpoint, simulator_from_checkpoint
    data, (tr, te) = planted(signal=0.05)
    sim = AnchorLexSim(tr, te, k=4)
    sim.fit_data(data)
    payload = {"sim_name": sim.name, "sim_config": sim.config(), "state_dict": sim.state_dict()}
    save_checkpoint(tmp_path / "best-checkpoint.pt", payload)
    assert payload["state_dict"]["train_emb"].layout == torch.strided  # the caller's dict is left as it was
    dense = tmp_path / "dense.pt"
    torch.save(payload, dense)
    assert (tmp_path / "best-checkpoint.pt").stat().st_size < 0.5 * dense.stat().st_size
    mark_finished(tmp_path)  # re-written from the sparse file
    ckpt = load_checkpoint(tmp_path)
    # torch warns "sparse CSR support is in beta" once per process, on the first such tensor, also when reading one
    # back: test.py users saw it; a fresh process that only reads the checkpoint, warnings as errors, must not
    out = subprocess.run([sys.executable, "-W", "error::UserWarning", "-c",
                          "import sys; from gptfluence.checkpoint import load_checkpoint; load_checkpoint(sys.argv[1])",
                          str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 0 and "beta" not in out.stderr, out.stderr[-500:]
    for k, v in sim.state_dict().items():
        assert ckpt["state_dict"][k].layout == torch.strided and torch.equal(ckpt["state_dict"][k], v), k
    back = simulator_from_checkpoint(ckpt)
    init = data.values[:2, :, 0]
    assert torch.equal(back.predict(data.batches[:2], init, data.test_rows, data.steps),
                       sim.predict(data.batches[:2], init, data.test_rows, data.steps))
