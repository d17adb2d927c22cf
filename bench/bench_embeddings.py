"""Benchmark: text embeddings one text per encoder call (as released) vs batched + cached (ours).

    python bench/bench_embeddings.py                 # 200 generated sentences, default encoder
    python bench/bench_embeddings.py --n_texts 1000 --batch_size 128

Prints wall-clock seconds of
    released   one text per forward call, no cache
    cold       embed_texts: batched, sorted by length, empty cache (includes writing the cache)
    warm       embed_texts again on the same texts (cache hit, no model call)
and the ratios released/cold and released/warm, plus the largest difference between
the released and our vectors (should be ~1e-6: padding does not change the result).
Model loading is done once before timing and is not counted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import tempfile
import time

import torch

from gptfluence import encoders

logger = logging.getLogger("bench_embeddings")

WORDS = ("the a model data training example test loss sentence movie great terrible question answer "
         "river city because when after before small large quickly slowly never always dog garden sun "
         "translate english german premise hypothesis entailment passage true false review positive "
         "negative people history music science water table morning evening").split()


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n_texts", type=int, default=200, help="number of generated sentences")
    p.add_argument("--min_words", type=int, default=4, help="shortest generated sentence (words)")
    p.add_argument("--max_words", type=int, default=120, help="longest generated sentence (words)")
    p.add_argument("--encoder", type=str, default=encoders.DEFAULT_ENCODER, help="encoder name or folder")
    p.add_argument("--pooling", type=str, default="cls", choices=encoders.POOLINGS, help="pooling")
    p.add_argument("--max_length", type=int, default=512, help="max tokens per text")
    p.add_argument("--batch_size", type=int, default=64, help="texts per forward call (ours)")
    p.add_argument("--device", type=str, default="cpu", help="torch device")
    p.add_argument("--cache_dir", type=str, default=None,
                   help="embedding cache folder (default: a fresh temporary folder per repeat, so 'cold' is cold; "
                        "a given folder is only cold if it holds no cache for these texts yet)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated sentences")
    p.add_argument("--repeats", type=int, default=1,
                   help="alternate released / cold / warm this many times and report medians "
                        "(the machine is shared: more repeats give steadier ratios)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--no_progress", action="store_true", help="disable progress bars")
    return p.parse_args(argv)


def make_texts(n: int, min_words: int, max_words: int, seed: int) -> list[str]:
    """n distinct sentences of min_words..max_words random words (deterministic by seed)."""
    rng = random.Random(seed)
    texts = []
    for i in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(min_words, max_words))]
        texts.append(f"{i}: " + " ".join(words) + ".")
    return texts


@torch.no_grad()
def embed_released(texts: list[str], tokenizer, model, max_length: int, device: str) -> torch.Tensor:
    """One text per forward call, CLS pooling, no cache -> FloatTensor [N, d]."""
    rows = []
    for text in texts:
        enc = tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt").to(device)
        rows.append(model(**enc).last_hidden_state[:, 0].float().cpu())
    return torch.cat(rows)


def timed(fn):
    """(result, seconds) of fn()."""
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main(argv=None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    texts = make_texts(args.n_texts, args.min_words, args.max_words, args.seed)
    resolved = encoders.resolve_encoder(args.encoder)
    identity_key = json.dumps(encoders.encoder_identity(resolved), sort_keys=True)
    tokenizer, model = encoders._load_encoder(resolved, args.device, identity_key)
    n_tokens = [len(tokenizer(t, truncation=True, max_length=args.max_length)["input_ids"]) for t in texts]
    logger.info("%d texts, %d-%d tokens (mean %.0f), encoder %s, %d threads", len(texts), min(n_tokens),
                max(n_tokens), sum(n_tokens) / len(n_tokens), args.encoder, torch.get_num_threads())

    times = {"released": [], "cold": [], "warm": []}
    for rep in range(args.repeats):
        released, t = timed(lambda: embed_released(texts, tokenizer, model, args.max_length, args.device))
        times["released"].append(t)
        with tempfile.TemporaryDirectory() as tmp:
            cache_dir = args.cache_dir or tmp
            kw = dict(encoder=args.encoder, pooling=args.pooling, max_length=args.max_length,
                      batch_size=args.batch_size, cache_dir=cache_dir, device=args.device,
                      show_progress=not args.no_progress)
            cold, t = timed(lambda: encoders.embed_texts(texts, **kw))
            times["cold"].append(t)
            warm, t = timed(lambda: encoders.embed_texts(texts, **kw))
            times["warm"].append(t)
        logger.info("repeat %d: %s", rep, {k: round(v[-1], 4) for k, v in times.items()})
    t_released, t_cold, t_warm = (statistics.median(times[k]) for k in ("released", "cold", "warm"))
    result = {"n_texts": len(texts), "released_s": t_released, "cold_s": t_cold, "warm_s": t_warm,
              "released_over_cold": t_released / t_cold, "released_over_warm": t_released / t_warm,
              "warm_equals_cold": bool(torch.equal(cold, warm))}
    if args.pooling == "cls":
        result["max_abs_diff_released_vs_ours"] = float((released - cold).abs().max())
    print(f"released (1 text/call, no cache): {t_released:8.3f} s")
    print(f"ours cold (batched, sorted)     : {t_cold:8.3f} s   {result['released_over_cold']:6.1f}x faster")
    print(f"ours warm (cache hit)           : {t_warm:8.3f} s   {result['released_over_warm']:6.0f}x faster")
    for key in ("warm_equals_cold", "max_abs_diff_released_vs_ours"):
        if key in result:
            print(f"{key}: {result[key]}")
    return result


if __name__ == "__main__":
    main()
