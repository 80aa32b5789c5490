"""Shared-prefix attention: a prompt's K/V are one copy that all its rows attend to.

RL groups (``n`` samples of one problem) and Monte-Carlo rollouts (``n`` completions of one
partial solution) are many rows behind one prompt. Two places use that:

- **Decoding** (:func:`prmflow.lm.decode.decode_chunk` with ``share_prefix``, for sampled rows):
  copied per row, the prompt's K/V are read ``n`` times at every step; on CPU a decode step's
  attention is memory-bound (a batched gemv per row and head), and at the RL shape (16 prompts
  x 8, ~55 prompt tokens, ~50 new tokens) it was half of the step.
- **The RL update** (:func:`completion_logprobs`, ``rl.shared_prompt``): a causal model's
  prompt positions do not depend on the completion, so each distinct prompt runs once (with
  gradients) and the completions attend to its K/V.

Each row's attention (:func:`attention`) scores a prompt's rows against its K/V in one matmul
(``[n x D] @ [D x P]`` per prompt and K/V head, so grouped-query heads share the read too),
scores each row against its own K/V, and takes one softmax over both score blocks: the same
sums as attending over the concatenated K/V, in another order. Greedy decoding keeps
:func:`prmflow.lm.decode.decode_chunk`'s copied prefix, whose output is token-for-token that of
``generate``.

The attention runs through transformers' ``AttentionInterface`` (registered as
``prmflow_shared_prefix``): :func:`attending` switches the model to it for the completion's
forward passes only (the prompt's and every other forward keep the model's own kernel), and
each pass gives the :class:`Prefix` as the ``shared_prefix`` keyword, which transformers
forwards to the attention function. Rows that finish decoding are dropped as in the
copied-prefix loop (:meth:`Prefix.keep_rows`).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from transformers import AttentionInterface, DynamicCache

from prmflow.lm.logprobs import entropy_from_logits, token_logprobs

NAME = "prmflow_shared_prefix"


class Prefix:
    """The prompts' K/V, one copy per prompt, and where each row's prompt is.

    ``kv``: per layer ``(keys, values)``, ``[U, H_kv, P, D]``; ``attention_mask``: ``[U, P]``
    (the prompts' left padding); ``group``: ``[B]`` long, the prompt of each row. ``slot[r]`` is
    row ``r``'s place in a ``[U * n_max]`` layout (prompt-major, ``n_max`` slots per prompt), so
    the rows of each prompt become the query rows of one matmul per prompt; slots of rows that
    are dropped or never existed (a prompt with fewer rows) hold zeros and their scores are
    discarded.
    """

    def __init__(self, kv: list[tuple[torch.Tensor, torch.Tensor]], attention_mask: torch.Tensor, group: torch.Tensor, dtype: torch.dtype):
        self.kv = kv
        U = attention_mask.shape[0]
        # additive mask of the prompts' left padding, [U, 1, 1, P] (broadcast over heads and rows)
        self.bias = torch.zeros(attention_mask.shape, dtype=dtype, device=attention_mask.device)
        self.bias.masked_fill_(attention_mask == 0, torch.finfo(dtype).min)
        self.bias = self.bias[:, None, None, :]
        counts = torch.bincount(group, minlength=U)
        self.U, self.n = U, int(counts.max())
        order = torch.sort(group, stable=True).indices  # rows prompt by prompt, in row order within one
        rank = torch.empty_like(group)
        rank[order] = torch.arange(group.numel(), device=group.device) - (torch.cumsum(counts, 0) - counts)[group[order]]
        self.slot = group * self.n + rank
        self.dense = bool((counts == self.n).all()) and bool((self.slot == torch.arange(group.numel(), device=group.device)).all())

    @classmethod
    def of_cache(cls, cache, attention_mask: torch.Tensor, group: torch.Tensor, dtype: torch.dtype) -> Prefix:
        """From a prefilled :class:`prmflow.lm.decode._KVCache` (one row per prompt)."""
        kv = [(layer.keys[:, :, : layer.length], layer.values[:, :, : layer.length]) for layer in cache.layers]
        return cls(kv, attention_mask, group, dtype)

    def keep_rows(self, rows: torch.Tensor) -> None:
        """Keep live rows ``rows`` (indices into the current rows), as the row cache does."""
        self.slot = self.slot[rows]
        self.dense = False

    def to_slots(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, ...]`` per live row -> ``[U * n, ...]`` per slot (zeros where no row is)."""
        if self.dense:
            return x
        out = x.new_zeros((self.U * self.n, *x.shape[1:]))
        out[self.slot] = x
        return out

    def from_slots(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.dense else x[self.slot]


def attention(module, query, key, value, attention_mask, scaling, dropout=0.0, shared_prefix: Prefix | None = None, **kwargs):
    """Attention of each row's new positions over its prompt's shared K/V and its own K/V.

    query: ``[B, H, C, D]`` (``C`` = 1 in the decode loop: one new token; ``C`` = the completion
    in an update); key, value: ``[B, H_kv, t, D]``, the row's own K/V (the tokens generated so
    far, or the completion); ``attention_mask``: additive, over the row's own K/V, broadcast to
    ``[B, H, C, t]`` (causal in an update; zeros in the decode loop: every generated slot is
    attended, as under ``generate``). The prompts' padding is in ``shared_prefix.bias``.
    Returns ``([B, C, H, D], None)``, the eager attention's layout. Every op has a gradient.
    """
    if shared_prefix is None:
        raise RuntimeError(f"{NAME} attention needs the shared_prefix keyword (it is only for prmflow's decode loop and update)")
    pre = shared_prefix
    kp, vp = pre.kv[module.layer_idx]  # [U, H_kv, P, D]
    B, H, C, D = query.shape
    h_kv = kp.shape[1]
    g = H // h_kv  # query heads per K/V head
    U, n, P = pre.U, pre.n, kp.shape[2]

    def grouped(x, width):  # [B, H, C, width] per row -> [U, H_kv, g * n * C, width] per prompt
        return pre.to_slots(x).view(U, n, h_kv, g, C, width).permute(0, 2, 3, 1, 4, 5).reshape(U, h_kv, g * n * C, width)

    def per_row(x, width):  # the inverse
        return pre.from_slots(x.view(U, h_kv, g, n, C, width).permute(0, 3, 1, 2, 4, 5).reshape(U * n, H, C, width))

    # Prompt part: each prompt's rows, heads sharing a K/V head and positions in one matmul.
    s_pre = per_row(torch.matmul(grouped(query, D), kp.transpose(2, 3)) * scaling + pre.bias, P)  # [B, H, C, P]
    # Own part: each row against its own K/V (grouped-query heads expanded, as eager does).
    if g > 1:
        key, value = key.repeat_interleave(g, dim=1), value.repeat_interleave(g, dim=1)
    s_own = torch.matmul(query, key.transpose(2, 3)) * scaling  # [B, H, C, t]
    if attention_mask is not None:
        s_own = s_own + attention_mask
    w = torch.cat([s_pre, s_own], dim=-1).softmax(dim=-1, dtype=torch.float32).to(query.dtype)
    out = per_row(torch.matmul(grouped(w[..., :P], P), vp), D) + torch.matmul(w[..., P:], value)  # [B, H, C, D]
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register(NAME, attention)


def rows_by_prompt(input_ids: torch.Tensor, prompt_len: torch.Tensor) -> dict[tuple[int, ...], list[int]]:
    """Each distinct prompt of right-padded prompt + completion rows (its token ids, in order of
    first appearance) and the rows that continue it."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for r, (ids, p) in enumerate(zip(input_ids.tolist(), prompt_len.tolist())):
        groups.setdefault(tuple(ids[:p]), []).append(r)
    return groups


def completion_logprobs(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, prompt_len: torch.Tensor, with_entropy: bool = False):
    """:func:`prmflow.lm.logprobs.sequence_logprobs` on the completion positions of right-padded
    prompt + completion rows, with each distinct prompt run through the model once.

    The rows of one prompt (an RL group) share its K/V, so the prompt's positions are computed
    once, not once per row: one forward over the distinct prompts (left-padded, as for
    sampling), then one over the completions whose attention reads those K/V (:func:`attention`).
    Gradients reach the prompt's positions through its K/V. input_ids, attention_mask: ``[B, T]``;
    prompt_len: ``[B]``. Returns ``(logp, entropy)``, ``[B, T]`` float32, on the completion
    positions (0 elsewhere; ``entropy`` is ``None`` unless ``with_entropy``).
    """
    device = input_ids.device
    B, T = input_ids.shape
    clen = (attention_mask.sum(dim=1) - prompt_len).tolist()
    by_prompt = rows_by_prompt(input_ids, prompt_len)
    group = torch.empty(B, dtype=torch.long, device=device)
    P, C = int(prompt_len.max()), max(max(clen), 1)
    prompts = torch.zeros((len(by_prompt), P), dtype=input_ids.dtype, device=device)  # left-padded
    prompt_mask = torch.zeros((len(by_prompt), P), dtype=attention_mask.dtype, device=device)
    for u, (key, rows) in enumerate(by_prompt.items()):
        group[rows] = u
        if key:
            prompts[u, P - len(key) :] = torch.tensor(key, dtype=input_ids.dtype)
            prompt_mask[u, P - len(key) :] = 1
    position = prompt_len[:, None] + torch.arange(C, device=device)  # [B, C] each completion token's
    valid = torch.arange(C, device=device)[None] < torch.tensor(clen, device=device)[:, None]
    at = position.clamp(max=T - 1)  # where it sits in the row (past a row's end: its padding)
    completion = input_ids.gather(1, at)  # right-padded: its padding is never attended (causal)

    cache = DynamicCache(config=model.config)
    first = model(
        input_ids=prompts,
        attention_mask=prompt_mask,
        position_ids=(prompt_mask.cumsum(-1) - 1).clamp(min=0),
        cache=cache,
        use_cache=True,
        logits_to_keep=1,
    ).logits[:, -1]  # [U, V]: the first completion token's distribution
    prefix = Prefix([(layer.keys, layer.values) for layer in cache.layers], prompt_mask, group, torch.float32)
    causal = torch.full((C, C), torch.finfo(torch.float32).min, device=device).triu(1)[None, None]
    with attending(model):
        rest = model(input_ids=completion, attention_mask=causal, position_ids=position, shared_prefix=prefix, use_cache=False).logits[
            :, :-1
        ]
    logits = torch.cat([first[group][:, None], rest], dim=1)  # [B, C, V], row t predicts completion token t

    def place(x):  # [B, C] on the completion -> [B, T] on the rows' positions
        return torch.zeros((B, T), dtype=x.dtype, device=device).scatter_add(1, at, x.masked_fill(~valid, 0.0))

    logp = place(token_logprobs(logits, completion))
    return logp, (place(entropy_from_logits(logits)) if with_entropy else None)


@contextmanager
def attending(model):
    """The model's attention is :func:`attention` inside the block, its own kernel again after."""
    own = model.config._attn_implementation
    model.set_attn_implementation(NAME)
    try:
        yield
    finally:
        model.set_attn_implementation(own)
