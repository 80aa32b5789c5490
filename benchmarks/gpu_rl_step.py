"""The GPU path with a ~0.5B model: sampling, GRPO updates and PRM-style scoring, timed.

    python benchmarks/gpu_rl_step.py [--steps 5] [--prompts 16] [--group 8] [--max-new-tokens 96]
                                     [--samplers generate eager graphs] [--shapes 16x8 64x8]

No weights are downloaded: a random-init Llama of about 0.5B parameters (Qwen2.5-0.5B's shape)
over the synthetic task's word-level tokenizer, in bf16 on CUDA (fp32 on CPU). Each step is
what ``tasks/train_policy.py`` does per RL step (the same functions): group sampling with the
shared sampler, outcome rewards, GRPO advantages, one clipped-loss update. Prints parameters,
device, seconds per step, samples/s, generated tokens/s, the training-free step scorer's time
and peak GPU memory. Accuracy is meaningless here (random weights); this checks the code runs
on a GPU at a realistic size and how fast.

First, generation alone, side by side on the same model and prompts: HF ``generate``
(``generate``), the fast loop launched from Python (``eager``) and the same loop on static shapes
replayed as a CUDA graph (``graphs``, the default on CUDA), at each ``--shapes`` (prompts x
group). Tokens are generated tokens up to EOS (random weights rarely stop, so most rows run to
``--max-new-tokens``). Then the RL steps, whose update's MFU counts 6 N FLOPs per trained token
(forward + backward) plus 2 N for the old-log-prob forward, N = parameters without the
embedding, over the peak given by ``--peak-tflops`` (default 989: the H100/H200 dense bf16
datasheet figure).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--layers", type=int, default=24, help="24: ~0.5B (Qwen2.5-0.5B's shape); 1 for a quick CPU check")
    ap.add_argument("--samplers", nargs="*", default=["generate", "eager", "graphs"], choices=["generate", "eager", "graphs"])
    ap.add_argument("--shapes", nargs="*", default=["16x8", "64x8"], help="prompts x group of the generation comparison")
    ap.add_argument("--repeats", type=int, default=3, help="timed generations per sampler and shape (after one warm-up)")
    ap.add_argument("--peak-tflops", type=float, default=989.0)
    args = ap.parse_args()

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from prmflow.lm.logprobs import sequence_logprobs
    from prmflow.lm.models import build_tokenizer, resolve_device, resolve_dtype
    from prmflow.lm.sampling import generate_sample, sample
    from prmflow.prm.scorers import PolicyConfidenceScorer
    from prmflow.problems.synthetic import generate_problems
    from prmflow.rl.batch import build_batch
    from prmflow.rl.loss import clipped_policy_loss, masked_mean
    from reward.advantages import grpo_advantages
    from reward.outcome import outcome_rewards

    device = resolve_device("auto")
    dtype = resolve_dtype("auto", device)
    tok = build_tokenizer(100)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=args.layers,
        num_attention_heads=14,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).to(device=device, dtype=dtype)
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"device {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}), dtype {dtype}, parameters {n_params / 1e6:.0f}M",
        flush=True,
    )
    problems = generate_problems(max(args.prompts * args.steps, 64 * 4), seed=1, min_steps=2, max_steps=8)
    prompts_all = [p["question"] + "\n" for p in problems]

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def generation(name: str, prompts: list[str], group: int, seed: int):
        kw = dict(temperature=1.0, max_new_tokens=args.max_new_tokens, batch_size=512, seed=seed)
        if name == "generate":
            return generate_sample(model, tok, prompts, group, **kw)
        return sample(model, tok, prompts, group, cuda_graphs=name == "graphs", **kw)

    model.eval()
    if "graphs" in args.samplers and device.type == "cuda":
        # sample() falls back to generate when capture fails (with a one-line warning); print here
        # the whole traceback of why it would.
        import traceback

        from prmflow.lm.static_decode import decode_chunk_static

        enc = tok(prompts_all[:4], return_tensors="pt", padding=True)
        try:
            with torch.inference_mode():
                decode_chunk_static(
                    model,
                    enc["input_ids"].to(device),
                    enc["attention_mask"].to(device),
                    torch.arange(4, device=device),
                    max_new_tokens=8,
                    eos_id=tok.eos_token_id,
                    pad_id=tok.pad_token_id,
                    greedy=False,
                    temperature=1.0,
                    top_p=1.0,
                    eager_mask=False,
                    graph=True,
                )
            print("CUDA-graph capture: ok", flush=True)
        except Exception:
            print("CUDA-graph capture FAILED:\n" + traceback.format_exc(), flush=True)
        with torch.inference_mode():
            a = sample(model, tok, prompts_all[:64], 1, greedy=True, max_new_tokens=args.max_new_tokens, cuda_graphs=False)
            b = sample(model, tok, prompts_all[:64], 1, greedy=True, max_new_tokens=args.max_new_tokens, cuda_graphs=True)
        same = sum(x == y for x, y in zip(a.completion_ids, b.completion_ids))
        print(f"greedy, graphs vs eager loop: {same}/64 completions identical (bf16: ties within rounding can flip)", flush=True)
    rates = {}
    for shape in args.shapes:
        n_prompts, group = (int(x) for x in shape.split("x"))
        for name in args.samplers:
            generation(name, prompts_all[:n_prompts], group, seed=0)  # warm-up: kernels, allocator, capture
            sync()
            t0, tokens = time.perf_counter(), 0
            for r in range(args.repeats):
                s = generation(name, prompts_all[r * n_prompts : (r + 1) * n_prompts], group, seed=r + 1)
                tokens += sum(s.num_tokens)
            sync()
            dt = (time.perf_counter() - t0) / args.repeats
            rates[shape, name] = tokens / args.repeats / dt
            print(
                f"generation {shape} ({n_prompts * group} rows) {name:8s}: {dt:.3f} s per call, {tokens / args.repeats:.0f} tokens, "
                f"{rates[shape, name]:,.0f} tokens/s"
                + (
                    f" ({rates[shape, name] / rates[shape, 'generate']:.1f}x generate)"
                    if (shape, "generate") in rates and name != "generate"
                    else ""
                ),
                flush=True,
            )

    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
    n_dense = n_params - model.get_input_embeddings().weight.numel()
    pad = tok.pad_token_id
    times, sample_s, update_s, new_tokens, flops = [], 0.0, 0.0, 0, 0.0
    for step in range(args.steps):
        sync()
        t0 = time.perf_counter()
        batch = problems[step * args.prompts : (step + 1) * args.prompts]
        prompts = prompts_all[step * args.prompts : (step + 1) * args.prompts]
        model.eval()
        s = sample(model, tok, prompts, args.group, temperature=1.0, max_new_tokens=args.max_new_tokens, batch_size=512, seed=step)
        sync()
        t_s = time.perf_counter() - t0
        answers = [p["final_answer"] for p in batch for _ in range(args.group)]
        rewards = torch.tensor(outcome_rewards(s.texts, answers))
        adv = grpo_advantages(rewards, args.group)
        token_adv = [torch.full((n,), float(a)) for a, n in zip(adv, s.num_tokens)]
        b = build_batch(s.prompt_ids, s.completion_ids, token_adv, pad).to(device)
        ids, attn, cmask, tadv = b.input_ids, b.attention_mask, b.completion_mask, b.advantages
        t_u = time.perf_counter()
        with torch.no_grad():
            old, _ = sequence_logprobs(model, ids, attn)
        model.train()
        logp, _ = sequence_logprobs(model, ids, attn)
        loss, stats = clipped_policy_loss(logp, old, tadv, cmask, 0.2, 0.28)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sync()
        t1 = time.perf_counter()
        dt = t1 - t0
        step_flops = 8 * n_dense * ids.numel()  # padded tokens are computed too
        if step > 0:
            times.append(dt)
            sample_s += t_s
            update_s += t1 - t_u
            new_tokens += sum(s.num_tokens)
            flops += step_flops
        print(
            f"step {step + 1}: {dt:.2f} s (sampling {t_s:.2f} s, {sum(s.num_tokens)} tokens; update {t1 - t_u:.2f} s, "
            f"MFU {step_flops / (t1 - t_u) / (args.peak_tflops * 1e12):.1%}), loss {float(loss.detach()):.4f}, "
            f"clip_frac {stats['clip_frac']:.3f}, mean logp {float(masked_mean(logp.detach(), cmask)):.2f}",
            flush=True,
        )
    if times:
        n = args.prompts * args.group
        mean = sum(times) / len(times)
        print(
            f"RL step (after the first, {args.prompts}x{args.group}): {mean:.2f} s, {n / mean:.1f} samples/s; "
            f"generation {new_tokens / sample_s:,.0f} tokens/s ({sample_s / sum(times):.0%} of the step); "
            f"update MFU {flops / update_s / (args.peak_tflops * 1e12):.1%} of {args.peak_tflops:.0f} TFLOP/s"
        )
    scorer = PolicyConfidenceScorer(model.eval(), tok)
    texts = [p["answer"] for p in problems[:256]]
    qs = prompts_all[:256]
    t0 = time.perf_counter()
    scores = scorer.score(qs, texts, batch_size=128)
    sync()
    print(f"step scorer: {len(texts)} solutions, {sum(map(len, scores))} steps in {time.perf_counter() - t0:.2f} s")
    if device.type == "cuda":
        print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")


if __name__ == "__main__":
    main()
