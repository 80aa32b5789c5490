"""Process reward: one number per solution from its PRM step scores.

``step_scores[i]`` holds the PRM's probability that each reasoning step of solution ``i`` is
correct (one float per step, in the order of :func:`reward.parse.split_steps`).
"""

from __future__ import annotations

import math

from reward.registry import REWARDS

AGGREGATIONS = ("min", "mean", "last", "product")


def aggregate(step_scores: list[float], agg: str = "min") -> float:
    """Score of one solution from its step scores.

    ``min``: the weakest step (a chain is as good as its worst step; the usual PRM verdict).
    ``mean``, ``last`` and ``product`` (probability that every step is right, if independent).

    A solution with no steps scores 0.0: there is no process evidence for it, and it must not
    beat a solution that shows its work (``min``/``product`` of nothing would otherwise be
    +inf/1.0), or the policy would learn to skip the reasoning.
    """
    if agg not in AGGREGATIONS:
        raise ValueError(f"unknown process aggregation {agg!r}; expected one of {AGGREGATIONS}")
    if not step_scores:
        return 0.0
    if agg == "min":
        return float(min(step_scores))
    if agg == "mean":
        return float(sum(step_scores) / len(step_scores))
    if agg == "last":
        return float(step_scores[-1])
    return float(math.prod(step_scores))


def process_rewards(step_scores: list[list[float]], agg: str = "min") -> list[float]:
    """:func:`aggregate` applied to each solution; one float per solution."""
    if agg not in AGGREGATIONS:
        raise ValueError(f"unknown process aggregation {agg!r}; expected one of {AGGREGATIONS}")
    return [aggregate(s, agg) for s in step_scores]


@REWARDS.register("process")
def process_reward(completions: list[str], step_scores: list[list[float]] | None, process_agg: str = "min", **kwargs) -> list[float]:
    """The process term of the hybrid reward in ``sequence`` mode: :func:`process_rewards` of
    the PRM's step scores. (In step modes the scores enter as step-level advantages instead,
    :func:`reward.hybrid.token_advantages`.)"""
    if step_scores is None:
        raise ValueError("process reward: no step scores (rl.weights.process > 0 needs a PRM)")
    if len(step_scores) != len(completions):
        raise ValueError(f"process reward: {len(step_scores)} step-score lists for {len(completions)} completions")
    return process_rewards(step_scores, process_agg)
