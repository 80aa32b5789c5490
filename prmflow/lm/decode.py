"""The fast decode loop behind :func:`prmflow.lm.sampling.sample` (HF ``generate`` is the fallback).

HF ``generate`` (:func:`prmflow.lm.sampling.generate_sample`) is the reference. On the tiny model
its time goes to ``DynamicCache``'s ``torch.cat`` of the whole K/V cache at every step, then
matmuls and attention, and at labelling shapes to prefilling each prompt once per sample. This
module runs its own decode loop instead:

- Each distinct prompt of a batch is prefilled once. Sampled rows then attend to that one copy
  of its K/V (:mod:`prmflow.lm.shared_prefix`: read once per step for all ``n`` rows, not
  ``n`` times); greedy rows get a copy each, the layout ``generate`` computes on.
- K/V live in a buffer that grows 8 slots at a time (:class:`_KVLayer`): one in-place copy per
  token, and attention sees exactly the ``[B, H, length, D]`` shapes ``DynamicCache`` gives.
- The decode-step attention mask is a 4-D view of one ``[B, L]`` boolean tensor: transformers
  uses a 4-D mask as is, so its mask builder (``create_causal_mask``) is skipped.
- Greedy/temperature/top-p are a few tensor ops, not ``LogitsProcessor`` objects; sampling uses the
  exponential race (``argmax(p / Exp(1))`` is a draw from ``p``), which needs no host sync.
- Finished rows are dropped from the batch once they are a quarter of it, and a batch stops as
  soon as every row has finished.
- New tokens go into a ``[B, max_new_tokens]`` tensor that is read back once per batch.

Greedy output is token-for-token that of ``generate`` (same batches, same padding, same kernels
on the same shapes): tests/prmflow/lm/test_sampling.py checks it on Llama and Qwen2.

Fast path: decoder-only models whose forward takes ``cache``/``position_ids``/``logits_to_keep``,
whose layers are all full attention and whose attention is ``sdpa`` or ``eager``, with no
generation-config option that ``generate`` would turn into a logits processor (repetition
penalty, min length, bad words, min_p, ...). Anything else falls back to ``generate``:
sliding-window layers (Mistral, Gemma 2/3, Qwen2 with ``use_sliding_window``), linear-attention
or recurrent hybrids (Qwen3-Next, Mamba, Jamba), encoder-decoders, flash/flex attention.
:func:`fast_path_unsupported` says why.
"""

from __future__ import annotations

import inspect
from contextlib import nullcontext

import torch
from transformers.cache_utils import Cache, CacheLayerMixin

from prmflow.lm import shared_prefix

# generate() turns these generation-config fields into logits processors when they are set; the
# fast loop implements none of them, so a model configured with any of them takes the fallback.
_PROCESSOR_FIELDS = {
    "repetition_penalty": 1.0,
    "encoder_repetition_penalty": 1.0,
    "no_repeat_ngram_size": 0,
    "encoder_no_repeat_ngram_size": 0,
    "bad_words_ids": None,
    "suppress_tokens": None,
    "begin_suppress_tokens": None,
    "forced_bos_token_id": None,
    "forced_eos_token_id": None,
    "min_new_tokens": None,
    "sequence_bias": None,
    "exponential_decay_length_penalty": None,
    "renormalize_logits": False,
    "min_p": None,
    "typical_p": 1.0,
    "epsilon_cutoff": 0.0,
    "eta_cutoff": 0.0,
    "guidance_scale": None,
    "watermarking_config": None,
}
_SUPPORTED_ATTENTION = ("sdpa", "eager")
_GROW = 8  # K/V slots added per reallocation (see _KVLayer)


