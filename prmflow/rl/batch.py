"""The tensors of one RL step, built from sampled token ids and per-token advantages."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from prmflow.lm.shared_prefix import rows_by_prompt
from prmflow.rl.loss import loss_normaliser


@dataclass
class Batch:
    """``(B, T)`` tensors of one RL step, B = prompts x group size, right-padded."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    completion_mask: torch.Tensor
    """1.0 on completion tokens that get a loss (EOS included), 0 on prompt and padding."""
    advantages: torch.Tensor
    """Each completion token's advantage (0 elsewhere)."""
    prompt_len: torch.Tensor
    """``(B,)`` each row's prompt length (its completion starts there)."""

    def to(self, device) -> Batch:
        return Batch(*(t.to(device) for t in (self.input_ids, self.attention_mask, self.completion_mask, self.advantages, self.prompt_len)))

    def rows(self, idx: torch.Tensor, width: int | None = None) -> Batch:
        """Rows ``idx``, cut to their first ``width`` positions (``None``: all)."""
        cut = (t[idx, :width] for t in (self.input_ids, self.attention_mask, self.completion_mask, self.advantages))
        return Batch(*cut, self.prompt_len[idx])


def build_batch(prompt_ids: list[list[int]], completion_ids: list[list[int]], token_adv: list[torch.Tensor], pad_id: int) -> Batch:
    """Right-padded ``input_ids`` (prompt + completion), ``attention_mask``, ``completion_mask``
    and ``advantages``; ``token_adv[i]`` has one value per completion token."""
    n = max(len(p) + len(c) for p, c in zip(prompt_ids, completion_ids))
    B = len(prompt_ids)
    ids = torch.full((B, n), pad_id, dtype=torch.long)
    attn = torch.zeros((B, n), dtype=torch.long)
    cmask = torch.zeros((B, n), dtype=torch.float)
    adv = torch.zeros((B, n), dtype=torch.float)
    for i, (p, c, a) in enumerate(zip(prompt_ids, completion_ids, token_adv)):
        L = len(p) + len(c)
        ids[i, :L] = torch.tensor(p + c)
        attn[i, :L] = 1
        cmask[i, len(p) : L] = 1
        adv[i, len(p) : L] = a[: len(c)]
    return Batch(ids, attn, cmask, adv, torch.tensor([len(p) for p in prompt_ids], dtype=torch.long))


def micro_batches(batch: Batch, size: int | None, agg: str, by_prompt: bool = False) -> list[tuple[torch.Tensor, int, float]]:
    """How to run ``batch`` as micro-batches of at most ``size`` rows (``None``: one): each one's
    rows, width and share of the loss normaliser, so that the share-weighted sum of the
    micro-batches' losses is the batch's loss.

    Rows are sorted by length and each micro-batch is cut to its longest row (rows are
    right-padded, so nothing of a row is lost): short completions no longer pay for the longest
    one's padding. ``by_prompt`` keeps the rows of one prompt together instead (prompts sorted by
    their longest row), for an update that runs each prompt once for all its rows
    (:func:`prmflow.lm.shared_prefix.completion_logprobs`); a prompt with more than ``size`` rows
    is split. The share is of :func:`~prmflow.rl.loss.loss_normaliser`: completion tokens under
    ``token_mean``, else rows.

    >>> b = build_batch([[1], [1], [1]], [[2, 3, 4], [2], [2, 3]], [torch.ones(3), torch.ones(1), torch.ones(2)], pad_id=0)
    >>> [(rows.tolist(), width, round(share, 3)) for rows, width, share in micro_batches(b, 2, "token_mean")]
    [([1, 2], 3, 0.5), ([0], 4, 0.5)]
    >>> [round(share, 3) for _, _, share in micro_batches(b, 2, "seq_mean_token_mean")]
    [0.667, 0.333]
    >>> b = build_batch([[1], [5, 6], [1], [5, 6]], [[2, 3, 4], [2], [2], [2]], [torch.ones(3), torch.ones(1), torch.ones(1), torch.ones(1)], 0)
    >>> [(rows.tolist(), width) for rows, width, _ in micro_batches(b, 2, "token_mean", by_prompt=True)]
    [([1, 3], 3), ([0, 2], 4)]
    """
    n, lengths = batch.input_ids.shape[0], batch.attention_mask.sum(dim=1)
    if size is None or (size >= n and not by_prompt):
        return [(torch.arange(n), batch.input_ids.shape[1], 1.0)]
    total = loss_normaliser(batch.completion_mask, agg)
    if by_prompt:
        chunks, cur = [], []
        groups = rows_by_prompt(batch.input_ids, batch.prompt_len).values()
        for rows in sorted(groups, key=lambda rs: int(lengths[rs].max())):
            for part in (rows[i : i + size] for i in range(0, len(rows), size)):
                if len(cur) + len(part) > size:
                    chunks.append(cur)
                    cur = []
                cur = cur + part
        chunks = [torch.tensor(c) for c in chunks + [cur] if c]
    else:
        chunks = list(torch.argsort(lengths, stable=True).split(size))
    out = []
    for rows in chunks:
        share = loss_normaliser(batch.completion_mask[rows], agg)
        out.append((rows, int(lengths[rows].max()), share / max(total, 1e-12)))
    return out
