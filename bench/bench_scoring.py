"""Benchmark: per-step test scoring of the run maker vs the naive way.

Fast (gptfluence.runmaker.score_losses): length-sorted padded batches, the transformer body
once per batch, the output layer applied only at the scored (output-token) positions.
Naive (score_losses_naive): one test example at a time, full-vocabulary logits at every
position. Both give the same numbers (the max difference is printed). Also measures
training steps/s (batch --bs, AdamW) on the same model.

    python bench/bench_scoring.py                       # quick: small model, rte, 64 test examples
    python bench/bench_scoring.py --n_test 200 --model tiny
    python bench/bench_scoring.py --vocab_size 50304      # output layer as large as Pythia's

The speed-up grows with the share of the output layer in the compute: with the local small
model (vocabulary ~3.5k, hidden 128) it is about 2x on one CPU thread; with a Pythia-sized
vocabulary (50k) it is well above 5x.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

logger = logging.getLogger("bench_scoring")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=str, default="small",
                   help="preset (tiny, small; built on first use, ~2 min for small), local folder or HF name")
    p.add_argument("--model_seed", type=int, default=0, help="seed of a local preset")
    p.add_argument("--model_cache", type=str, default=None, help="folder of the local preset models")
    p.add_argument("--task", type=str, default="rte", help="built-in task whose test examples are scored")
    p.add_argument("--n_test", type=int, default=64, help="test examples scored")
    p.add_argument("--n_train", type=int, default=64, help="training pool size for the training-step timing")
    p.add_argument("--train_steps", type=int, default=10, help="training steps timed")
    p.add_argument("--bs", type=int, default=4, help="training batch size")
    p.add_argument("--eval_batch_size", type=int, default=64, help="test examples per fast-scoring batch")
    p.add_argument("--repeats", type=int, default=2, help="timed repetitions of the fast path (best is kept)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    p.add_argument("--vocab_size", type=int, default=0,
                   help="if > 0, resize the model's vocabulary to this size (new rows random) to see how the "
                        "speed-up grows with the output layer, e.g. 50304 = Pythia's vocabulary")
    p.add_argument("--device", type=str, default="cpu", help="cpu or a CUDA index")
    return p.parse_args(argv)


def timed(fn, repeats: int = 1) -> tuple[float, object]:
    """(best wall seconds over `repeats` calls, last result)."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    import torch

    from gptfluence import runmaker as D
    from gptfluence import tasks
    from gptfluence.basemodel import get_base_model

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cpu" if args.device == "cpu" or not torch.cuda.is_available() else f"cuda:{args.device}")
    model, tok = get_base_model(args.model, args.model_cache, seed=args.model_seed, device=device, progress=False)
    if args.vocab_size > 0:
        torch.manual_seed(0)
        model.resize_token_embeddings(args.vocab_size, mean_resizing=False)
    train, test = tasks.build_task(args.task, args.n_train, args.n_test, seed=0)
    test_encs = D.encode_samples(test, tok)
    train_encs = D.encode_samples(train, tok)
    pad = tok.pad_token_id

    D.score_losses(model, test_encs[:4], pad, args.eval_batch_size, device)  # warm-up
    t_fast, fast = timed(lambda: D.score_losses(model, test_encs, pad, args.eval_batch_size, device), args.repeats)
    t_naive, naive = timed(lambda: D.score_losses_naive(model, test_encs, device))

    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.001)
    g = torch.Generator().manual_seed(0)

    def train_steps(n: int):
        model.train()
        for _ in range(n):
            idx = torch.randint(0, len(train_encs), (args.bs,), generator=g).tolist()
            loss = D.train_loss(model, [train_encs[i] for i in idx], pad, device)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

    train_steps(1)  # warm-up (optimizer state allocation)
    t_train, _ = timed(lambda: train_steps(args.train_steps))
    n_tok = sum(len(e.ids) for e in test_encs) / len(test_encs)
    n_params, vocab = sum(p.numel() for p in model.parameters()) / 1e6, model.get_output_embeddings().weight.shape[0]
    print(f"model {args.model} ({n_params:.2f} M params, vocab {vocab}), "
          f"task {args.task}, {len(test_encs)} test examples of {n_tok:.1f} tokens on average, "
          f"torch threads {torch.get_num_threads()}, device {device}")
    print(f"fast scoring : {t_fast:.3f} s  ({len(test_encs) / t_fast:.1f} examples/s)")
    print(f"naive scoring: {t_naive:.3f} s  ({len(test_encs) / t_naive:.1f} examples/s)")
    print(f"speed-up     : {t_naive / t_fast:.1f}x   (max |fast - naive| = {float((fast - naive).abs().max()):.2e})")
    print(f"training     : {args.train_steps / t_train:.2f} steps/s (batch {args.bs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
