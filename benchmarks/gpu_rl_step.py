"""The GPU path with a ~0.5B model: sampling, GRPO updates and PRM-style scoring, timed.

    python benchmarks/gpu_rl_step.py [--steps 5] [--prompts 16] [--group 8] [--max-new-tokens 96]

No weights are downloaded: a random-init Llama of about 0.5B parameters (Qwen2.5-0.5B's shape)
over the synthetic task's word-level tokenizer, in bf16 on CUDA (fp32 on CPU). Each step is
what ``tasks/train_policy.py`` does per RL step (the same functions): group sampling with the
shared sampler, outcome rewards, GRPO advantages, one clipped-loss update. Prints parameters,
device, seconds per step, samples/s, generated tokens/s, the training-free step scorer's time
and peak GPU memory. Accuracy is meaningless here (random weights); this checks the code runs
on a GPU at a realistic size and how fast.
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
    args = ap.parse_args()

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from prmflow.lm.logprobs import sequence_logprobs
    from prmflow.lm.models import build_tokenizer, resolve_device, resolve_dtype
    from prmflow.lm.sampling import sample
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
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
    problems = generate_problems(args.prompts * args.steps, seed=1, min_steps=2, max_steps=8)
    pad = tok.pad_token_id
    times, sample_s, new_tokens = [], 0.0, 0
    for step in range(args.steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        batch = problems[step * args.prompts : (step + 1) * args.prompts]
        prompts = [p["question"] + "\n" for p in batch]
        model.eval()
        s = sample(model, tok, prompts, args.group, temperature=1.0, max_new_tokens=args.max_new_tokens, batch_size=512, seed=step)
        t_s = time.perf_counter() - t0
        answers = [p["final_answer"] for p in batch for _ in range(args.group)]
        rewards = torch.tensor(outcome_rewards(s.texts, answers))
        adv = grpo_advantages(rewards, args.group)
        token_adv = [torch.full((n,), float(a)) for a, n in zip(adv, s.num_tokens)]
        b = build_batch(s.prompt_ids, s.completion_ids, token_adv, pad).to(device)
        ids, attn, cmask, tadv = b.input_ids, b.attention_mask, b.completion_mask, b.advantages
        with torch.no_grad():
            old, _ = sequence_logprobs(model, ids, attn)
        model.train()
        logp, _ = sequence_logprobs(model, ids, attn)
        loss, stats = clipped_policy_loss(logp, old, tadv, cmask, 0.2, 0.28)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        times.append(dt)
        sample_s += t_s
        new_tokens += sum(s.num_tokens)
        print(
            f"step {step + 1}: {dt:.2f} s (sampling {t_s:.2f} s, {sum(s.num_tokens)} tokens), loss {float(loss.detach()):.4f}, "
            f"clip_frac {stats['clip_frac']:.3f}, mean logp {float(masked_mean(logp.detach(), cmask)):.2f}",
            flush=True,
        )
    warm = times[1:] or times
    n = args.prompts * args.group
    print(
        f"RL step (after the first): {sum(warm) / len(warm):.2f} s, {n / (sum(warm) / len(warm)):.1f} samples/s; "
        f"generation {new_tokens / sample_s:.0f} tokens/s"
    )
    scorer = PolicyConfidenceScorer(model.eval(), tok)
    texts = [p["answer"] for p in problems[:256]]
    qs = [p["question"] + "\n" for p in problems[:256]]
    t0 = time.perf_counter()
    scores = scorer.score(qs, texts, batch_size=128)
    if device.type == "cuda":
        torch.cuda.synchronize()
    print(f"step scorer: {len(texts)} solutions, {sum(map(len, scores))} steps in {time.perf_counter() - t0:.2f} s")
    if device.type == "cuda":
        print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")


if __name__ == "__main__":
    main()
