"""The offline base model: a small Pythia-architecture (GPTNeoX) causal LM built by the repo.

No model hub is reachable on our machines, so the default GPT used to make training
runs is created here: a byte-level BPE tokenizer is trained locally with the
`tokenizers` library on generic text (gptfluence.tasks.pretraining_corpus, disjoint
from every task's training pool), then a GPTNeoXForCausalLM of a preset size is
pre-trained for a short while (causal LM, AdamW). Fine-tuning it on a task is then a
real fine-tuning regime: a moderate initial test loss that falls.

The result is cached as a folder that transformers loads like any hub model:

    <cache_dir>/<preset>-seed<seed>/
        config.json, model.safetensors, ...     model.save_pretrained
        tokenizer.json, tokenizer_config.json   PreTrainedTokenizerFast.save_pretrained
        basemodel.json                          the settings and pre-training statistics

Same preset + seed + corpus -> the same tokenizer and the same weights.

    get_base_model("small")                      build (once) or load the local model
    get_base_model("EleutherAI/pythia-14m")      any HF causal-LM name or local path
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from .io import DataError, read_json, write_json
from .runtime import cache_dir as cache_dir_default

logger = logging.getLogger(__name__)

EOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|padding|>"

# Sizes and pre-training budgets of the local models: "tiny" pre-trains in seconds (a smoke-test model),
# "small" (the default) in about a minute on 2 CPU cores. Two stages:
#   1. causal LM on pretraining_corpus(n_docs): steps x batch_size windows of seq_len tokens, lr;
#   2. instruction stage (tune_steps > 0): tune_steps batches of tune_batch_size instruction_examples
#      (corpus-format task instances and format lines), loss on the targets only, tune_lr.
# tie_word_embeddings: input and output embeddings shared (a word's meaning learnt from what it predicts
# and from what predicts it in one vector, which a small budget needs). The vocabulary is large enough for
# the task words (e.g. every sentiment adjective) to be single tokens.
PRESETS: dict[str, dict] = {
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=256,
                 vocab_size=2048, max_position_embeddings=256, tie_word_embeddings=True,
                 n_docs=1500, seq_len=64, batch_size=16, steps=150, lr=3e-3, label_smoothing=0.0,
                 tune_steps=40, tune_batch_size=16, tune_lr=2e-3),
    "small": dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=512,
                  vocab_size=4096, max_position_embeddings=256, tie_word_embeddings=True,
                  n_docs=6000, seq_len=128, batch_size=16, steps=200, lr=3e-3, label_smoothing=0.0,
                  tune_steps=200, tune_batch_size=32, tune_lr=2e-3),
}
# task types of the instruction stage (classification first: their answers are one token, the generation
# targets many) and the share of its format lines
TUNE_WEIGHTS = {"sst2": 1.5, "rte": 1.0, "boolq": 1.5, "webnlg": 0.3, "wmt16_de_en": 0.3}
TUNE_FORMAT_FRACTION = 0.2
DEFAULT_PRESET = "small"


def model_tag(name_or_preset: str, seed: int = 0) -> str:
    """Short model name for run folder names: "gptneox-small-seed0" for a preset, the last
    path component otherwise ("pythia-14m")."""
    if name_or_preset in PRESETS:
        return f"gptneox-{name_or_preset}-seed{seed}"
    return str(name_or_preset).rstrip("/").split("/")[-1]


def _texts_sha(texts: Sequence[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:16]


def train_tokenizer(texts: Sequence[str], vocab_size: int):
    """A byte-level BPE tokenizer trained on `texts`, wrapped as a PreTrainedTokenizerFast
    with eos (= bos) "<|endoftext|>" (id 0) and pad "<|padding|>" (id 1). Any text is
    encodable (byte fallback). Deterministic for the same texts."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  special_tokens=[EOS_TOKEN, PAD_TOKEN],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(list(texts), trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS_TOKEN, bos_token=EOS_TOKEN,
                                   unk_token=EOS_TOKEN, pad_token=PAD_TOKEN)