class _KVLayer(CacheLayerMixin):
    """One decoder layer's K/V: a ``[B, H, capacity, D]`` buffer, of which the filled prefix
    ``[:, :, :length]`` is what attention sees.

    Measured on CPU SDPA (decode, B=256, 120 cached tokens): attention reads the K/V cache once
    per step and is memory-bound; on a prefix *view* of a longer buffer it is 1.3-1.6x slower
    than on contiguous rows once the gap is >= 4 slots, and stock ``StaticLayer`` (whole
    ``max_cache_len`` buffer, masked) also reads the unused slots. ``DynamicCache`` keeps rows
    contiguous but copies the whole cache (``torch.cat``) every step. So this buffer grows
    ``grow`` slots at a time, up to ``max_len``: one copy every ``grow`` steps, a gap < ``grow``.
    Attention gets the same ``[B, H, length, D]`` shapes as under ``DynamicCache``, hence the
    same SDPA kernels and bit-identical greedy output.
    """

    def __init__(self, grow: int, max_len: int):
        super().__init__()
        self.grow, self.max_len = grow, max_len
        self.length = 0

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.keys, self.values = key_states[:, :, :0], value_states[:, :, :0]
        self.is_initialized = True

    def _realloc(self, rows: torch.Tensor | None, capacity: int) -> None:
        """Copy the filled prefix (of batch rows ``rows``, or all) into a ``capacity`` buffer."""
        capacity = max(min(capacity, self.max_len), self.length)  # never more than will be used
        for name in ("keys", "values"):
            old = getattr(self, name)
            src = old[:, :, : self.length] if rows is None else old[rows, :, : self.length]
            new = old.new_empty((src.shape[0], src.shape[1], capacity, src.shape[3]))
            new[:, :, : self.length] = src
            setattr(self, name, new)

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        end = self.length + key_states.shape[-2]
        if end > self.keys.shape[2]:
            self._realloc(None, end + self.grow)
        self.keys[:, :, self.length : end] = key_states  # slice copy: no index tensor per step
        self.values[:, :, self.length : end] = value_states
        self.length = end
        return self.keys[:, :, :end], self.values[:, :, :end]

    def select_rows(self, rows: torch.Tensor) -> None:
        if not self.is_initialized:  # nothing written yet (a shared-prefix loop's rows can end at the first token)
            return
        self._realloc(rows, self.length + self.grow)

    def get_seq_length(self) -> int:
        return self.length

    def get_max_length(self) -> int:
        return -1

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        # Used by create_causal_mask for the prefill (2-D mask): kv length = past + new tokens.
        return self.length + query_length, 0


class _KVCache(Cache):
    """A transformers ``Cache`` of :class:`_KVLayer` (one per decoder layer)."""

    def __init__(self, num_layers: int, grow: int, max_len: int):
        super().__init__(layers=[_KVLayer(grow, max_len) for _ in range(num_layers)])

    def select_rows(self, rows: torch.Tensor) -> None:
        """Keep batch rows ``rows`` (``[B']`` long, repeats allowed) of every layer."""
        for layer in self.layers:
            layer.select_rows(rows)


def fast_path_unsupported(model) -> str | None:
    """Why ``model`` cannot use the fast loop (``None`` when it can)."""
    config = model.config
    if getattr(config, "is_encoder_decoder", False):
        return "encoder-decoder model"
    params = inspect.signature(model.forward).parameters
    missing = [p for p in ("cache", "position_ids", "logits_to_keep", "attention_mask") if p not in params]
    if missing:
        return f"forward() lacks {missing}"
    text = config.get_text_config(decoder=True)
    layer_types = getattr(text, "layer_types", None) or ["full_attention"]
    if any(t != "full_attention" for t in layer_types):
        return f"layer types {sorted(set(layer_types))} (only full attention is supported)"
    if getattr(text, "sliding_window", None) and getattr(text, "use_sliding_window", None) is not False:
        return f"sliding-window attention (sliding_window={text.sliding_window})"
    attn = getattr(config, "_attn_implementation", None) or "eager"
    if attn not in _SUPPORTED_ATTENTION:
        return f"attention implementation {attn!r}"
    gen = getattr(model, "generation_config", None)
    for name, default in _PROCESSOR_FIELDS.items():
        value = getattr(gen, name, default) if gen is not None else default
        if value not in (default, None) and not (name == "min_new_tokens" and value == 0):
            return f"generation_config.{name}={value!r} needs a logits processor"
    if gen is not None and (getattr(gen, "min_length", 0) or 0) > 0:
        return f"generation_config.min_length={gen.min_length}"
    return None


