"""Labelling methods: the registry the label stage draws from (``label.method``).

A method is ``fn(solutions, rollouts, cfg) -> MethodLabels``: hard and soft labels per step of
each solution and the rollouts it spent, using :class:`prmflow.labeling.solutions.Rollouts` for
any sampling. A new method is one function plus ``@LABEL_METHODS.register("name")``.

A correct solution's own text is a rollout of each of its prefixes that reached the answer; a
wrong final answer proves nothing about any prefix (the answer line may be the error, or the
solution stopped early), so those prefixes are rolled out.
"""

from __future__ import annotations

from dataclasses import dataclass

from prmflow.config import LabelConfig
from prmflow.labeling.estimators import first_error_search, mc_hard, mc_soft
from prmflow.labeling.solutions import Rollouts, Solution
from reward.registry import Registry

LABEL_METHODS = Registry("label method")

MC_SOFT_THRESHOLD = 0.5
"""``mc_soft``'s hard ``labels`` are ``soft >= MC_SOFT_THRESHOLD`` ("more likely than not to
reach the answer"), an operating point distinct from ``mc_hard`` (``soft > 0``); the PRM can
train on ``soft_labels`` instead (``prm.soft_labels``)."""


@dataclass
class MethodLabels:
    """One method's labels for some solutions (``index``: positions in the labelled list)."""

    index: list[int]
    hard: list[list[bool]]
    soft: list[list[float]]
    rollouts: list[int]


def mc_outcomes(solutions: list[Solution], rollouts: Rollouts, index: list[int], seed: int) -> tuple[list[list[list[bool]]], list[int]]:
    """Math-Shepherd outcomes per solution and step, and the rollouts spent per solution.

    Every step prefix gets ``rollouts.n`` rollouts, except the last step of a correct solution,
    whose outcome is the solution's own (``[True]``, no rollout).
    """

    def rolled(s: Solution) -> int:
        return len(s.steps) - 1 if s.correct else len(s.steps)

    jobs = [(i, k) for i in index for k in range(rolled(solutions[i]))]
    res = iter(rollouts.outcomes(jobs, seed, "mc rollouts"))
    outcomes, spent = [], []
    for i in index:
        s = solutions[i]
        per_step = [next(res) for _ in range(rolled(s))]
        outcomes.append(per_step + [[True]] * (len(s.steps) - rolled(s)))
        spent.append(rollouts.n * rolled(s))
    return outcomes, spent


@LABEL_METHODS.register("mc_hard")
def label_mc_hard(solutions: list[Solution], rollouts: Rollouts, index: list[int], cfg: LabelConfig) -> MethodLabels:
    """Math-Shepherd hard labels: a step is good when any rollout of its prefix succeeded."""
    outcomes, spent = mc_outcomes(solutions, rollouts, index, cfg.seed + 1)
    return MethodLabels(index, [mc_hard(o) for o in outcomes], [mc_soft(o) for o in outcomes], spent)


@LABEL_METHODS.register("mc_soft")
def label_mc_soft(solutions: list[Solution], rollouts: Rollouts, index: list[int], cfg: LabelConfig) -> MethodLabels:
    """Math-Shepherd soft labels (success fraction); hard labels at :data:`MC_SOFT_THRESHOLD`."""
    outcomes, spent = mc_outcomes(solutions, rollouts, index, cfg.seed + 1)
    soft = [mc_soft(o) for o in outcomes]
    return MethodLabels(index, [[v >= MC_SOFT_THRESHOLD for v in s] for s in soft], soft, spent)


class _Pending(Exception):
    """Raised by a probe whose answer is not known yet: the search resumes next round."""

    def __init__(self, k: int):
        self.k = k


@LABEL_METHODS.register("first_error")
def label_first_error(solutions: list[Solution], rollouts: Rollouts, index: list[int], cfg: LabelConfig) -> MethodLabels:
    """:func:`first_error_search` on every solution, probes batched across solutions.

    Each round replays every unfinished search with the probe answers known so far; a search
    that needs an unknown one stops there and its prefix joins the round's batch. Binary search
    is deterministic, so replaying is exact and costs nothing next to sampling. A probe is
    good when any of its rollouts reaches the answer. Rounds <= ceil(log2(n+1)).
    """
    known: dict[int, dict[int, bool]] = {i: {} for i in index}
    results: dict[int, list[bool]] = {}
    spent = dict.fromkeys(index, 0)
    rnd = 0
    while True:
        pending = []
        for i in index:
            if i in results:
                continue

            def ok(k: int, memo=known[i]) -> bool:
                if k not in memo:
                    raise _Pending(k)
                return memo[k]

            try:
                results[i] = first_error_search(len(solutions[i].steps), ok, solutions[i].correct).labels
            except _Pending as p:
                pending.append((i, p.k))
        if not pending:
            break
        rnd += 1
        for (i, k), o in zip(pending, rollouts.outcomes(pending, cfg.seed + 1000 + rnd, f"first_error round {rnd}")):
            known[i][k] = any(o)
            spent[i] += rollouts.n
    hard = [results[i] for i in index]
    return MethodLabels(index, hard, [[float(x) for x in h] for h in hard], [spent[i] for i in index])
