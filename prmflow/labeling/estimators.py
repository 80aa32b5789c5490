"""Automatic step labels from rollouts, and their quality against an oracle: pure functions.

Vocabulary. A solution has steps ``s_0 .. s_{n-1}`` (then a final answer line). The *prefix* of
step ``k`` is ``s_0 .. s_k``. A prefix is *good* when the policy can still reach the reference
answer from it; the label of step ``k`` is whether its prefix is good (Math-Shepherd's
definition, and what :func:`prmflow.problems.synthetic.oracle_step_labels` computes exactly for the
synthetic task). A *rollout* is one sampled completion of a prefix; its *outcome* is whether it
reached the reference final answer.

Two estimators:

- **Monte-Carlo** (Math-Shepherd, Wang et al. 2024): roll out every prefix ``R`` times.
  :func:`mc_soft` is the success fraction, :func:`mc_hard` is "any rollout succeeded". Cost
  ``R`` rollouts per step.
- **First-error search** (OmegaPRM-like, Luo et al. 2024): assume monotonicity (once a prefix is
  bad, every longer one is bad) and search for the first bad prefix, galloping from step 0 then
  bisecting, probing ``O(log2 n)`` prefixes instead of all ``n``. See :func:`first_error_search`. A probe's verdict
  is MC's hard criterion (any of ``R`` rollouts succeeded), drawn in waves that stop at the
  first success (:func:`probe_waves`, :func:`probe_verdict`): the same verdict for fewer rollouts.

Adaptive rollouts (``label.max_rollouts``): a "bad" verdict from ``R`` failed rollouts is the
uncertain one (a right prefix from which the completer succeeds with probability ``p`` reads bad
with probability ``(1 - p) ** R``; one success shows it can still reach the answer), so a prefix whose ``R``
rollouts all failed draws more, doubling, up to ``max_rollouts`` (:func:`more_rollouts`).

One shortcut for every method: a solution whose own final answer is right proves every one of
its prefixes good (the solution is a continuation that reaches the answer from each), so all its
steps are labelled good (soft 1.0) without a rollout (:func:`known_good`).

No model code here: the stage turns rollouts into the ``outcomes``/``prefix_ok`` these take.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


def mc_soft(outcomes: Sequence[Sequence[bool]]) -> list[float]:
    """Soft Math-Shepherd labels: per step, the fraction of its prefix's rollouts that succeeded.

    ``outcomes[k]`` holds the outcomes of the rollouts of prefix ``k`` (any count >= 1).

    >>> mc_soft([[True, True, False, False], [False, False, False, True], [False] * 4])
    [0.5, 0.25, 0.0]
    """
    out = []
    for k, o in enumerate(outcomes):
        if len(o) == 0:
            raise ValueError(f"step {k}: no rollout outcomes")
        out.append(sum(bool(x) for x in o) / len(o))
    return out


def mc_hard(outcomes: Sequence[Sequence[bool]]) -> list[bool]:
    """Hard Math-Shepherd labels: a step is good when any rollout of its prefix succeeded.

    >>> mc_hard([[False, True], [False, False]])
    [True, False]
    """
    return [s > 0 for s in mc_soft(outcomes)]


@dataclass
class FirstErrorResult:
    """Outcome of :func:`first_error_search` on one solution of ``len(labels)`` steps."""

    first_error: int | None
    """Index of the first bad step; ``None`` when every step is good."""
    labels: list[bool]
    """``labels[k]`` is ``k < first_error``: good before the first error, bad from it on."""
    probes: list[int] = field(default_factory=list)
    """Prefixes probed, in order (one ``prefix_ok`` call each; the caller's cost unit)."""


def first_error_search(num_steps: int, prefix_ok: Callable[[int], bool]) -> FirstErrorResult:
    """Search for the first step whose prefix can no longer reach the answer: gallop, then bisect.

    ``prefix_ok(k)`` says whether the prefix through step ``k`` is good (the stage: "any of its
    ``R`` rollouts succeeded", i.e. the OmegaPRM criterion ``MC(prefix) > 0``). Assuming
    monotonicity, probe prefixes 0, 1, 3, 7, ... (``2**j - 1``) until one is bad or the chain
    is passed, then binary-search between the last good probe and the first bad one. A first
    error at step ``f`` costs ``O(log2(f + 1))`` probes, at most ``2 * ceil(log2(num_steps + 1))``,
    and one probe when ``f == 0``: a weak policy's errors are early (measured: two thirds of its
    wrong solutions fail at step 0), where plain bisection probes mostly bad prefixes, the
    expensive ones (every rollout fails). A non-monotone ``prefix_ok`` still gets a consistent
    answer: some ``k`` with a good prefix ``k-1`` (or ``k == 0``) and a bad prefix ``k``. The
    last prefix is searched too: the caller applies :func:`known_good` first, so a solution
    searched here has a wrong answer.

    >>> r = first_error_search(4, lambda k: k < 2)
    >>> r.first_error, r.labels, r.probes
    (2, [True, True, False, False], [0, 1, 3, 2])
    """
    if num_steps < 0:
        raise ValueError(f"num_steps must be >= 0, got {num_steps}")
    probes: list[int] = []
    lo, hi = 0, num_steps  # invariant: prefixes < lo are good, prefix hi is bad (hi == n: none)
    k, stride = 0, 1
    while k < hi:  # gallop
        probes.append(k)
        if not prefix_ok(k):
            hi = k
            break
        lo, k, stride = k + 1, k + stride, 2 * stride
    while lo < hi:  # bisect
        mid = (lo + hi) // 2
        probes.append(mid)
        if prefix_ok(mid):
            lo = mid + 1
        else:
            hi = mid
    first = lo if lo < num_steps else None
    return FirstErrorResult(first, [k < lo for k in range(num_steps)], probes)


def known_good(solution_correct: bool, num_steps: int) -> list[bool] | None:
    """The labels a solution's own outcome proves, for every method: all good when its final
    answer is right, else ``None`` (a wrong answer proves nothing about the prefixes: the answer
    line may be the error, or the solution stopped early).

    >>> known_good(True, 3), known_good(False, 3)
    ([True, True, True], None)
    """
    return [True] * num_steps if solution_correct else None


def probe_waves(rollouts: int) -> list[int]:
    """How a probe's ``rollouts`` are drawn: waves of 1, 1, 2, 4, ... (doubling, the last cut so
    they sum to ``rollouts``). A good prefix usually stops after one or two; a bad one draws all.

    >>> probe_waves(8), probe_waves(1), probe_waves(6), probe_waves(16)
    ([1, 1, 2, 4], [1], [1, 1, 2, 2], [1, 1, 2, 4, 8])
    """
    if rollouts < 1:
        raise ValueError(f"probe_waves: rollouts must be >= 1, got {rollouts}")
    waves, total, size = [], 0, 1
    while total < rollouts:
        waves.append(min(size, rollouts - total))
        total += waves[-1]
        size = 1 if len(waves) == 1 else 2 * size
    return waves


def more_rollouts(rollouts: int, max_rollouts: int | None) -> list[int]:
    """Adaptive rollouts: the extra waves a prefix draws after its first ``rollouts`` all failed,
    each doubling what it has drawn, the last cut at ``max_rollouts`` (``None``: no extra wave).
    A prefix stops at the first wave with a success, so only the uncertain "bad" verdicts (every
    rollout so far failed) pay for more.

    >>> more_rollouts(8, 64), more_rollouts(8, 20), more_rollouts(8, 8), more_rollouts(8, None)
    ([8, 16, 32], [8, 4], [], [])
    """
    if max_rollouts is None:
        return []
    if max_rollouts < rollouts:
        raise ValueError(f"more_rollouts: max_rollouts {max_rollouts} < rollouts {rollouts}")
    waves, total = [], rollouts
    while total < max_rollouts:
        waves.append(min(total, max_rollouts - total))
        total += waves[-1]
    return waves


def probe_verdict(outcomes: Sequence[bool], rollouts: int) -> bool | None:
    """An early-stopped probe: ``True`` once any rollout succeeded, ``False`` once all
    ``rollouts`` failed, ``None`` while undecided. The same verdict as MC's hard label on the
    same rollouts (:func:`mc_hard`), for the rollouts up to the first success only.

    >>> probe_verdict([False, True], 8), probe_verdict([False] * 8, 8), probe_verdict([False] * 4, 8)
    (True, False, None)
    """
    if any(outcomes):
        return True
    return False if len(outcomes) >= rollouts else None


def first_false(labels: Sequence[bool]) -> int | None:
    """Index of the first ``False``; ``None`` when all are ``True`` (or the list is empty)."""
    for i, ok in enumerate(labels):
        if not ok:
            return i
    return None


def label_agreement(pred: Sequence[Sequence[bool]], oracle: Sequence[Sequence[bool]]) -> dict[str, float]:
    """Quality of predicted step labels against oracle labels, over solutions.

    ``pred[i]`` and ``oracle[i]`` are one solution's per-step labels (``True`` = good); lengths
    must match. Returns:

    - ``step_agreement``: fraction of steps whose label equals the oracle's;
    - ``bad_precision`` / ``bad_recall`` / ``bad_f1``: of *bad* steps (the positive class is
      ``False``: a PRM exists to find errors). A 0/0 ratio is 1.0 when the oracle has no bad step
      and nothing was predicted bad (nothing to find, nothing claimed), else 0.0;
    - ``good_recall``: fraction of oracle-good steps predicted good (0/0 as above);
    - ``balanced_accuracy``: mean of ``good_recall`` and ``bad_recall`` over the classes the
      oracle has (1.0 without steps): a labeller that calls every step good, or every step bad,
      scores 0.5 however skewed the classes are, where its ``step_agreement`` is the class share;
    - ``first_error_acc``: fraction of solutions whose first bad step (``None`` = none) is
      exactly the oracle's (computed from the labels, so an all-good solution counts as
      ``None`` even when its answer line is wrong);
    - ``num_solutions``, ``num_steps``, ``oracle_bad_rate``, ``pred_bad_rate``.

    Empty input gives counts of 0 and no ratio keys.
    """
    if len(pred) != len(oracle):
        raise ValueError(f"{len(pred)} predicted solutions vs {len(oracle)} oracle solutions")
    tp = fp = fn = agree = steps = fe_hits = 0
    for i, (p, o) in enumerate(zip(pred, oracle)):
        if len(p) != len(o):
            raise ValueError(f"solution {i}: {len(p)} predicted labels vs {len(o)} oracle labels")
        for pk, ok in zip(p, o):
            pb, ob = not pk, not ok
            tp += pb and ob
            fp += pb and not ob
            fn += ob and not pb
            agree += pk == ok
        steps += len(p)
        fe_hits += first_false(p) == first_false(o)
    out: dict[str, float] = {"num_solutions": len(pred), "num_steps": steps}
    if not pred:
        return out

    def ratio(a: int, b: int) -> float:
        if b:
            return a / b
        return 1.0 if tp + fp + fn == 0 else 0.0

    prec, rec = ratio(tp, tp + fp), ratio(tp, tp + fn)
    n_good, good_hits, pred_good = steps - tp - fn, agree - tp, steps - tp - fp
    good_rec = good_hits / n_good if n_good else (1.0 if not pred_good else 0.0)
    present = [r for r, n in ((good_rec, n_good), (rec, tp + fn)) if n]
    out.update(
        step_agreement=agree / steps if steps else 1.0,
        bad_precision=prec,
        bad_recall=rec,
        bad_f1=2 * prec * rec / (prec + rec) if prec + rec else 0.0,
        good_recall=good_rec,
        balanced_accuracy=sum(present) / len(present) if present else 1.0,
        first_error_acc=fe_hits / len(pred),
        oracle_bad_rate=(tp + fn) / steps if steps else 0.0,
        pred_bad_rate=(tp + fp) / steps if steps else 0.0,
    )
    return out


def cohen_kappa(a: Sequence[Sequence[bool]], b: Sequence[Sequence[bool]]) -> float | None:
    """Chance-corrected agreement of two labellings of the same steps: ``(p_o - p_e) / (1 - p_e)``,
    ``p_o`` the share of steps labelled alike, ``p_e`` what two labellers with these good rates
    would share by chance. 1: identical, 0: no better than chance. ``None`` without steps or
    when both call every step the same (``p_e = 1``).

    >>> cohen_kappa([[True, True, False, False]], [[True, False, False, False]])
    0.5
    """
    pairs = [(x, y) for ra, rb in zip(a, b, strict=True) for x, y in zip(ra, rb, strict=True)]
    if not pairs:
        return None
    n = len(pairs)
    p_o = sum(x == y for x, y in pairs) / n
    ga, gb = sum(x for x, _ in pairs) / n, sum(y for _, y in pairs) / n
    p_e = ga * gb + (1 - ga) * (1 - gb)
    return None if p_e == 1 else (p_o - p_e) / (1 - p_e)


def good_auc(scores: Sequence[Sequence[float]], oracle: Sequence[Sequence[bool]]) -> float | None:
    """ROC AUC of per-step scores (higher = more likely good) against oracle labels.

    The probability that a random good step scores above a random bad one (ties count half:
    the Mann-Whitney U statistic). ``None`` when either class is absent. Threshold-free, so it
    rates soft labels without choosing a cut.

    >>> good_auc([[0.9, 0.2], [0.5]], [[True, False], [True]])
    1.0
    """
    flat = [(float(s), bool(o)) for ss, oo in zip(scores, oracle, strict=True) for s, o in zip(ss, oo, strict=True)]
    n_pos = sum(o for _, o in flat)
    n_neg = len(flat) - n_pos
    if not n_pos or not n_neg:
        return None
    # Average ranks over ties, then U = rank-sum of positives - n_pos(n_pos+1)/2.
    flat.sort(key=lambda x: x[0])
    rank_sum, i = 0.0, 0
    while i < len(flat):
        j = i
        while j < len(flat) and flat[j][0] == flat[i][0]:
            j += 1
        avg_rank = (i + 1 + j) / 2  # ranks i+1 .. j
        rank_sum += avg_rank * sum(o for _, o in flat[i:j])
        i = j
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
