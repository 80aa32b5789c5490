"""The tensors of one RL step, built from sampled token ids and per-token advantages."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Batch:
    """``(B, T)`` tensors of one RL step, B = prompts x group size, right-padded."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    completion_mask: torch.Tensor
    """1.0 on completion tokens that get a loss (EOS included), 0 on prompt and padding."""
    advantages: torch.Tensor
    """Each completion token's advantage (0 elsewhere)."""

    def to(self, device) -> Batch:
        return Batch(*(t.to(device) for t in (self.input_ids, self.attention_mask, self.completion_mask, self.advantages)))

    def rows(self, idx: torch.Tensor) -> Batch:
        return Batch(self.input_ids[idx], self.attention_mask[idx], self.completion_mask[idx], self.advantages[idx])


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
    return Batch(ids, attn, cmask, adv)
