"""Batched sampling from a causal LM: one module used by label, RL and evaluate.

Prompts are left-padded and generated in batches with transformers ``generate`` (KV cache on).
Each prompt yields ``n`` completions, grouped: completions ``i*n .. i*n+n-1`` belong to prompt i.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Samples:
    """Completions for a list of prompts, ``n`` per prompt, in prompt-major order."""

    prompts: list[str]
    n: int
    texts: list[str] = field(default_factory=list)
    prompt_ids: list[list[int]] = field(default_factory=list)
    completion_ids: list[list[int]] = field(default_factory=list)
    """Generated token ids up to and including EOS (no padding)."""
    finished: list[bool] = field(default_factory=list)
    """Whether the completion ended with EOS before ``max_new_tokens``."""

    @property
    def num_tokens(self) -> list[int]:
        return [len(c) for c in self.completion_ids]

    def group(self, i: int) -> list[str]:
        return self.texts[i * self.n : (i + 1) * self.n]


@torch.no_grad()
def sample(
    model,
    tokenizer,
    prompts: list[str],
    n: int = 1,
    *,
    temperature: float = 1.0,
    top_p: float = 1.0,
    greedy: bool = False,
    max_new_tokens: int = 96,
    batch_size: int = 128,
    seed: int | None = None,
    progress=None,
) -> Samples:
    """Sample ``n`` completions per prompt. ``greedy`` ignores temperature/top_p.

    ``batch_size`` counts sequences (prompts x n) per ``generate`` call. ``progress`` is an
    optional callable receiving the number of sequences finished after each batch.
    """
    if seed is not None:
        torch.manual_seed(seed)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    eos_id = tokenizer.eos_token_id
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_id
    expanded = [p for p in prompts for _ in range(n)]
    out = Samples(prompts=list(prompts), n=n)
    gen_kwargs = dict(
        max_new_tokens=max_new_tokens,
        pad_token_id=pad_id,
        eos_token_id=eos_id,
        use_cache=True,
    )
    if greedy:
        gen_kwargs.update(do_sample=False)
    else:
        gen_kwargs.update(do_sample=True, temperature=temperature, top_p=top_p, top_k=0)
    for start in range(0, len(expanded), batch_size):
        chunk = expanded[start : start + batch_size]
        # add_special_tokens: real models get their BOS; the tiny tokenizer adds none.
        enc = tokenizer(chunk, return_tensors="pt", padding=True)
        enc = {k: v.to(device) for k, v in enc.items()}
        gen = model.generate(**enc, **gen_kwargs)
        prompt_len = enc["input_ids"].shape[1]
        new = gen[:, prompt_len:].tolist()
        for row, ids, mask in zip(new, enc["input_ids"].tolist(), enc["attention_mask"].tolist()):
            comp, done = [], False
            for t in row:
                comp.append(t)
                if t == eos_id:
                    done = True
                    break
            out.prompt_ids.append([t for t, m in zip(ids, mask) if m])
            out.completion_ids.append(comp)
            out.finished.append(done)
            out.texts.append(tokenizer.decode(comp, skip_special_tokens=True))
        if progress is not None:
            progress(len(chunk))
    if was_training:
        model.train()
    return out
