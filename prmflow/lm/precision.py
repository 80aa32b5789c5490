"""How a model computes while it trains on CPU: the attention kernel and bf16 autocast.

Both are speed settings with the weights untouched: the model is saved (and sampled elsewhere)
with its own attention implementation, and autocast leaves weights, gradients and optimizer
state in fp32. GPUs keep the model's own kernel and dtype.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def attention(model, implementation: str | None) -> Iterator[None]:
    """Run the block with ``model``'s attention set to ``implementation`` (a transformers
    ``attn_implementation``: ``eager``, ``sdpa``; ``None``: unchanged), then restore its own."""
    own = model.config._attn_implementation
    if implementation and implementation != own:
        model.set_attn_implementation(implementation)
    try:
        yield
    finally:
        if model.config._attn_implementation != own:
            model.set_attn_implementation(own)


def native_cpu_bf16() -> bool:
    """Does this CPU compute bf16 in hardware (AVX512-BF16 or AMX)? Without it autocast emulates
    bf16 and is slower than fp32, not faster: a tiny-model training step (32 x 128 tokens, one
    thread) took 5.4-6.7 s under bf16 autocast vs 0.5-0.8 s in fp32 on an AVX2-only AMD EPYC."""
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))


def use_cpu_bf16(setting: bool | str) -> bool:
    """``warmstart.cpu_bf16`` / ``rl.cpu_bf16``: ``auto`` is :func:`native_cpu_bf16`; a bool is
    taken as given."""
    return native_cpu_bf16() if setting == "auto" else bool(setting)


def cpu_autocast(model, setting: bool | str):
    """bf16 autocast when ``setting`` (:func:`use_cpu_bf16`) says so and ``model`` is on CPU; a
    no-op context otherwise."""
    on_cpu = next(model.parameters()).device.type == "cpu"
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=on_cpu and use_cpu_bf16(setting))