def _top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Nucleus filter with generate's semantics (``TopPLogitsWarper``).

    logits: ``[B, V]`` float. Sorted ascending, tokens whose cumulative probability is
    ``<= 1 - top_p`` are removed; the most likely token is always kept.
    """
    sorted_logits, sorted_idx = torch.sort(logits, descending=False)
    cum = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    remove = cum <= (1 - top_p)
    remove[:, -1] = False
    return logits.masked_fill(remove.scatter(1, sorted_idx, remove), float("-inf"))


def _next_tokens(logits: torch.Tensor, greedy: bool, temperature: float, top_p: float) -> torch.Tensor:
    """Pick one token per row. logits: ``[B, V]`` (any float dtype) -> ``[B]`` long."""
    if greedy:
        return logits.argmax(dim=-1)
    logits = logits.float() / temperature
    if top_p < 1.0:
        logits = _top_p_filter(logits, top_p)
    probs = logits.softmax(dim=-1)
    # Exponential race: argmax_i p_i / E_i with E_i ~ Exp(1) is distributed as Categorical(p).
    # Unlike torch.multinomial it is elementwise ops + argmax, and never syncs on CUDA.
    return (probs / _exp1(probs)).argmax(dim=-1)


def _exp1(like: torch.Tensor) -> torch.Tensor:
    """Exp(1) draws shaped like ``like``. On CPU ``-log(U)`` of uniforms: ``exponential_``
    draws element by element there (~4x slower at ``[128, V]``, ~5% of an RL sampling step on
    the tiny model); on CUDA ``exponential_`` is one kernel."""
    if like.device.type == "cpu":
        return torch.rand_like(like).log_().neg_()
    return torch.empty_like(like).exponential_()


def _additive(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Boolean keep-mask -> additive float mask (what eager attention adds to its scores)."""
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(~mask, torch.finfo(dtype).min)


def _num_layers(model) -> int:
    return model.config.get_text_config(decoder=True).num_hidden_layers


def prefill(model, input_ids, attention_mask, group, max_new_tokens, expand: bool = True):
    """Prefill each distinct prompt of a left-padded chunk once, then copy its cache rows to its samples.

    input_ids, attention_mask: ``[U, P]``; group: ``[B]`` long, the prompt of each row. Returns
    ``(logits [B, V] of the last position, cache, attention_mask [B, P], position_ids [B, P],
    padded)``; ``padded`` is False when no prompt has padding (then no mask is passed on, as
    ``generate`` does, for the same kernels). ``expand=False`` keeps everything per prompt
    (``[U, ...]``, a cache of exactly ``P`` slots): the shared prefix of
    :mod:`prmflow.lm.shared_prefix`.
    """
    P = input_ids.shape[1]
    B = group.numel()
    cache = _KVCache(_num_layers(model), grow=_GROW, max_len=P + max_new_tokens if expand else P)
    # Positions as generate computes them: cumsum of the mask, pads at 0.
    position_ids = (attention_mask.long().cumsum(-1) - 1).masked_fill_(attention_mask == 0, 0)

    # generate drops an all-ones mask (then SDPA runs unmasked); do the same, for the same kernels.
    padded = not bool(attention_mask.all())

    # Prefill each distinct prompt once (the n samples of a prompt share it: 8x less prefill for
    # RL groups and MC rollouts), with the 2-D mask: transformers builds the causal+padding mask
    # exactly as for generate. Then copy the cache rows out to the B sequences.
    logits = model(
        input_ids=input_ids,
        attention_mask=attention_mask if padded else None,
        position_ids=position_ids,
        cache=cache,
        use_cache=True,
        logits_to_keep=1,
    ).logits[:, -1]
    if expand and B != input_ids.shape[0]:
        cache.select_rows(group)
        logits, attention_mask, position_ids = logits[group], attention_mask[group], position_ids[group]
    return logits, cache, attention_mask, position_ids, padded


