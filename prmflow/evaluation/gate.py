"""The promotion gate: does the candidate policy replace the champion?

Pure decision logic. Both policies are evaluated on the same problems with the same seeds, so
the comparison is paired: per problem, the difference of the two policies' scores. The noise
margin is ``z`` standard errors of the mean paired difference (measured from the data itself);
the candidate is promoted only when it beats the champion by more than that margin, never when
it is lower, and never when a reward-hacking monitor crosses its threshold.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    candidate: float
    champion: float
    diff: float
    margin: float
    """z * standard error of the mean paired difference."""

    def to_dict(self) -> dict:
        return asdict(self)


def paired_margin(candidate: list[float], champion: list[float], z: float) -> tuple[float, float]:
    """Mean paired difference and its noise margin ``z * sd(d) / sqrt(n)``.

    With fewer than 2 problems the margin is infinite: nothing can be concluded.
    """
    if len(candidate) != len(champion):
        raise ValueError(f"paired scores differ in length: {len(candidate)} vs {len(champion)}")
    n = len(candidate)
    if n < 2:
        return (candidate[0] - champion[0] if n else 0.0), math.inf
    d = [a - b for a, b in zip(candidate, champion)]
    mean = sum(d) / n
    var = sum((x - mean) ** 2 for x in d) / (n - 1)
    return mean, z * math.sqrt(var / n)


def decide(
    candidate: list[float],
    champion: list[float] | None,
    z: float = 2.0,
    monitors: dict[str, float] | None = None,
    thresholds: dict[str, float] | None = None,
) -> Decision:
    """Promote the candidate? ``candidate``/``champion``: per-problem scores in [0, 1].

    No champion yet: the candidate becomes champion unless a monitor trips. ``monitors`` and
    ``thresholds`` share keys; a monitor above its threshold refuses promotion.
    """
    cand = sum(candidate) / len(candidate) if candidate else 0.0
    for key, limit in (thresholds or {}).items():
        value = (monitors or {}).get(key)
        if value is not None and value > limit:
            champ = sum(champion) / len(champion) if champion else float("nan")
            return Decision(False, f"monitor {key}={value:.3f} exceeds {limit:.3f}", cand, champ, cand - champ if champion else 0.0, 0.0)
    if not champion:
        return Decision(True, "no champion yet", cand, float("nan"), 0.0, 0.0)
    champ = sum(champion) / len(champion)
    diff, margin = paired_margin(candidate, champion, z)
    if diff <= 0:
        return Decision(False, f"candidate not better ({cand:.3f} vs champion {champ:.3f})", cand, champ, diff, margin)
    if diff <= margin:
        return Decision(False, f"gain {diff:+.3f} within noise margin {margin:.3f}", cand, champ, diff, margin)
    return Decision(True, f"gain {diff:+.3f} exceeds noise margin {margin:.3f}", cand, champ, diff, margin)
