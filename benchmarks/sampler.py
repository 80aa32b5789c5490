"""Tokens/s of ``prmflow.lm.sampling.generate_sample`` (HF generate) vs ``prmflow.lm.sampling.sample`` (the fast loop).

Usage (from the project root)::

    python benchmarks/sampler.py --model models/base             # a trained policy (realistic EOS)
    python benchmarks/sampler.py                                 # random tiny model: never emits EOS
    python benchmarks/sampler.py --model models/base --threads 1 --sweep 64,128,256,512,1024

Shapes: ``rl`` is one RL step (16 prompts x 8 samples, 80 new tokens, one batch of 128);
``label-N`` is Monte-Carlo labelling (question + a prefix of its reference solution, 8 rollouts
each, N sequences, 40 new tokens, ``--label-batch`` sequences per batch). ``--sweep`` instead
times the fast sampler at label shape with N = 1024 for each batch size. Each cell is the median
of ``--repeats`` runs; tokens are completion tokens up to and including EOS (``Samples.num_tokens``);
``speedup`` is the ratio of the wall tokens/s.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def load(model_path: str | None):
    import torch

    from prmflow.config import ModelConfig
    from prmflow.lm.models import build_tiny_model, build_tokenizer, load_tokenizer

    if model_path:
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32), load_tokenizer(model_path)
    tok = build_tokenizer(100)
    return build_tiny_model(tok, ModelConfig(), seed=0), tok


def rl_prompts(seed: int = 0) -> list[str]:
    from prmflow.problems.synthetic import generate_problems

    return [p["question"] + "\n" for p in generate_problems(16, seed, 2, 8)]


def label_prompts(num_sequences: int, rollouts: int = 8, seed: int = 1) -> list[str]:
    """Question + the first k steps of its reference solution (k < number of steps)."""
    from prmflow.problems.synthetic import generate_problems

    rng = random.Random(seed)
    out = []
    for p in generate_problems(num_sequences // rollouts, seed, 2, 8):
        steps = p["answer"].split("\n")[:-1]
        k = rng.randrange(len(steps))
        out.append(p["question"] + "\n" + "".join(s + "\n" for s in steps[:k]))
    return out


def timed(fn, model, tok, prompts, n, *, greedy, max_new_tokens, batch_size, repeats):
    """Median over ``repeats`` runs of (wall tokens/s, tokens per CPU-second, tokens).

    CPU-seconds (``time.process_time``) are shown too because the machine this was written on
    is shared: with 1 thread they estimate the speed on an idle core, wall time does not.
    """
    wall, cpu, toks = [], [], []
    for r in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn(model, tok, prompts, n, greedy=greedy, temperature=1.0, max_new_tokens=max_new_tokens, batch_size=batch_size, seed=r)
        tokens = sum(out.num_tokens)
        wall.append(tokens / (time.perf_counter() - t0))
        cpu.append(tokens / (time.process_time() - c0))
        toks.append(tokens)
    return statistics.median(wall), statistics.median(cpu), statistics.median(toks)


def main(argv: list[str] | None = None) -> list[dict]:
    """Print the table; return its rows: ``shape``, ``mode`` and tokens/s (wall) per sampler
    (``generate``, ``fast``), with ``speedup`` (fast / generate) when both ran."""
    import torch

    from prmflow.lm.sampling import generate_sample, sample

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="saved model dir (default: random tiny Llama)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--label-sizes", default="256,1024")
    ap.add_argument("--label-batch", type=int, default=256)
    ap.add_argument("--sweep", default=None, help="comma list of batch sizes: fast sampler only")
    ap.add_argument("--samplers", default="generate,fast")
    ap.add_argument("--modes", default="greedy,sample", help="greedy and/or sample (temperature 1.0)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model, tok = load(args.model)
    model.eval()
    modes = [m == "greedy" for m in args.modes.split(",")]
    fns = {"generate": generate_sample, "fast": sample}
    fns = {k: fns[k] for k in args.samplers.split(",")}
    for f in fns.values():  # warm-up: lazy imports, first-call allocations
        f(model, tok, rl_prompts()[:2], 2, max_new_tokens=4, batch_size=4, seed=0)
    print(f"model={args.model or 'random tiny'} threads={torch.get_num_threads()} repeats={args.repeats} (median)")
    if args.sweep:
        prompts = label_prompts(1024)
        print(f"{'batch':>6} {'mode':>7} {'tok/s':>8} {'tok/CPU-s':>10}")
        for bs in map(int, args.sweep.split(",")):
            for greedy in modes:
                tps, cps, _ = timed(sample, model, tok, prompts, 8, greedy=greedy, max_new_tokens=40, batch_size=bs, repeats=args.repeats)
                print(f"{bs:>6} {'greedy' if greedy else 'T=1.0':>7} {tps:>8.0f} {cps:>10.0f}", flush=True)
        print(f"load average {os.getloadavg()[0]:.1f}")
        return []
    shapes = [("rl 16x8", rl_prompts(), 8, 80, 128)]
    for size in map(int, args.label_sizes.split(",")):
        shapes.append((f"label-{size}", label_prompts(size), 8, 40, args.label_batch))
    cols = " ".join(f"{k + ' tok/s':>14} {'(/CPU-s)':>9}" for k in fns)
    print(f"{'shape':>10} {'mode':>7} {cols} {'speedup':>8} {'tokens':>7}")
    rows = []
    for name, prompts, n, max_new, bs in shapes:
        for greedy in modes:
            res = [
                timed(f, model, tok, prompts, n, greedy=greedy, max_new_tokens=max_new, batch_size=bs, repeats=args.repeats)
                for f in fns.values()
            ]
            speed = f"{res[-1][0] / res[0][0]:>7.2f}x" if len(res) > 1 else ""
            cells = " ".join(f"{w:>14.0f} {c:>9.0f}" for w, c, _ in res)
            print(f"{name:>10} {'greedy' if greedy else 'T=1.0':>7} {cells} {speed:>8} {res[-1][2]:>7}", flush=True)
            row = {"shape": name, "mode": "greedy" if greedy else "T=1.0", **{k: round(r[0], 1) for k, r in zip(fns, res)}}
            if len(res) > 1:
                row["speedup"] = round(res[-1][0] / res[0][0], 2)
            rows.append(row)
    print(f"load average {os.getloadavg()[0]:.1f}")
    return rows


if __name__ == "__main__":
    main()
