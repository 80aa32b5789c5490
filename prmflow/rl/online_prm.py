"""The learned PRM, updated online on the policy's own samples during RL (``rl.prm_online_lr``, PRIME-style).

PRIME (Cui et al. 2025) keeps its process reward model on-policy by training it at every RL step
on that step's rollouts, with only their outcome labels, before it scores them. Here the PRM
(:class:`prmflow.prm.scorers.PRMScorer`) keeps its frozen backbone, and its head takes
``updates`` Adam steps per RL step: every step end of a completion gets the completion's
outcome (1 right, 0 wrong) as its target, the loss the head was trained with (factored BCE for
the factored head: "the policy reaches the answer from here", whose correctness factor is the
score). The updated head lives for the run: ``models/prm`` is not changed, and a resumed run
starts the head again from it (the policy's checkpoint does not hold the head).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from prmflow.prm.scorers import PRMScorer
from reward.parse import split_steps


class OnlinePRM:
    """A :class:`PRMScorer` whose head learns from outcome labels between scoring calls."""

    def __init__(self, scorer: PRMScorer, learning_rate: float, updates: int = 1):
        if learning_rate <= 0 or updates < 1:
            raise ValueError(f"online PRM: need learning_rate > 0 and updates >= 1, got {learning_rate=} {updates=}")
        self.scorer, self.updates = scorer, updates
        params = scorer.model.head_parameters()
        for p in scorer.model.backbone.parameters():
            p.requires_grad_(False)
        for p in params:
            p.requires_grad_(True)
        self.optimizer = torch.optim.Adam(params, lr=learning_rate)
        self.last_stats: dict[str, float] = {}

    def score(self, prompts, solutions, batch_size: int = 64, finished=None) -> list[list[float]]:
        return self.scorer.score(prompts, solutions, batch_size, finished)

    def update(
        self, prompts: Sequence[str], solutions: Sequence[str], right: Sequence[bool], finished: Sequence[bool] | None = None
    ) -> None:
        """``updates`` head steps on these completions: each step end's target is ``right[i]``."""
        sc = self.scorer
        finished = [True] * len(solutions) if finished is None else finished
        encoded = sc.encode(prompts, [split_steps(s, sc.step_split, f) for s, f in zip(solutions, finished)])
        keep = [i for i, e in enumerate(encoded) if e.ends]
        if not keep:
            self.last_stats = {"prm_online/loss": 0.0, "prm_online/step_ends": 0.0}
            return
        ids, mask, plens, ends = sc.batch([encoded[i] for i in keep])
        labels = torch.full(ids.shape, -100.0, device=ids.device)
        for row, i in enumerate(keep):
            labels[row, ends[row]] = float(right[i])
        losses = []  # the model stays in eval mode: no dropout in the frozen backbone's features
        for _ in range(self.updates):
            loss = sc.model(ids, mask, plens, labels=labels)["loss"]
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            losses.append(float(loss.detach()))
        self.last_stats = {"prm_online/loss": losses[0], "prm_online/step_ends": float((labels != -100).sum())}
