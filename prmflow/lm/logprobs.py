"""Token log-probabilities and entropies of a causal LM: the one home for both, used by the RL
loss (``prmflow.rl``) and the PRM's confidence features (``prmflow.prm``).

Shapes: ``logits`` ``(B, T, V)``, ids ``(B, T)``; results ``(B, T)`` float32.
"""

from __future__ import annotations

import torch


def token_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``log p(labels)`` ``(B, T)`` float32 from ``logits`` ``(B, T, V)`` and ``labels`` ``(B, T)``."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return logp.gather(-1, labels.unsqueeze(-1)).squeeze(-1)


def aligned_logprobs(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """``log p(x_t | x_<t)`` for every position of ``input_ids`` ``(B, T)``; position 0 gets 0.

    ``logits`` are the model's outputs on ``input_ids`` (row t predicts token t+1).
    """
    return torch.nn.functional.pad(token_logprobs(logits[:, :-1], input_ids[:, 1:]), (1, 0))


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of each next-token distribution: ``(B, T)`` from ``(B, T, V)``."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


def sequence_logprobs(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, with_entropy: bool = False):
    """``(logp, entropy)`` of ``model`` on ``input_ids``, both ``(B, T)`` aligned with the ids
    (0 at t=0); ``entropy`` is ``None`` unless ``with_entropy``."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
    logp = aligned_logprobs(logits, input_ids)
    if not with_entropy:
        return logp, None
    return logp, torch.nn.functional.pad(entropy_from_logits(logits[:, :-1]), (1, 0))
