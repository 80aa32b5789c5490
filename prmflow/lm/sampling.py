"""Batched sampling from a causal LM: one module used by label, RL, the PRM's eval chains and evaluate.

Each prompt yields ``n`` completions, grouped: completions ``i*n .. i*n+n-1`` belong to prompt i.
:func:`sample` runs the fast decode loop of :mod:`prmflow.lm.decode` (prefill shared by a
prompt's samples, a growing K/V cache, finished rows dropped: 2.4-4x HF ``generate`` on the tiny
model, greedy output token for token the same); :func:`generate_sample` is HF ``generate``, the
reference and the fallback for models the fast loop does not support.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field

import torch

from prmflow.lm.decode import decode_chunk, fast_path_unsupported
from prmflow.lm.prompts import adds_special_tokens
from prmflow.lm.static_decode import decode_chunk_static

log = logging.getLogger(__name__)


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

    @classmethod
    def from_rows(cls, prompts: list[str], n: int, rows) -> Samples:
        """Samples from ``(text, prompt_ids, completion_ids, finished)`` rows in output order."""
        out = cls(list(prompts), n)
        for text, prompt_ids, completion_ids, finished in rows:
            out.texts.append(text)
            out.prompt_ids.append(prompt_ids)
            out.completion_ids.append(completion_ids)
            out.finished.append(finished)
        return out

    @property
    def num_tokens(self) -> list[int]:
        return [len(c) for c in self.completion_ids]

    def group(self, i: int) -> list[str]:
        return self.texts[i * self.n : (i + 1) * self.n]

    def groups(self, keep: list[int]) -> Samples:
        """The samples of prompts ``keep`` (indices into :attr:`prompts`), in that order."""
        rows = [i * self.n + j for i in keep for j in range(self.n)]
        out = Samples([self.prompts[i] for i in keep], self.n)
        for name in ("texts", "prompt_ids", "completion_ids", "finished"):
            setattr(out, name, [getattr(self, name)[r] for r in rows])
        return out

    def __add__(self, other: Samples) -> Samples:
        """Both sets of groups, this one's first (same ``n``)."""
        if other.n != self.n:
            raise ValueError(f"cannot join samples of {self.n} and {other.n} per prompt")
        out = Samples(self.prompts + other.prompts, self.n)
        for name in ("texts", "prompt_ids", "completion_ids", "finished"):
            setattr(out, name, getattr(self, name) + getattr(other, name))
        return out


