"""Label sampled solutions: which methods label which solutions, and the output rows.

``label.method`` labels every solution with steps; with ``label.compare_methods`` every other
registered method labels the solutions of the first ``label.compare_num_problems`` problems (all
by default), to report each one's agreement with the oracle and its cost. A solution with no
step has nothing to label: it is counted (``skipped_no_steps``) and left out.
"""

from __future__ import annotations

from prmflow.config import LabelConfig
from prmflow.labeling import report
from prmflow.labeling.methods import LABEL_METHODS, MethodLabels
from prmflow.labeling.solutions import RolloutFn, Rollouts, Solution
from reward.parse import SolutionFormat


def compare_subset(labelled: list[Solution], num_problems: int | None) -> list[int]:
    """Positions of the solutions of the first ``num_problems`` problems (all when ``None``)."""
    if num_problems is None:
        return list(range(len(labelled)))
    keep: dict[int, None] = {}
    for s in labelled:
        if len(keep) < num_problems:
            keep.setdefault(id(s.problem))
    return [i for i, s in enumerate(labelled) if id(s.problem) in keep]


def output_row(s: Solution, labels: MethodLabels, j: int, method: str) -> dict:
    """One row of ``data/labels`` (:func:`prmflow.workspace.label_features`)."""
    p = s.problem
    return {
        "id": f"{p.get('id', '')}/{s.sample_index}",
        "prompt": s.prompt,
        "completions": s.steps,
        "labels": labels.hard[j],
        "soft_labels": labels.soft[j],
        "method": method,
        "rollouts": labels.rollouts[j],
        "question": p["question"],
        "final_answer": str(p["final_answer"]),
        "difficulty": int(p.get("difficulty") or 0),
        "source": str(p.get("source") or ""),
        "correct": s.correct,
        "oracle_labels": s.oracle if s.oracle is not None else [],
    }


def label_solutions(
    solutions: list[Solution], rollout_fn: RolloutFn, cfg: LabelConfig, fmt: SolutionFormat = SolutionFormat()
) -> tuple[list[dict], dict, list[dict]]:
    """Label ``solutions``; return (output rows, metrics of :mod:`prmflow.labeling.report`, label
    quality by step position: :func:`~prmflow.labeling.report.by_position`). Rollout prefixes are
    joined and judged by ``fmt`` (the format that split the solutions)."""
    labelled = [s for s in solutions if s.steps]
    every = list(range(len(labelled)))
    subset = compare_subset(labelled, cfg.compare_num_problems) if cfg.compare_methods else []
    rollouts = Rollouts(labelled, rollout_fn, cfg.rollouts, fmt, seed=cfg.seed + 1)
    by_method: dict[str, MethodLabels] = {}
    by_method[cfg.method] = LABEL_METHODS.get(cfg.method)(labelled, rollouts, every, cfg)
    if cfg.compare_methods:  # after the chosen one: the rollouts they share with it are already sampled
        for name, method in LABEL_METHODS.items():
            if name != cfg.method:
                by_method[name] = method(labelled, rollouts, subset, cfg)

    metrics = report.run_metrics(solutions, labelled)
    for name, ml in by_method.items():
        metrics.update(report.method_metrics(name, ml, labelled))
    metrics.update(report.rollout_ratio(by_method))
    metrics.update(report.method_agreement(by_method))
    chosen = by_method[cfg.method]  # labelled every solution: chosen.index == every
    metrics["labels.bad_rate"] = report.bad_rate(chosen.hard)
    rows = [output_row(s, chosen, i, cfg.method) for i, s in enumerate(labelled)]
    return rows, metrics, report.by_position(by_method, labelled)
