"""Shared-prefix attention for the decode loop: a prompt's K/V is read once per step for all its samples.

RL groups (``n`` samples of one problem) and Monte-Carlo rollouts (``n`` completions of one
partial solution) decode many rows behind one prompt. :func:`prmflow.lm.decode.prefill` copies
the prompt's K/V to each row, so every decode step reads the same prompt K/V ``n`` times; on
CPU a decode step's attention is memory-bound (a batched gemv per row and head), and at the RL
shape (16 prompts x 8, ~55 prompt tokens, ~50 new tokens) it is half of the step.

Here the prompt's K/V stay one copy per prompt (``[U, H_kv, P, D]``) and only the generated
tokens' K/V are per row (a :class:`prmflow.lm.decode._KVCache` of ``max_new_tokens`` slots).
Each step's attention (:func:`attention`) scores a prompt's rows against its K/V in one matmul
(``[n x D] @ [D x P]`` per prompt and K/V head, so grouped-query heads share the read too),
scores each row against its own generated K/V, and takes one softmax over both score blocks: the
same sums as attending over the concatenated K/V, in another order. Sampling is unchanged in
distribution; greedy decoding keeps :func:`prmflow.lm.decode.decode_chunk`'s copied prefix, whose
output is token-for-token that of ``generate``.

The attention runs through transformers' ``AttentionInterface`` (registered as
``prmflow_shared_prefix``): :func:`attending` switches the model to it for the decode steps
only (the prefill and every other forward keep the model's own kernel), and each step passes the
:class:`Prefix` as the ``shared_prefix`` keyword, which transformers forwards to the attention
function. Rows that finish are dropped as in the copied-prefix loop (:meth:`Prefix.keep_rows`).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from transformers import AttentionInterface

NAME = "prmflow_shared_prefix"


class Prefix:
    """The prompts' K/V of one chunk, one copy per prompt, and where each live row's prompt is.

    ``slot[r]`` is row ``r``'s place in a ``[U * n_max]`` layout (prompt-major, ``n_max`` slots
    per prompt), so the rows of each prompt become the query rows of one matmul per prompt;
    slots of rows that are dropped or never existed (a prompt with fewer rows) hold zeros and
    their scores are discarded.
    """

    def __init__(self, cache, attention_mask: torch.Tensor, group: torch.Tensor, dtype: torch.dtype):
        self.kv = [(layer.keys[:, :, : layer.length], layer.values[:, :, : layer.length]) for layer in cache.layers]
        U = attention_mask.shape[0]
        # additive mask of the prompts' left padding, [U, 1, 1, P] (broadcast over heads and rows)
        self.bias = torch.zeros(attention_mask.shape, dtype=dtype, device=attention_mask.device)
        self.bias.masked_fill_(attention_mask == 0, torch.finfo(dtype).min)
        self.bias = self.bias[:, None, None, :]
        counts = torch.bincount(group, minlength=U)
        self.U, self.n = U, int(counts.max())
        first = torch.cumsum(counts, 0) - counts  # first row of each prompt (rows of a prompt are adjacent)
        self.slot = group * self.n + torch.arange(group.numel(), device=group.device) - first[group]
        self.dense = bool((counts == self.n).all())  # every slot is a row, in order

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
    """One decode step's attention over the prompt's shared K/V and the row's own K/V.

    query: ``[B, H, 1, D]``; key, value: ``[B, H_kv, t, D]`` (the generated tokens' K/V of each
    row); ``attention_mask`` is not read (generated slots are all attended, as under
    ``generate``; the prompts' padding is in ``shared_prefix.bias``). Returns
    ``([B, 1, H, D], None)``, the eager attention's layout.
    """
    if shared_prefix is None:
        raise RuntimeError(f"{NAME} attention needs the shared_prefix keyword (it is only for prmflow's decode loop)")
    pre = shared_prefix
    kp, vp = pre.kv[module.layer_idx]  # [U, H_kv, P, D]
    B, H, _, D = query.shape
    h_kv = kp.shape[1]
    g = H // h_kv  # query heads per K/V head
    U, n, P = pre.U, pre.n, kp.shape[2]
    # Prompt part: the query rows of a prompt and K/V head, [U, H_kv, g * n, D] @ [U, H_kv, D, P].
    q = pre.to_slots(query.view(B, H, D)).view(U, n, h_kv, g, D).permute(0, 2, 3, 1, 4).reshape(U, h_kv, g * n, D)
    s_pre = torch.matmul(q, kp.transpose(2, 3)) * scaling + pre.bias  # [U, H_kv, g * n, P]
    s_pre = pre.from_slots(s_pre.view(U, h_kv, g, n, P).permute(0, 3, 1, 2, 4).reshape(U * n, H, 1, P))
    # Generated part: each row against its own K/V (grouped-query heads expanded, as eager does).
    if g > 1:
        key, value = key.repeat_interleave(g, dim=1), value.repeat_interleave(g, dim=1)
    s_gen = torch.matmul(query, key.transpose(2, 3)) * scaling  # [B, H, 1, t]
    w = torch.cat([s_pre, s_gen], dim=-1).softmax(dim=-1, dtype=torch.float32).to(query.dtype)
    w_pre, w_gen = w[..., :P], w[..., P:]
    w_pre = pre.to_slots(w_pre).view(U, n, h_kv, g, P).permute(0, 2, 3, 1, 4).reshape(U, h_kv, g * n, P)
    o_pre = torch.matmul(w_pre, vp)  # [U, H_kv, g * n, D]
    o_pre = pre.from_slots(o_pre.view(U, h_kv, g, n, D).permute(0, 3, 1, 2, 4).reshape(U * n, H, 1, D))
    out = o_pre + torch.matmul(w_gen, value)  # [B, H, 1, D]
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register(NAME, attention)


@contextmanager
def attending(model):
    """The model's attention is :func:`attention` inside the block, its own kernel again after."""
    own = model.config._attn_implementation
    model.set_attn_implementation(NAME)
    try:
        yield
    finally:
        model.set_attn_implementation(own)