@torch.no_grad()
def generate_sample(
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
    """:func:`sample` with HF ``generate``: the reference, and the fallback for models the fast
    loop does not support. ``greedy`` ignores temperature/top_p.

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
        # Real models get their BOS (the tiny tokenizer adds none), unless a chat template wrote it.
        enc = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=adds_special_tokens(tokenizer, chunk))
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
    cuda_graphs: bool | None = None,
) -> Samples:
    """Sample ``n`` completions per prompt (``greedy`` ignores temperature/top_p), with the fast
    decode loop of :mod:`prmflow.lm.decode` (or :func:`generate_sample` where it does not apply).

    ``batch_size`` counts sequences (prompts x n) per batch; ``progress`` is an optional callable
    receiving the number of sequences finished after each batch. Greedy batches are those of
    :func:`generate_sample` (``batch_size`` consecutive sequences of the
    prompt-major expansion), so greedy output is identical; sampled batches group prompts of
    similar length. ``seed`` seeds torch's global RNG as there; a given seed (and the same
    arguments) reproduces the same samples, not generate's random stream.

    ``cuda_graphs`` (default: on CUDA) runs the decode steps on static shapes replayed as a CUDA
    graph (:mod:`prmflow.lm.static_decode`: 22x the Python-launched loop and 7.8x ``generate`` at
    the ~0.5B shape on an H200, 16x8 rows); a model whose step cannot be captured falls back to ``generate``,
    with a warning naming the error. ``False``: the Python-launched loop (the CPU default).
    """
    if not greedy and (temperature <= 0 or not 0 < top_p <= 1):
        raise ValueError(f"need temperature > 0 and 0 < top_p <= 1, got {temperature=} {top_p=}")
    how = dict(temperature=temperature, top_p=top_p, greedy=greedy, max_new_tokens=max_new_tokens, batch_size=batch_size)
    if fast_path_unsupported(model) is not None:
        return generate_sample(model, tokenizer, prompts, n, seed=seed, progress=progress, **how)
    if seed is not None:
        torch.manual_seed(seed)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    eos_id = tokenizer.eos_token_id
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_id
    eager_mask = model.config._attn_implementation == "eager"
    sync_every = 1 if device.type == "cpu" else 8  # a host sync stalls the GPU queue; free on CPU
    static = device.type == "cuda" if cuda_graphs is None else cuda_graphs
    order = list(range(len(prompts)))
    if not greedy and prompts:
        # Sampled rows do not depend on their batch-mates, so batch prompts of similar length
        # together: less padding to prefill and to attend over at every step (label prompts,
        # question + partial solution, are 50% padding otherwise). Greedy keeps generate's
        # batches: the same padding means the same kernels, hence identical output.
        lengths = [len(ids) for ids in tokenizer(prompts, add_special_tokens=adds_special_tokens(tokenizer, prompts))["input_ids"]]
        order.sort(key=lengths.__getitem__)
    expanded = [i for i in order for _ in range(n)]  # prompt index of each sequence, in batch order
    slot = [i * n + j for i in order for j in range(n)]  # its place in the output
    res = [None] * len(expanded)  # (text, prompt_ids, completion_ids, finished) per output place
    fallback = False
    try:
        with torch.inference_mode():
            for start in range(0, len(expanded), batch_size):
                chunk = expanded[start : start + batch_size]
                # Distinct prompts of the chunk (copies are adjacent) and, per sequence, its
                # prompt's index among them.
                gid = list(itertools.accumulate(int(k > 0 and chunk[k] != chunk[k - 1]) for k in range(len(chunk))))
                distinct = [prompts[i] for k, i in enumerate(chunk) if k == 0 or i != chunk[k - 1]]
                enc = tokenizer(distinct, return_tensors="pt", padding=True, add_special_tokens=adds_special_tokens(tokenizer, distinct))
                group = torch.tensor(gid, device=device)
                ids, mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)
                args = dict(
                    max_new_tokens=max_new_tokens,
                    eos_id=eos_id,
                    pad_id=pad_id,
                    greedy=greedy,
                    temperature=temperature,
                    top_p=top_p,
                    eager_mask=eager_mask,
                    sync_every=sync_every,
                )
                if static:
                    try:
                        new = decode_chunk_static(model, ids, mask, group, **args)  # captured on CUDA
                    except RuntimeError as e:
                        # A step that cannot be captured. On a GPU the Python-launched loop is
                        # slower than generate (benchmarks/gpu_rl_step.py: 0.4x), so generate it is.
                        log.warning("CUDA-graph decoding failed (%s); sampling with generate instead", e)
                        fallback = True
                        break
                else:
                    # Sampled rows attend to one copy of their prompt's K/V (shared_prefix);
                    # greedy rows keep the copied prefix, for generate's exact output.
                    new = decode_chunk(model, ids, mask, group, share_prefix=not greedy, **args)
                prompt_ids = [[t for t, m in zip(i, m_) if m] for i, m_ in zip(enc["input_ids"].tolist(), enc["attention_mask"].tolist())]
                for k, (row, g) in enumerate(zip(new.tolist(), gid)):
                    done = eos_id in row
                    comp = row[: row.index(eos_id) + 1] if done else row
                    res[slot[start + k]] = (tokenizer.decode(comp, skip_special_tokens=True), list(prompt_ids[g]), comp, done)
                if progress is not None:
                    progress(len(chunk))
    finally:
        if was_training:
            model.train()
    if fallback:
        return generate_sample(model, tokenizer, prompts, n, seed=seed, progress=progress, **how)
    return Samples.from_rows(prompts, n, res)