def build_model(preset: str, tokenizer, seed: int):
    """A freshly initialised GPTNeoXForCausalLM of the preset's size (seeded)."""
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    p = PRESETS[preset]
    cfg = GPTNeoXConfig(
        vocab_size=len(tokenizer), hidden_size=p["hidden_size"], num_hidden_layers=p["num_hidden_layers"],
        num_attention_heads=p["num_attention_heads"], intermediate_size=p["intermediate_size"],
        max_position_embeddings=p["max_position_embeddings"], bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=bool(p.get("tie_word_embeddings", False)), hidden_dropout=0.0, attention_dropout=0.0)
    torch.manual_seed(seed)
    return GPTNeoXForCausalLM(cfg)


def _token_stream(texts: Sequence[str], tokenizer) -> torch.Tensor:
    """All texts tokenised and joined with eos: LongTensor [n_tokens]."""
    eos = tokenizer.eos_token_id
    ids: list[int] = []
    for enc in tokenizer(list(texts), add_special_tokens=False)["input_ids"]:
        ids.extend(enc)
        ids.append(eos)
    return torch.tensor(ids, dtype=torch.long)


def pretrain(model, stream: torch.Tensor, steps: int, batch_size: int, seq_len: int, lr: float, seed: int,
             progress: bool = True, label_smoothing: float = 0.0) -> dict:
    """Causal-LM pre-training on random windows of `stream` [n_tokens]. AdamW (0.9, 0.95),
    weight decay 0.01, 5% warm-up then cosine decay to 10% of `lr`. Label smoothing keeps the
    model from becoming over-confident on the (templated) corpus, so that text outside it,
    such as a task's answer words, starts at a moderate loss. Returns statistics (first/last
    mean cross-entropy in nats/token without smoothing, seconds)."""
    from tqdm.auto import tqdm

    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.01)
    warm = max(1, steps // 20)

    def factor(s: int) -> float:
        if s < warm:
            return (s + 1) / warm
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, steps - warm)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    n_windows = stream.numel() - seq_len - 1
    if n_windows < 1:
        raise DataError(f"pre-training corpus too short ({stream.numel()} tokens) for windows of {seq_len}")
    model.train()
    losses: list[float] = []
    t0 = time.time()
    for _ in tqdm(range(steps), desc="pre-train", disable=not progress):
        starts = torch.randint(0, n_windows, (batch_size,), generator=g)
        x = torch.stack([stream[s:s + seq_len] for s in starts.tolist()])
        logits = model(input_ids=x).logits[:, :-1].float()  # [B, L-1, V]
        flat, tgt = logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1)
        loss = F.cross_entropy(flat, tgt, label_smoothing=label_smoothing)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(F.cross_entropy(flat.detach(), tgt).item() if label_smoothing else loss.item())
    k = max(1, min(20, steps // 5))
    return {"pretrain_seconds": round(time.time() - t0, 2), "first_loss": sum(losses[:k]) / k,
            "last_loss": sum(losses[-k:]) / k, "steps": steps}


def instruction_tune(model, tokenizer, examples: Sequence[dict], steps: int, batch_size: int, lr: float, seed: int,
                     progress: bool = True) -> dict:
    """Second stage: `steps` AdamW updates (0.9, 0.95; weight decay 0.01; linear decay to 0) on batches of
    `batch_size` examples {"context", "input"} taken in a seeded order (cycling); the loss is the mean over
    the batch of each example's mean target-token loss (input minus context, and eos; the prompt is not
    scored), so a one-word answer weighs as much as a sentence. Returns statistics."""
    from tqdm.auto import tqdm

    from .runmaker.encoding import collate, encode_samples
    from .runmaker.scoring import example_means, token_losses

    if not examples:
        raise DataError("instruction stage: no examples")
    encs = encode_samples(examples, tokenizer, max_len=256)
    order = torch.randperm(len(encs), generator=torch.Generator().manual_seed(seed)).tolist()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.01)
    model.train()
    losses: list[float] = []
    t0 = time.time()
    for step in tqdm(range(steps), desc="instruction stage", disable=not progress):
        for group in opt.param_groups:
            group["lr"] = lr * (1.0 - step / steps)
        idx = [order[(step * batch_size + k) % len(order)] for k in range(batch_size)]
        batch = collate([encs[i] for i in idx], tokenizer.pad_token_id, torch.device("cpu"))
        loss = example_means(token_losses(model, batch), batch).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    k = max(1, min(20, steps // 5))
    return {"tune_seconds": round(time.time() - t0, 2), "tune_first_loss": sum(losses[:k]) / k,
            "tune_last_loss": sum(losses[-k:]) / k, "tune_steps": steps}


def _default_corpus(n_docs: int, seed: int) -> list[str]:
    try:
        from . import tasks
    except ImportError as e:  # pragma: no cover - depends on the rest of the repo
        raise DataError(f"gptfluence.tasks is not available ({e}); pass corpus= to get_base_model") from None
    return list(tasks.pretraining_corpus(n_docs, seed))


def _default_instructions(n: int, seed: int) -> list[dict]:
    from . import tasks
    return tasks.instruction_examples(n, seed, weights=TUNE_WEIGHTS, format_fraction=TUNE_FORMAT_FRACTION)


def build_base_model(preset: str, out_dir: str | os.PathLike, seed: int = 0,
                     corpus: Sequence[str] | None = None, progress: bool = True,
                     instructions: Sequence[dict] | None = None) -> Path:
    """Train the tokenizer, build and pre-train the preset model (LM stage, then the instruction stage when
    the preset has tune_steps), save it to `out_dir` (atomically: written beside it, then renamed).
    instructions: the instruction stage's examples (default: tasks.instruction_examples, tune_steps x
    tune_batch_size of them). Returns `out_dir`."""
    p = PRESETS[preset]
    texts = list(corpus) if corpus is not None else _default_corpus(p["n_docs"], seed)
    if not texts:
        raise DataError("pre-training corpus is empty")
    tune_steps = int(p.get("tune_steps", 0))
    if tune_steps and instructions is None:
        instructions = _default_instructions(tune_steps * p["tune_batch_size"], seed)
    logger.info("building base model %r (seed %d) from %d documents", preset, seed, len(texts))
    t0, c0 = time.time(), time.process_time()
    tokenizer = train_tokenizer(texts, p["vocab_size"])
    model = build_model(preset, tokenizer, seed)
    stream = _token_stream(texts, tokenizer)
    stats = pretrain(model, stream, p["steps"], p["batch_size"], p["seq_len"], p["lr"], seed, progress,
                     p.get("label_smoothing", 0.0))
    if tune_steps:
        stats.update(instruction_tune(model, tokenizer, instructions, tune_steps, p["tune_batch_size"],
                                      p["tune_lr"], seed, progress))
        stats["instructions_sha"] = _texts_sha([x["input"] for x in instructions])
    model.eval()
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        info = {"preset": preset, "seed": seed, "settings": p, "corpus_docs": len(texts),
                "corpus_sha": _texts_sha(texts), "corpus_tokens": int(stream.numel()),
                "n_params": sum(x.numel() for x in model.parameters()),
                "total_seconds": round(time.time() - t0, 2), "cpu_seconds": round(time.process_time() - c0, 2),
                "torch_threads": torch.get_num_threads(), **stats}
        write_json(tmp / "basemodel.json", info)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("base model saved to %s (pre-train loss %.3f -> %.3f in %.1f s)", out_dir,
                stats["first_loss"], stats["last_loss"], stats["pretrain_seconds"])
    return out_dir


def _resolve_dtype(dtype):
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float16": torch.float16, "fp16": torch.float16}
    if dtype not in table:
        raise DataError(f"unknown dtype {dtype!r}; expected one of {sorted(table)}")
    return table[dtype]


def _load_folder(path: str, device, dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = {"dtype": dtype} if dtype is not None else {}
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token_id is None:  # Pythia and most GPTs have no pad token
        tokenizer.pad_token = tokenizer.eos_token
    model.to(device)
    model.eval()
    return model, tokenizer


def resolved_path(name_or_preset: str, cache_dir: str | os.PathLike | None = None, seed: int = 0) -> str:
    """The folder a preset name loads from (<cache_dir>/<preset>-seed<seed>), or the name itself for a folder or
    a hub name: worker processes load exactly the model their parent built, whatever their own presets."""
    name = str(name_or_preset)
    if name in PRESETS:
        return str(Path(cache_dir or cache_dir_default("models")) / f"{name}-seed{seed}")
    return name


def _cached_info(folder: Path, preset: str) -> dict | None:
    """basemodel.json of a cached preset model, or None when there is none or it was built with other
    settings than this version's preset (it is then built again)."""
    if not (folder / "basemodel.json").is_file():
        return None
    info = read_json(folder / "basemodel.json")
    if info.get("settings") != PRESETS[preset]:
        logger.warning("%s: built with other %r settings than this version's; building it again", folder, preset)
        return None
    return info


def ensure_preset_model(preset: str, cache_dir: str | os.PathLike | None = None, seed: int = 0,
                        corpus: Sequence[str] | Callable[[], Sequence[str]] | None = None,
                        progress: bool = True) -> Path:
    """The folder of a local preset model, built and pre-trained first if it is not cached (get_base_model's
    rules: a cached model pre-trained on another corpus is refused), without loading it: a parent process whose
    workers load the model need not (loading costs a process seconds of imports and initialisation)."""
    folder = Path(cache_dir or cache_dir_default("models")) / f"{preset}-seed{seed}"
    texts = corpus() if callable(corpus) else corpus
    info = _cached_info(folder, preset)
    if info is not None:
        if texts is not None and info.get("corpus_sha") != _texts_sha(list(texts)):
            raise DataError(f"{folder}: cached base model was pre-trained on another corpus; "
                            f"delete the folder or use another cache_dir")
    else:
        build_base_model(preset, folder, seed=seed, corpus=texts, progress=progress)
    return folder


def get_base_model(name_or_preset: str = DEFAULT_PRESET, cache_dir: str | os.PathLike | None = None,
                   seed: int = 0, device: str | torch.device = "cpu", dtype=None,
                   corpus: Sequence[str] | Callable[[], Sequence[str]] | None = None,
                   progress: bool = True):
    """(model, tokenizer) for a preset name, a local folder, or an HF causal-LM name.

    name_or_preset: a key of PRESETS (built and pre-trained locally on first use, then loaded
        from <cache_dir>/<preset>-seed<seed>); an existing folder (loaded with
        AutoModelForCausalLM / AutoTokenizer); or a hub name such as "EleutherAI/pythia-14m".
    corpus: pre-training texts for a preset (default: gptfluence.tasks.pretraining_corpus).
        A cached model pre-trained on another corpus is refused, never silently used.
    The tokenizer always has a pad token (eos when the model has none). Model in eval mode.
    Raises DataError for an unknown preset that is not a path, or a model that cannot be loaded.
    """
    dtype = _resolve_dtype(dtype)
    name = str(name_or_preset)
    if name in PRESETS:
        return _load_folder(str(ensure_preset_model(name, cache_dir, seed, corpus, progress)), device, dtype)
    if os.path.isdir(name):
        return _load_folder(name, device, dtype)
    if "/" not in name:
        raise DataError(f"unknown base model {name!r}: not a preset ({', '.join(PRESETS)}), "
                        f"not an existing folder, not a hub name like 'EleutherAI/pythia-14m'")
    try:
        return _load_folder(name, device, dtype)
    except (OSError, ValueError) as e:
        raise DataError(
            f"cannot load model {name!r} ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). "
            f"Without network access pass a local folder holding the model (save_pretrained layout), "
            f"set up the Hugging Face cache (HF_HOME) with it, or use a local preset ({', '.join(PRESETS)})"
        ) from None


def default_model_path(preset: str = DEFAULT_PRESET, cache_dir: str | os.PathLike | None = None,
                       seed: int = 0) -> Path:
    """Folder of a local preset model (built and pre-trained on first use): the default causal LM
    whose last-token hidden states the gpt_sim simulator uses as features."""
    return ensure_preset_model(preset, cache_dir, seed)
