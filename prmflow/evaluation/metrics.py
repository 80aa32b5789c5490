"""Pure evaluation metrics: pass@k, majority vote, length summaries, grouping by difficulty."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples of which ``c`` are correct (Chen et al., 2021).

    ``1 - C(n-c, k) / C(n, k)``; requires ``1 <= k <= n``.
    """
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def majority_vote(answers: Sequence[str | None]) -> str | None:
    """Most common non-empty answer; ties go to the answer seen first. ``None`` if none."""
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None
    best = max(counts.values())
    return next(a for a in answers if a is not None and counts[a] == best)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile, ``q`` in [0, 100] (numpy's default method)."""
    if not values:
        return float("nan")
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summarize(values: Sequence[float]) -> dict[str, float]:
    """``{"mean", "median", "p90"}`` of a list of numbers (NaN when empty)."""
    if not values:
        return {"mean": float("nan"), "median": float("nan"), "p90": float("nan")}
    return {
        "mean": sum(values) / len(values),
        "median": percentile(values, 50),
        "p90": percentile(values, 90),
    }


def group_by(keys: Iterable, values: Iterable) -> dict:
    """``{key: [values...]}`` preserving first-seen key order."""
    out: dict = defaultdict(list)
    for k, v in zip(keys, values):
        out[k].append(v)
    return dict(out)


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")
