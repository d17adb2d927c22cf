"""Benchmark: the run maker's greedy decoding (for BLEU / ROUGE at every recorded step) vs model.generate.

Baseline: model.generate(do_sample=False) on each left-padded batch, every row decoded until the batch's longest
length limit or until every row has produced eos (what the run maker did before). Ours
(gptfluence.runmaker.generation.greedy_decode): a row leaves the batch as soon as it has produced eos or reached its
own limit (ceil(1.5 x reference length) + 1 tokens), so the tail of a batch costs only the rows still going. Both
give the same tokens (checked here and in tests/test_dynamics.py). The run maker also scores the test losses at
every recorded step; the last columns time scoring + decoding done apart (score_losses, then greedy_decode) against
decoding that starts from the scoring pass's context states (score_losses(prefill=...), then greedy_decode(
prefills=...)), and count the outputs that differ. The model is first fine-tuned for
--train_steps steps on the task's pool (batch 4) so that its outputs look like those in the middle of a run.

    python bench/bench_decoding.py                        # small model, webnlg and wmt16_de_en, 50 test examples
    python bench/bench_decoding.py --tasks webnlg --train_steps 0
"""

from __future__ import annotations

import argparse
import math


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="small", help="preset (tiny, small), local folder or HF name")
    p.add_argument("--model_cache", default=None, help="folder of the local preset models")
    p.add_argument("--tasks", default="webnlg,wmt16_de_en", help="comma-separated built-in generation tasks")
    p.add_argument("--n_test", type=int, default=50, help="test examples decoded")
    p.add_argument("--batch_size", type=int, default=64, help="examples per decoding batch (the run maker's 64)")
    p.add_argument("--train_steps", type=int, default=24, help="fine-tuning steps before timing (lr 1e-3, batch 4)")
    p.add_argument("--repeats", type=int, default=3, help="timed repetitions (best kept)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    return p.parse_args(argv)


def generate_all_rows(model, ctxs, limits, eos: int, pad: int) -> tuple[list[list[int]], int]:
    """The baseline: (tokens of each row cut at its limit and first eos, row-steps decoded)."""
    from gptfluence.runmaker.generation import _left_padded
    ids, mask = _left_padded(ctxs, pad)
    gen = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max(limits), do_sample=False,
                         pad_token_id=pad, eos_token_id=eos, use_cache=True)
    L = ids.shape[1]
    out = []
    for b, n in enumerate(limits):
        new = gen[b, L:L + n].tolist()
        out.append(new[:new.index(eos) + 1] if eos in new else new)
    return out, len(ctxs) * (gen.shape[1] - L - 1)


def bench_task(task: str, model, tok, args) -> str:
    import torch
    from bench_scoring import timed  # bench/ is the script's folder, first on sys.path

    from gptfluence import tasks
    from gptfluence.pipeline.runs import CPU_EVAL_BATCH
    from gptfluence.runmaker import encode_samples, train_loss
    from gptfluence.runmaker.generation import generate_outputs, greedy_decode
    from gptfluence.runmaker.scoring import score_losses
    pool, test = tasks.build_task(task, max(4 * args.train_steps, 4), args.n_test, seed=0)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    train_encs = encode_samples(pool, tok)
    for t in range(args.train_steps):
        train_loss(model, train_encs[4 * t:4 * t + 4], tok.pad_token_id, "cpu").backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    model.eval()
    encs = encode_samples(test, tok)
    order = sorted(range(len(encs)), key=lambda i: encs[i].n_ctx)
    batches = []
    for s in range(0, len(order), args.batch_size):
        idx = order[s:s + args.batch_size]
        batches.append(([encs[i].ids[:encs[i].n_ctx] for i in idx],
                        [int(math.ceil(1.5 * (len(encs[i].ids) - encs[i].n_ctx))) + 1 for i in idx]))
    eos, pad = tok.eos_token_id, tok.pad_token_id
    with torch.no_grad():
        t_base, base = timed(lambda: [generate_all_rows(model, c, n, eos, pad) for c, n in batches], args.repeats)
        t_ours, ours = timed(lambda: [greedy_decode(model, c, n, eos, pad) for c, n in batches], args.repeats)
        ref_lens = [len(e.ids) - e.n_ctx for e in encs]

        def apart():
            score_losses(model, encs, pad, CPU_EVAL_BATCH)
            return generate_outputs(model, tok, encs, ref_lens, args.batch_size)

        def shared():
            prefill = {}
            score_losses(model, encs, pad, CPU_EVAL_BATCH, prefill=prefill)
            return generate_outputs(model, tok, encs, ref_lens, args.batch_size, prefill=prefill)

        t_apart, texts_apart = timed(apart, args.repeats)
        t_shared, texts_shared = timed(shared, args.repeats)
    differ = sum(a != b for a, b in zip(texts_apart, texts_shared))
    same = [b[0] for b in base] == ours
    rows_base = sum(b[1] for b in base)
    rows_ours = sum(len(x) - 1 for out in ours for x in out)
    return (f"| {task} ({len(encs)} test examples, after {args.train_steps} steps) | {t_base:.3f} s "
            f"({rows_base} row-steps) | {t_ours:.3f} s ({rows_ours} row-steps) | **{t_base / t_ours:.2f}x** | "
            f"{'yes' if same else 'NO'} | {t_apart:.3f} s | {t_shared:.3f} s | **{t_apart / t_shared:.2f}x** | "
            f"{differ} of {len(encs)} |")


def main(argv=None) -> str:
    args = parse_args(argv)
    import copy

    import torch

    from gptfluence.basemodel import get_base_model
    torch.set_num_threads(args.threads)
    model, tok = get_base_model(args.model, args.model_cache, progress=False)
    lines = ["| task | model.generate, every row to the longest limit | greedy_decode, rows leave when done | ratio | "
             "same tokens | scoring (batches of 16) + decoding apart | decoding from the scoring pass | ratio | "
             "outputs that differ |", "|---|---|---|---|---|---|---|---|---|"]
    for task in [t.strip() for t in args.tasks.split(",") if t.strip()]:
        torch.manual_seed(0)
        lines.append(bench_task(task, copy.deepcopy(model), tok, args))
        print(lines[-1], flush=True)
    text = "\n".join(lines)
    print(f"\n{args.model} model, {args.threads} thread(s)\n" + text)
    return text


if __name__ == "__main__":
    main()
