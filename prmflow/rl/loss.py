"""Policy-gradient loss pieces: the masked mean, the k3 KL and the clipped surrogate loss.

All tensors are ``(B, T)`` aligned with ``input_ids`` unless said otherwise; ``mask`` is 1 on
the completion tokens that get a loss and 0 on prompt and padding.
"""

from __future__ import annotations

import torch

LOSS_AGGS = ("token_mean", "seq_mean_token_mean", "dr_grpo")


def loss_normaliser(completion_mask: torch.Tensor, agg: str) -> float:
    """What ``agg`` averages the token losses of these rows over: their completion tokens
    (``token_mean``), else the rows (the sequence-level aggregations). The share of a part of a
    batch (a micro-batch, a rank's rows) in the batch's loss is the ratio of the two normalisers.

    >>> loss_normaliser(torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]]), "token_mean"), loss_normaliser(torch.ones(2, 3), "dr_grpo")
    (3.0, 2.0)
    """
    return float(completion_mask.sum()) if agg == "token_mean" else float(completion_mask.shape[0])


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """``sum(x * mask) / sum(mask)`` over ``dim`` (all if None); the count is clamped to >= 1."""
    if dim is None:
        return (x * mask).sum() / mask.sum().clamp(min=1)
    return (x * mask).sum(dim) / mask.sum(dim).clamp(min=1)


def kl_k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Schulman's k3 estimate of KL(pi || ref) per token: ``exp(d) - d - 1``, ``d = ref - logp``.

    Unbiased for samples from pi, and never negative (unlike ``-d``).
    """
    d = ref_logp - logp
    return torch.exp(d) - d - 1


def clipped_policy_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    adv: torch.Tensor,
    mask: torch.Tensor,
    eps_low: float,
    eps_high: float,
    agg: str = "token_mean",
    max_len: int | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO/GRPO clipped surrogate with asymmetric clipping (DAPO's clip-higher).

    ``ratio = exp(logp - old_logp)``; per token,
    ``loss = -min(ratio * adv, clip(ratio, 1 - eps_low, 1 + eps_high) * adv)``.

    ``agg`` reduces the ``(B, T)`` token losses to a scalar:
      * ``token_mean``: mean over all masked tokens of the batch (DAPO);
      * ``seq_mean_token_mean``: mean over each sequence's tokens, then over the sequences that
        have any (original GRPO);
      * ``dr_grpo``: each sequence's token sum over the constant ``max_len``, then the mean over
        sequences (Dr. GRPO; removes the bias toward long wrong answers).

    Stats: ``clip_frac``, the fraction of masked tokens where clipping changes the loss (ratio
    outside ``[1-eps_low, 1+eps_high]`` on the side the advantage's sign points to, so the
    clipped term is strictly smaller and the token gets no gradient); ``ratio_mean`` (masked).
    """
    if agg not in LOSS_AGGS:
        raise ValueError(f"clipped_policy_loss: unknown agg {agg!r}; expected one of {LOSS_AGGS}")
    if agg == "dr_grpo" and (max_len is None or max_len <= 0):
        raise ValueError("clipped_policy_loss: agg='dr_grpo' needs max_len > 0")
    mask = mask.to(logp.dtype)
    adv = adv.detach()
    ratio = torch.exp(logp - old_logp.detach())
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1 - eps_low, 1 + eps_high) * adv
    per_token = -torch.minimum(unclipped, clipped)

    if agg == "token_mean":
        loss = masked_mean(per_token, mask)
    elif agg == "seq_mean_token_mean":
        has_tokens = (mask.sum(-1) > 0).to(per_token.dtype)
        loss = masked_mean(masked_mean(per_token, mask, dim=-1), has_tokens)
    else:
        loss = ((per_token * mask).sum(-1) / max_len).mean()

    with torch.no_grad():
        stats = {
            "clip_frac": float(masked_mean((clipped < unclipped).to(mask.dtype), mask)),
            "ratio_mean": float(masked_mean(ratio, mask)),
        }
    return loss, stats
