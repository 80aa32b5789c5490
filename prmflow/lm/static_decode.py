"""The decode loop with static shapes, replayed as a CUDA graph: the GPU path of :func:`prmflow.lm.sampling.sample`.

On a GPU, a small model's decode step is a few hundred tiny kernels, and launching them from
Python costs more than running them (the ~0.5B shape of ``benchmarks/gpu_rl_step.py``: ~24 ms
per step launched from Python, the GPU idle most of it). So on CUDA each step runs on fixed
shapes and fixed addresses, is captured as a CUDA graph once per shape, and is replayed:

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

import weakref

import torch
from transformers.cache_utils import Cache, CacheLayerMixin

from prmflow.lm.decode import _additive, _KVCache, _next_tokens, prefill


class _StaticKVLayer(CacheLayerMixin):
    """One layer's K/V in a fixed ``[B, H, L, D]`` buffer; ``update`` writes one slot at the
    device-side position ``pos`` (advanced in place, so a captured graph advances it too) and
    returns the whole buffer (the keep-mask hides unwritten slots)."""

    is_compileable = True

    def __init__(self, keys: torch.Tensor, values: torch.Tensor):
        super().__init__()
        self.keys, self.values = keys, values
        self.pos = torch.zeros(1, dtype=torch.long, device=keys.device)
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
    """A :class:`_StaticKVLayer` per decoder layer, shaped like a prefilled cache but ``capacity`` long."""

    def __init__(self, like: _KVCache, capacity: int):
        layers = []
        for layer in like.layers:
            k, v = layer.keys, layer.values
            layers.append(
                _StaticKVLayer(k.new_zeros((*k.shape[:2], capacity, k.shape[3])), v.new_zeros((*v.shape[:2], capacity, v.shape[3])))
            )
        super().__init__(layers=layers)

    def load(self, filled: _KVCache) -> None:
        """Copy a prefilled cache into the first slots; the next write goes after them."""
        for mine, theirs in zip(self.layers, filled.layers):
            n = theirs.length
            mine.keys[:, :, :n] = theirs.keys[:, :, :n]
            mine.values[:, :, :n] = theirs.values[:, :, :n]
            mine.pos.fill_(n)


class _Step:
    """The decode step on fixed buffers: one shape (rows, cache length, new tokens) and one way of
    picking tokens. :meth:`load` puts a prefilled chunk in; :meth:`run` advances one token
    (the captured graph's replay once :meth:`capture` has run). The graph reads the model's
    parameters where they are: updates in place (optimizer steps, ``load_state_dict``) are seen."""

    def __init__(self, model, cache: _KVCache, B: int, P: int, max_new_tokens: int, pick: tuple, eager_mask: bool):
        device = cache.layers[0].keys.device
        # A weak reference: the captured steps are kept per model, and must not keep it alive.
        self.model, self.pick, self.P = weakref.proxy(model), pick, P
        self.cache = _StaticKVCache(cache, P + max_new_tokens)
        self.keep = torch.zeros((B, P + max_new_tokens), dtype=torch.bool, device=device)
        self.out = torch.empty((B, max_new_tokens), dtype=torch.long, device=device)
        self.tok = torch.empty(B, dtype=torch.long, device=device)
        self.done = torch.empty(B, dtype=torch.bool, device=device)
        self.pos = torch.empty((B, 1), dtype=torch.long, device=device)
        self.slot = torch.empty(1, dtype=torch.long, device=device)  # cache slot of the step's token
        self.col = torch.empty(1, dtype=torch.long, device=device)  # out column of the step's pick
        self.eager_mask = eager_mask
        self.run = self.step

    def load(self, cache: _KVCache, logits, attention_mask, position_ids, padded: bool) -> None:
        greedy, temperature, top_p, eos_id, pad_id = self.pick
        self.cache.load(cache)
        self.keep.zero_()
        self.keep[:, : self.P] = attention_mask.bool() if padded else True
        self.out.fill_(pad_id)
        self.tok.copy_(_next_tokens(logits, greedy, temperature, top_p))
        self.out[:, 0] = self.tok
        self.done.copy_(self.tok == eos_id)
        self.pos.copy_(position_ids[:, -1:] + 1)
        self.slot.fill_(self.P)
        self.col.fill_(1)

    def step(self) -> None:
        greedy, temperature, top_p, eos_id, pad_id = self.pick
        self.keep.index_fill_(1, self.slot, True)
        mask = self.keep[:, None, None, :]
        if self.eager_mask:
            mask = _additive(mask, self.model.dtype)
        logits = self.model(
            input_ids=self.tok[:, None], attention_mask=mask, position_ids=self.pos, cache=self.cache, use_cache=True, logits_to_keep=1
        ).logits[:, -1]
        nxt = _next_tokens(logits, greedy, temperature, top_p).masked_fill(self.done, pad_id)
        self.out.index_copy_(1, self.col, nxt[:, None])
        self.done.logical_or_(nxt == eos_id)
        self.tok.copy_(nxt)
        self.pos.add_(1)
        self.slot.add_(1)
        self.col.add_(1)

    def capture(self) -> None:
        """Capture :meth:`step` as a CUDA graph (warmed up on a side stream first; the loaded
        state is put back after), so that :meth:`run` replays it."""
        state = [self.keep, self.out, self.tok, self.done, self.pos, self.slot, self.col] + [layer.pos for layer in self.cache.layers]
        saved = [t.clone() for t in state]
        device = self.keep.device
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            self.step()
        torch.cuda.current_stream(device).wait_stream(side)
        for t, s in zip(state, saved):
            t.copy_(s)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.step()
        self.run = graph.replay


# Captured steps kept for reuse, per model (dropped with it): RL samples the same shape every
# step, so it captures once. A few shapes at most; the oldest goes first.
_CAPTURED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_KEEP_CAPTURED = 4
_P_BUCKET = 16  # on the graph path prompts are left-padded to a multiple of this: fewer shapes


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

    ``graph``: capture the decode step as a CUDA graph and replay it (default: on CUDA); the
    captured step is kept and reused by later calls of the same shape (prompts left-padded to a
    multiple of 16 tokens). On CPU, ``graph=True`` keeps and reuses the buffers the same way
    without capturing (what the tests can check there). A model whose step cannot be captured raises;
    :func:`prmflow.lm.sampling.sample` then falls back to ``generate`` and says why.
    """
    device = input_ids.device
    graph = device.type == "cuda" if graph is None else graph
    if graph and input_ids.shape[1] % _P_BUCKET:
        extra = _P_BUCKET - input_ids.shape[1] % _P_BUCKET
        input_ids = torch.nn.functional.pad(input_ids, (extra, 0), value=pad_id)
        attention_mask = torch.nn.functional.pad(attention_mask, (extra, 0), value=0)
    P, B = input_ids.shape[1], group.numel()
    logits, cache, attention_mask, position_ids, padded = prefill(model, input_ids, attention_mask, group, max_new_tokens)
    pick = (greedy, float(temperature), float(top_p), eos_id, pad_id)
    key = (B, P, max_new_tokens, pick, eager_mask, model.dtype)
    steps = _CAPTURED.setdefault(model, {}) if graph else {}
    step = steps.pop(key, None)
    fresh = step is None
    if fresh:
        step = _Step(model, cache, B, P, max_new_tokens, pick, eager_mask)
    step.load(cache, logits, attention_mask, position_ids, padded)
    del cache
    if graph:
        if fresh and device.type == "cuda":
            step.capture()
        steps[key] = step  # the newest last
        while len(steps) > _KEEP_CAPTURED:
            steps.pop(next(iter(steps)))

    n = max_new_tokens
    for t in range(1, max_new_tokens):
        if t % sync_every == 0 and bool(step.done.all()):  # the one host sync
            n = t
            break
        step.run()
    return step.out[:, :n].clone()
