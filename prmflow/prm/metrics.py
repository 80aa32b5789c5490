"""How good a PRM is: pure functions over per-step scores and labels.

``scores[i][k]`` is a scorer's value for step ``k`` of solution ``i`` (higher = more likely still
right); ``labels[i][k]`` is the truth (``True`` = the solution is still right through step ``k``).

- step level: ROC AUC (:func:`prmflow.labeling.estimators.good_auc`) and, at a threshold, the bad-step
  precision/recall/F1 of :func:`prmflow.labeling.estimators.label_agreement`;
- ProcessBench-style first error (Zheng et al., 2024): the predicted first error is the first
  step scored below the threshold; :func:`first_error_f1` is the harmonic mean of the accuracy
  on erroneous solutions (exact index) and on fully correct ones (no error predicted);
- best-of-N reranking: pick one of N sampled solutions by an aggregate of its step scores,
  against majority vote and a random pick (:func:`best_of_n`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from prmflow.evaluation.metrics import majority_vote
from prmflow.labeling.estimators import first_false, good_auc, label_agreement
from reward.outcome import Verdict, same_answer
from reward.process import aggregate

AGGREGATES = ("min", "product", "last")
"""Best-of-N selection rules (:func:`reward.process.aggregate`, the scores RL uses too)."""


def step_metrics(scores: Sequence[Sequence[float]], labels: Sequence[Sequence[bool]], threshold: float = 0.5) -> dict[str, float]:
    """``auc`` (``None`` when one class is absent) and, with steps predicted right when
    ``score >= threshold``, ``step_agreement``, ``bad_precision``, ``bad_recall``, ``bad_f1``.

    >>> m = step_metrics([[0.9, 0.2], [0.6]], [[True, False], [False]])
    >>> m["auc"], m["bad_precision"], m["bad_recall"]
    (1.0, 1.0, 0.5)
    """
    pred = [[s >= threshold for s in ss] for ss in scores]
    agree = label_agreement(pred, labels)
    out = {"auc": good_auc(scores, labels)}
    for k in ("step_agreement", "bad_precision", "bad_recall", "bad_f1"):
        if k in agree:
            out[k] = agree[k]
    return out


def predicted_first_error(scores: Sequence[float], threshold: float = 0.5) -> int | None:
    """Index of the first step scored below ``threshold``; ``None`` when there is none.

    >>> predicted_first_error([0.9, 0.4, 0.8]), predicted_first_error([0.9])
    (1, None)
    """
    return first_false([s >= threshold for s in scores])


def first_error_f1(scores: Sequence[Sequence[float]], labels: Sequence[Sequence[bool]], threshold: float = 0.5) -> dict[str, float]:
    """ProcessBench's metric over solutions.

    A solution is *erroneous* when some step label is ``False`` (its first error is the first
    such step) and *correct* otherwise. ``acc_erroneous``: fraction of erroneous solutions whose
    predicted first error is exactly the true one; ``acc_correct``: fraction of correct ones with
    no error predicted; ``f1``: their harmonic mean (0 when either is 0). An empty class has
    accuracy ``nan`` and makes ``f1`` the other class's accuracy (nothing to weigh against).

    >>> m = first_error_f1([[0.9, 0.1], [0.8, 0.7], [0.2, 0.1]], [[True, False], [True, True], [True, False]])
    >>> m["acc_erroneous"], m["acc_correct"], round(m["f1"], 4)
    (0.5, 1.0, 0.6667)
    """
    if len(scores) != len(labels):
        raise ValueError(f"{len(scores)} scored solutions vs {len(labels)} labelled solutions")
    err_hits = n_err = ok_hits = n_ok = 0
    for i, (s, y) in enumerate(zip(scores, labels)):
        if len(s) != len(y):
            raise ValueError(f"solution {i}: {len(s)} scores vs {len(y)} labels")
        truth, pred = first_false(y), predicted_first_error(s, threshold)
        if truth is None:
            n_ok += 1
            ok_hits += pred is None
        else:
            n_err += 1
            err_hits += pred == truth
    acc_err = err_hits / n_err if n_err else math.nan
    acc_ok = ok_hits / n_ok if n_ok else math.nan
    if not n_err or not n_ok:
        f1 = acc_ok if not n_err else acc_err
    else:
        f1 = 2 * acc_err * acc_ok / (acc_err + acc_ok) if acc_err + acc_ok else 0.0
    return {"acc_erroneous": acc_err, "acc_correct": acc_ok, "f1": f1, "num_erroneous": n_err, "num_correct": n_ok}


def best_threshold(scores: Sequence[Sequence[float]], labels: Sequence[Sequence[bool]], grid: Sequence[float] | None = None) -> float:
    """The threshold in ``grid`` (default 0.01, 0.02, ..., 0.99) with the highest first-error F1;
    the one closest to 0.5 among ties. Choose it on data the final numbers are not computed on.

    >>> best_threshold([[0.3, 0.05], [0.4, 0.35]], [[True, False], [True, True]])
    0.3
    """
    grid = list(grid) if grid is not None else [i / 100 for i in range(1, 100)]
    if not grid:
        raise ValueError("empty threshold grid")

    def key(t: float) -> tuple[float, float]:
        f1 = first_error_f1(scores, labels, t)["f1"]
        return (-1.0 if math.isnan(f1) else f1, -abs(t - 0.5))

    return max(grid, key=key)


def best_of_n(
    scores: Sequence[Sequence[Sequence[float]]], answers: Sequence[Sequence[str | None]], targets: Sequence[str | None]
) -> dict[str, float]:
    """Accuracy of picking one of N solutions per problem, by several rules.

    ``scores[i][j]`` are the step scores of solution ``j`` of problem ``i``, ``answers[i][j]`` its
    extracted final answer and ``targets[i]`` the reference answer (normalised by
    :func:`reward.parse.reference_answer`), compared by :func:`reward.outcome.same_answer`. Keys:

    - ``prm_min`` / ``prm_product`` / ``prm_last``: pick the solution with the highest
      aggregate (the first among ties);
    - ``majority``: the most common answer (:func:`prmflow.evaluation.metrics.majority_vote`);
    - ``random``: the expected accuracy of a uniform pick, the mean correctness of the samples;
    - ``oracle``: whether any sample is right (pass@N, the ceiling of any reranker);
    - ``num_problems``.

    >>> r = best_of_n([[[0.9], [0.2], [0.1]]], [["5", "7", "7"]], ["5"])
    >>> r["prm_min"], r["majority"], round(r["random"], 4), r["oracle"]
    (1.0, 0.0, 0.3333, 1.0)
    """
    if not len(scores) == len(answers) == len(targets):
        raise ValueError(f"{len(scores)} score groups, {len(answers)} answer groups, {len(targets)} targets")
    hits = {f"prm_{a}": 0.0 for a in AGGREGATES} | {"majority": 0.0, "random": 0.0, "oracle": 0.0}
    for i, (group, ans, target) in enumerate(zip(scores, answers, targets)):
        if len(group) != len(ans) or not ans:
            raise ValueError(f"problem {i}: {len(group)} scored solutions vs {len(ans)} answers")
        right = [same_answer(a, target) is Verdict.CORRECT for a in ans]
        for how in AGGREGATES:
            agg = [aggregate(s, how) for s in group]
            hits[f"prm_{how}"] += right[max(range(len(agg)), key=lambda j: (agg[j], -j))]
        mv = majority_vote(ans)
        hits["majority"] += same_answer(mv, target) is Verdict.CORRECT
        hits["random"] += sum(right) / len(right)
        hits["oracle"] += any(right)
    n = len(targets)
    out = {k: v / n if n else math.nan for k, v in hits.items()}
    out["num_problems"] = n
    return out


def roc_curve(scores: Sequence[Sequence[float]], labels: Sequence[Sequence[bool]]) -> list[tuple[float, float]]:
    """ROC points ``(false positive rate, true positive rate)`` for "step is good", from
    ``(0, 0)`` to ``(1, 1)``, one point per distinct score (descending thresholds).

    >>> roc_curve([[0.9, 0.2], [0.5]], [[True, False], [False]])
    [(0.0, 0.0), (0.0, 1.0), (0.5, 1.0), (1.0, 1.0)]
    """
    flat = sorted(
        ((float(s), bool(y)) for ss, yy in zip(scores, labels, strict=True) for s, y in zip(ss, yy, strict=True)), key=lambda x: -x[0]
    )
    n_pos = sum(y for _, y in flat)
    n_neg = len(flat) - n_pos
    pts, tp, fp, i = [(0.0, 0.0)], 0, 0, 0
    while i < len(flat):
        j = i
        while j < len(flat) and flat[j][0] == flat[i][0]:
            tp += flat[j][1]
            fp += not flat[j][1]
            j += 1
        pts.append((fp / n_neg if n_neg else 0.0, tp / n_pos if n_pos else 0.0))
        i = j
    return pts


def reliability(
    scores: Sequence[Sequence[float]], labels: Sequence[Sequence[bool]], bins: int = 10
) -> list[tuple[float, float | None, int]]:
    """Calibration curve of step scores: steps binned by score (``bins`` equal bins of [0, 1],
    the last one closed); per bin ``(center, fraction of its steps that are good, count)``,
    the fraction ``None`` for an empty bin. A calibrated scorer's points lie on ``y = x``.

    >>> reliability([[0.05, 0.95], [0.07, 1.0]], [[False, True], [True, True]], bins=2)
    [(0.25, 0.5, 2), (0.75, 1.0, 2)]
    """
    good, count = [0] * bins, [0] * bins
    for ss, yy in zip(scores, labels, strict=True):
        for s, y in zip(ss, yy, strict=True):
            b = min(int(float(s) * bins), bins - 1)
            good[b] += bool(y)
            count[b] += 1
    return [((b + 0.5) / bins, good[b] / count[b] if count[b] else None, count[b]) for b in range(bins)]
