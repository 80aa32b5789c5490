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


def cpu_autocast(model, enabled: bool):
    """bf16 autocast when ``enabled`` and ``model`` is on CPU; a no-op context otherwise."""
    on_cpu = next(model.parameters()).device.type == "cpu"
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled and on_cpu)
