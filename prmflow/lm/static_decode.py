"""The decode loop with static shapes, replayed as a CUDA graph: the GPU path of :func:`prmflow.lm.sampling.sample`.

On a GPU, a small model's decode step is a few hundred tiny kernels, and launching them from
Python costs more than running them (the ~0.5B shape of ``benchmarks/gpu_rl_step.py``: ~24 ms
per step launched from Python, the GPU idle most of it). So on CUDA each step runs on fixed
shapes and fixed addresses, is captured once per chunk as a CUDA graph, and is replayed:

- Prefill is :func:`prmflow.lm.decode.decode_chunk`'s (each distinct prompt once, then its
  rows copied to its samples); the cache is then copied into a ``[B, H, P + max_new_tokens, D]``
  buffer per layer (:class:`_StaticKVLayer`), written in place at a device-side position.
- Attention reads the whole buffer under a ``[B, 1, 1, L]`` keep-mask whose next slot is opened
  on the device, so every step has the same shapes; rows are never dropped (the batch is fixed).
- Token choice (greedy, temperature, top-p) is :mod:`prmflow.lm.decode`'s, inside the graph; the
  exponential race needs no host sync, and CUDA graphs replay torch's RNG with fresh offsets.
- The host reads ``done`` once every ``sync_every`` steps, to stop when every row has finished.

The same loop runs eagerly (``graph=False``) on any device: tests check on CPU that it gives
:func:`prmflow.lm.decode.decode_chunk`'s greedy tokens. Attention over the padded buffer sums in
another order than over the exact length, so on a GPU its greedy output can differ from
``generate``'s where two logits are within rounding (bf16); sampled output is a draw from the
same distribution.
"""

from __future__ import annotations

import torch
from transformers.cache_utils import Cache, CacheLayerMixin

from prmflow.lm.decode import _KVCache, _next_tokens, prefill


class _StaticKVLayer(CacheLayerMixin):
    """One layer's K/V in a fixed ``[B, H, L, D]`` buffer; ``update`` writes one slot at the
    device-side position ``pos`` (advanced in place, so a captured graph advances it too) and
    returns the whole buffer (the keep-mask hides unwritten slots)."""

    is_compileable = True

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, length: int):
        super().__init__()
        self.keys, self.values = keys, values
        self.pos = torch.tensor([length], dtype=torch.long, device=keys.device)
        self.is_initialized = True

    def lazy_initialization(self, key_states, value_states) -> None:  # buffers exist from the start
        pass

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        self.keys.index_copy_(2, self.pos, key_states)
        self.values.index_copy_(2, self.pos, value_states)
        self.pos.add_(1)
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.keys.shape[2]

    def get_max_length(self) -> int:
        return self.keys.shape[2]

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.keys.shape[2], 0


class _StaticKVCache(Cache):
    """The static cache of every layer, filled from a prefilled :class:`prmflow.lm.decode._KVCache`."""

    def __init__(self, filled: _KVCache, capacity: int):
        layers = []
        for layer in filled.layers:
            n = layer.length
            keys = layer.keys.new_zeros((*layer.keys.shape[:2], capacity, layer.keys.shape[3]))
            values = layer.values.new_zeros((*layer.values.shape[:2], capacity, layer.values.shape[3]))
            keys[:, :, :n], values[:, :, :n] = layer.keys[:, :, :n], layer.values[:, :, :n]
            layers.append(_StaticKVLayer(keys, values, n))
        super().__init__(layers=layers)

    def positions(self) -> list[torch.Tensor]:
        return [layer.pos for layer in self.layers]


def decode_chunk_static(
    model,
    input_ids,
    attention_mask,
    group,
    *,
    max_new_tokens,
    eos_id,
    pad_id,
    greedy,
    temperature,
    top_p,
    eager_mask,
    sync_every=8,
    graph=None,
):
    """:func:`prmflow.lm.decode.decode_chunk` on static shapes (same arguments and result).

    ``graph``: capture the decode step as a CUDA graph and replay it (default: on CUDA). A model
    whose step cannot be captured raises; :func:`prmflow.lm.sampling.sample` then falls back to
    ``generate`` and says why.
    """
    device = input_ids.device
    graph = device.type == "cuda" if graph is None else graph
    P = input_ids.shape[1]
    B = group.numel()
    L = P + max_new_tokens
    logits, cache, attention_mask, position_ids, padded = prefill(model, input_ids, attention_mask, group, max_new_tokens)
    static = _StaticKVCache(cache, L)
    del cache

    # The state the step reads and advances in place: fixed addresses for the graph.
    keep = torch.zeros((B, L), dtype=torch.bool, device=device)
    keep[:, :P] = attention_mask.bool() if padded else True
    out = torch.full((B, max_new_tokens), pad_id, dtype=torch.long, device=device)
    tok = _next_tokens(logits, greedy, temperature, top_p)
    out[:, 0] = tok
    done = tok == eos_id
    pos = position_ids[:, -1:] + 1  # [B, 1]
    slot = torch.tensor([P], dtype=torch.long, device=device)  # cache slot of the step's token
    col = torch.tensor([1], dtype=torch.long, device=device)  # out column of the step's pick
    additive = torch.zeros((B, L), dtype=model.dtype, device=device) if eager_mask else None

    def step() -> None:
        keep.index_fill_(1, slot, True)
        mask = keep[:, None, None, :]
        if additive is not None:
            mask = additive.masked_fill(~keep, torch.finfo(model.dtype).min)[:, None, None, :]
        step_logits = model(
            input_ids=tok[:, None], attention_mask=mask, position_ids=pos, cache=static, use_cache=True, logits_to_keep=1
        ).logits[:, -1]
        nxt = _next_tokens(step_logits, greedy, temperature, top_p).masked_fill(done, pad_id)
        out.index_copy_(1, col, nxt[:, None])
        done.logical_or_(nxt == eos_id)
        tok.copy_(nxt)
        pos.add_(1)
        slot.add_(1)
        col.add_(1)

    run = step
    if graph and max_new_tokens > 1:
        # Warm up on a side stream (lazy inits, kernel choice), put the state back, then capture.
        state = [keep, out, tok, done, pos, slot, col, *static.positions()]
        saved = [t.clone() for t in state]
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            step()
        torch.cuda.current_stream(device).wait_stream(side)
        for t, s in zip(state, saved):
            t.copy_(s)
        cuda_graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(cuda_graph):
            step()
        run = cuda_graph.replay

    steps = max_new_tokens
    for t in range(1, max_new_tokens):
        if t % sync_every == 0 and bool(done.all()):  # the one host sync
            steps = t
            break
        run()
    return out[:, :steps]
