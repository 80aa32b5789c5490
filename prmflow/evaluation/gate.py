"""The promotion gate: does the candidate policy replace the champion?

Pure decision logic. Both policies are evaluated on the same problems with the same seeds, so
the comparison is paired: per problem, the difference of the two policies' scores. The noise
margin is ``z`` standard errors of the mean paired difference (measured from the data itself);
the candidate is promoted only when it beats the champion by more than that margin, never when
it is lower, and never when a reward-hacking monitor crosses its threshold.

Every monitor is accounted for in the decision (:class:`MonitorCheck`): ``checked`` (its value
is at most its threshold), ``tripped`` (above it: promotion refused) or ``skipped`` with the
reason (no value, e.g. no PRM to compute it; or no threshold set), so that a monitor that could
not be computed never reads as one that passed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class MonitorCheck:
    """What the gate did with one monitor: ``status`` is ``checked``, ``tripped`` or ``skipped``;
    ``note`` says why a monitor was skipped (empty otherwise)."""

    name: str
    status: str
    value: float | None
    threshold: float | None
    note: str = ""

    def text(self) -> str:
        """``step_inflation 1.200 <= 1.500``, ``... 2.000 > 1.500`` or ``... skipped (no PRM)``."""
        if self.status == "skipped":
            return f"{self.name} skipped ({self.note})"
        return f"{self.name} {self.value:.3f} {'>' if self.status == 'tripped' else '<='} {self.threshold:.3f}"


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    candidate: float
    champion: float
    diff: float
    margin: float
    """z * standard error of the mean paired difference."""
    monitors: tuple[MonitorCheck, ...] = ()
    """Every monitor (with a threshold or a value), in the thresholds' order then the others'."""

    def to_dict(self) -> dict:
        return {**asdict(self), "monitors": [asdict(c) for c in self.monitors]}


def check_monitors(
    monitors: Mapping[str, float], thresholds: Mapping[str, float], skipped: Mapping[str, str] | None = None
) -> tuple[MonitorCheck, ...]:
    """One :class:`MonitorCheck` per key of ``thresholds`` or ``monitors``.

    A missing or nan value is ``skipped`` with ``skipped[key]`` as the note (``"no value"`` when
    the caller gave none): nan compares false with any threshold, so it would otherwise pass.
    """
    checks = []
    for key in list(thresholds) + [k for k in monitors if k not in thresholds]:
        value, limit = monitors.get(key), thresholds.get(key)
        if value is None or math.isnan(value):
            checks.append(MonitorCheck(key, "skipped", None, limit, (skipped or {}).get(key, "no value")))
        elif limit is None:
            checks.append(MonitorCheck(key, "skipped", value, None, "no threshold: reported only"))
        else:
            checks.append(MonitorCheck(key, "tripped" if value > limit else "checked", value, limit))
    return tuple(checks)


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
    skipped: dict[str, str] | None = None,
) -> Decision:
    """Promote the candidate? ``candidate``/``champion``: per-problem scores in [0, 1].

    No champion yet: the candidate becomes champion unless a monitor trips. ``monitors`` and
    ``thresholds`` share keys; a monitor above its threshold refuses promotion; ``skipped``
    says why a monitor has no value (e.g. ``"no PRM"``). The reason ends with every monitor's
    check (:func:`check_monitors`).
    """
    checks = check_monitors(monitors or {}, thresholds or {}, skipped)
    listed = "; monitors: " + ", ".join(c.text() for c in checks) if checks else ""
    cand = sum(candidate) / len(candidate) if candidate else 0.0
    champ = sum(champion) / len(champion) if champion else math.nan
    tripped = [c for c in checks if c.status == "tripped"]
    if tripped:
        reason = "monitor tripped: " + ", ".join(c.text() for c in tripped) + listed
        return Decision(False, reason, cand, champ, cand - champ if champion else 0.0, 0.0, checks)
    if not champion:
        return Decision(True, "no champion yet" + listed, cand, champ, 0.0, 0.0, checks)
    diff, margin = paired_margin(candidate, champion, z)
    if diff <= 0:
        reason = f"candidate not better ({cand:.3f} vs champion {champ:.3f})"
    elif diff <= margin:
        reason = f"gain {diff:+.3f} within noise margin {margin:.3f}"
    else:
        reason = f"gain {diff:+.3f} exceeds noise margin {margin:.3f}"
    return Decision(diff > margin and diff > 0, reason + listed, cand, champ, diff, margin, checks)
