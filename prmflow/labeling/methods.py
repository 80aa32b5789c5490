"""Labelling methods: the registry the label stage draws from (``label.method``).

A method is ``fn(solutions, rollouts, index, cfg) -> MethodLabels``: hard and soft labels per
step of each solution and the rollouts it spent, using
:class:`prmflow.labeling.solutions.Rollouts` for any sampling. A new method is one function plus
``@LABEL_METHODS.register("name")``.

Every method takes the same shortcut, and only this one: a solution whose final answer is right
has every step good (hard ``True``, soft ``1.0``) with no rollout
(:func:`prmflow.labeling.estimators.known_good`); a wrong final answer proves nothing about any
prefix, so every method rolls out what it needs of them, the last prefix included.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate

from prmflow.config import LabelConfig
from prmflow.labeling.estimators import first_error_search, known_good, mc_hard, mc_soft, more_rollouts, probe_verdict, probe_waves
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


def mc_outcomes(
    solutions: list[Solution], rollouts: Rollouts, index: list[int], max_rollouts: int | None = None
) -> tuple[list[list[list[bool]]], list[int]]:
    """Math-Shepherd outcomes per solution and step, and the rollouts spent per solution.

    Every step prefix of a wrong-answer solution gets ``rollouts.n`` rollouts, and with
    ``max_rollouts`` a prefix whose rollouts all failed draws more (:func:`more_rollouts`) until
    one succeeds; a right-answer solution's steps are known good (one ``True`` outcome each, no
    rollout: :func:`known_good`).
    """
    known = {i: known_good(solutions[i].correct, len(solutions[i].steps)) for i in index}
    jobs = [(i, k) for i in index if known[i] is None for k in range(len(solutions[i].steps))]
    drawn = dict(zip(jobs, rollouts.outcomes(jobs, "mc rollouts")))
    start = rollouts.n
    for size in more_rollouts(rollouts.n, max_rollouts):
        todo = [job for job in jobs if not any(drawn[job])]
        for job, o in zip(todo, rollouts.outcomes(todo, f"mc rollouts {start + 1}-{start + size}", n=size, start=start)):
            drawn[job] = drawn[job] + o
        start += size
    outcomes, spent = [], []
    for i in index:
        if known[i] is not None:
            outcomes.append([[ok] for ok in known[i]])
            spent.append(0)
        else:
            outcomes.append([drawn[(i, k)] for k in range(len(solutions[i].steps))])
            spent.append(sum(map(len, outcomes[-1])))
    return outcomes, spent


@LABEL_METHODS.register("mc_hard")
def label_mc_hard(solutions: list[Solution], rollouts: Rollouts, index: list[int], cfg: LabelConfig) -> MethodLabels:
    """Math-Shepherd hard labels: a step is good when any rollout of its prefix succeeded."""
    outcomes, spent = mc_outcomes(solutions, rollouts, index, cfg.max_rollouts)
    return MethodLabels(index, [mc_hard(o) for o in outcomes], [mc_soft(o) for o in outcomes], spent)


@LABEL_METHODS.register("mc_soft")
def label_mc_soft(solutions: list[Solution], rollouts: Rollouts, index: list[int], cfg: LabelConfig) -> MethodLabels:
    """Math-Shepherd soft labels (success fraction); hard labels at :data:`MC_SOFT_THRESHOLD`.
    Adaptive rollouts (``label.max_rollouts``) only refine the soft value of a prefix whose first
    ``label.rollouts`` all failed (0 -> successes over all it drew): its hard label stays bad."""
    outcomes, spent = mc_outcomes(solutions, rollouts, index, cfg.max_rollouts)
    soft = [mc_soft(o) for o in outcomes]
    return MethodLabels(index, [[v >= MC_SOFT_THRESHOLD for v in s] for s in soft], soft, spent)


class _Pending(Exception):
    """Raised by a probe whose answer is not known yet: the search resumes next round."""

    def __init__(self, k: int):
        self.k = k


@LABEL_METHODS.register("first_error")
def label_first_error(solutions: list[Solution], rollouts: Rollouts, index: list[int], cfg: LabelConfig) -> MethodLabels:
    """:func:`first_error_search` on every wrong-answer solution, probes batched across solutions.

    A probe reads its prefix's rollouts in waves (:func:`probe_waves`) and stops at the first
    success (:func:`probe_verdict`): the verdict is MC's hard label ("any of ``label.rollouts``
    succeeded"), paid in full only by bad prefixes. Each round replays every unfinished search
    with the verdicts known so far; a search that needs an undecided probe stops there and the
    probe's next wave joins the round. The search is deterministic,
    so replaying is exact and costs nothing next to sampling. With ``label.max_rollouts`` a probe
    is bad only once that many rollouts failed (its waves go on doubling up to it).
    """
    cap = cfg.max_rollouts or rollouts.n
    waves = probe_waves(cap)
    next_wave = dict(zip(accumulate([0, *waves[:-1]]), waves))  # rollouts read so far -> next wave
    drawn: dict[tuple[int, int], list[bool]] = {}
    results = {i: known_good(solutions[i].correct, len(solutions[i].steps)) for i in index}
    spent = dict.fromkeys(index, 0)
    rnd = 0
    while True:
        pending: dict[int, list[tuple[int, int]]] = {}  # rollouts read so far -> probes (solution, step)
        for i in index:
            if results[i] is not None:
                continue

            def ok(k: int, i=i) -> bool:
                verdict = probe_verdict(drawn.get((i, k), []), cap)
                if verdict is None:
                    raise _Pending(k)
                return verdict

            try:
                results[i] = first_error_search(len(solutions[i].steps), ok).labels
            except _Pending as p:
                pending.setdefault(len(drawn.get((i, p.k), [])), []).append((i, p.k))
        if not pending:
            break
        rnd += 1
        for start, jobs in sorted(pending.items()):
            size = next_wave[start]
            for job, o in zip(jobs, rollouts.outcomes(jobs, f"first_error round {rnd}", n=size, start=start)):
                drawn.setdefault(job, []).extend(o)
                spent[job[0]] += size
    hard = [results[i] for i in index]
    return MethodLabels(index, hard, [[float(x) for x in h] for h in hard], [spent[i] for i in index])