def decode_chunk(
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
    sync_every,
    share_prefix: bool = False,
):
    """Generate for one left-padded chunk of ``U`` distinct prompts expanded to ``B`` rows.

    input_ids, attention_mask: ``[U, P]`` (left-padded); group: ``[B]`` long, the prompt of
    each row. Returns ``[B, T]`` long (``T <= max_new_tokens``): the new tokens, ``pad_id`` after
    a row's EOS, exactly like the tail of ``generate``'s output. ``share_prefix`` (used when
    ``B > U``): each prompt's K/V stay one copy that all its rows attend to
    (:mod:`prmflow.lm.shared_prefix`) instead of a copy per row.
    """
    device = input_ids.device
    P = input_ids.shape[1]
    B = group.numel()
    shared = share_prefix and B > input_ids.shape[0]
    logits, cache, attention_mask, position_ids, padded = prefill(
        model, input_ids, attention_mask, group, max_new_tokens, expand=not shared
    )
    if shared:
        prefix = shared_prefix.Prefix.of_cache(cache, attention_mask, group, model.dtype)
        cache = _KVCache(_num_layers(model), grow=_GROW, max_len=max_new_tokens)  # the generated tokens, per row
        logits, position_ids = logits[group], position_ids[group]
        # Every generated slot is attended (as under generate); a 4-D mask also skips transformers'
        # mask builder.
        open_mask = torch.zeros((B, 1, 1, max_new_tokens), dtype=model.dtype, device=device)
    else:
        # [B, L] keep-mask over the cache slots: the prompt's padding, then every generated slot.
        keep = torch.ones((B, P + max_new_tokens), dtype=torch.bool, device=device)
        keep[:, :P] = attention_mask.bool()
    next_pos = position_ids[:, -1:] + 1  # [B, 1]

    out = torch.full((B, max_new_tokens), pad_id, dtype=torch.long, device=device)
    rows = torch.arange(B, device=device)  # chunk row of each live batch row
    done = torch.zeros(B, dtype=torch.bool, device=device)
    steps = max_new_tokens
    with shared_prefix.attending(model) if shared else nullcontext():
        for t in range(max_new_tokens):
            tok = _next_tokens(logits, greedy, temperature, top_p)
            tok = tok.masked_fill(done, pad_id)  # finished rows not dropped yet emit pad, as in generate
            out[rows, t] = tok
            done = done | (tok == eos_id)
            if t + 1 == max_new_tokens:
                break
            if (t + 1) % sync_every == 0:
                n_done = int(done.sum())  # the one host sync; every step on CPU (free there)
                if n_done == done.numel():
                    steps = t + 1
                    break
                # Drop finished rows once they are a quarter of the batch: the copy costs about one
                # step's K/V read, and each later step then reads 25% less.
                if n_done * 4 >= done.numel():
                    live = (~done).nonzero().squeeze(1)
                    cache.select_rows(live)
                    if shared:
                        prefix.keep_rows(live)
                    else:
                        keep = keep[live]
                    rows, next_pos, tok, done = rows[live], next_pos[live], tok[live], done[live]
            if shared:
                step = dict(attention_mask=open_mask[: tok.shape[0], :, :, : t + 1], shared_prefix=prefix)
            else:
                cur = P + t + 1  # cache length after this step's token is written
                mask = keep[:, None, None, :cur] if padded else None  # [B, 1, 1, cur] view: no allocation
                if eager_mask and padded:
                    mask = _additive(mask, model.dtype)
                step = dict(attention_mask=mask)
            logits = model(input_ids=tok[:, None], position_ids=next_pos, cache=cache, use_cache=True, logits_to_keep=1, **step).logits[
                :, -1
            ]
            next_pos = next_pos + 1
    return out[:, :steps]
