"""Hybrid reward: a weighted sum of outcome, process and length rewards per solution."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RewardWeights:
    """Weights of the reward parts. ``process = 0`` is the outcome-only (plain GRPO) baseline."""

    outcome: float = 1.0
    process: float = 0.0
    length: float = 0.0


def mix(outcome: list[float], process: list[float] | None, length: list[float] | None, w: RewardWeights) -> list[float]:
    """``w.outcome * o + w.process * p + w.length * l`` for each solution.

    A part that is ``None`` contributes 0, but only if its weight is 0: a nonzero weight with no
    values is a wiring bug, not a silent zero. A part whose weight is 0 is ignored entirely.
    """
    n = len(outcome)
    parts = [(outcome, w.outcome, "outcome")]
    for values, weight, name in ((process, w.process, "process"), (length, w.length, "length")):
        if values is None:
            if weight != 0:
                raise ValueError(f"mix: weight {name}={weight} but no {name} rewards were given")
            continue
        if len(values) != n:
            raise ValueError(f"mix: {len(values)} {name} rewards for {n} outcome rewards")
        parts.append((values, weight, name))
    out = [0.0] * n
    for values, weight, _ in parts:
        if weight != 0:
            out = [acc + weight * float(v) for acc, v in zip(out, values)]
    return out
