"""How good a labelling run was: metrics per method against the oracle, and its cost.

Metric keys (flat): per method, ``<method>.rollouts``, ``.rollouts_per_step``,
``.pred_bad_rate``, ``.solutions`` and, over the oracle-labelled solutions, ``.step_agreement``,
``.bad_precision``, ``.bad_recall``, ``.bad_f1``, ``.first_error_acc`` (and ``mc_soft.good_auc``,
the soft labels' ROC AUC); ``first_error.rollout_ratio_vs_mc`` (on the solutions both labelled);
``num_problems``, ``num_solutions``, ``num_labelled_solutions``, ``skipped_no_steps``,
``num_steps``, ``policy_solve_rate``, ``oracle_solutions``, ``oracle.bad_rate``,
``labels.bad_rate`` (of the output labels); ``oracle_note`` (text) when there is no oracle.
"""

from __future__ import annotations

from prmflow.labeling.estimators import good_auc, label_agreement
from prmflow.labeling.methods import LABEL_METHODS, MethodLabels
from prmflow.labeling.solutions import Solution


def bad_rate(labels: list[list[bool]]) -> float:
    """Fraction of steps labelled bad."""
    n = sum(map(len, labels))
    return sum(not x for ls in labels for x in ls) / n if n else 0.0


def run_metrics(solutions: list[Solution], labelled: list[Solution]) -> dict:
    """What was labelled: counts, the policy's solve rate, the oracle's bad-step rate."""
    metrics: dict = {
        "num_problems": len({id(s.problem) for s in solutions}),
        "num_solutions": len(solutions),
        "num_labelled_solutions": len(labelled),
        "skipped_no_steps": len(solutions) - len(labelled),
        "num_steps": sum(len(s.steps) for s in labelled),
        "policy_solve_rate": sum(s.correct for s in solutions) / len(solutions) if solutions else 0.0,
        "oracle_solutions": sum(s.oracle is not None for s in labelled),
    }
    if not metrics["oracle_solutions"]:
        metrics["oracle_note"] = "no oracle: no labelled solution of a 'synthetic' source, so no agreement metrics"
    else:
        metrics["oracle.bad_rate"] = bad_rate([s.oracle for s in labelled if s.oracle is not None])
    return metrics


def method_metrics(name: str, ml: MethodLabels, labelled: list[Solution]) -> dict:
    """One method's cost and, where there is an oracle, its agreement with it."""
    steps = sum(len(labelled[i].steps) for i in ml.index)
    m = {
        f"{name}.solutions": len(ml.index),
        f"{name}.rollouts": sum(ml.rollouts),
        f"{name}.rollouts_per_step": sum(ml.rollouts) / steps if steps else 0.0,
        f"{name}.pred_bad_rate": bad_rate(ml.hard),
    }
    with_oracle = [j for j, i in enumerate(ml.index) if labelled[i].oracle is not None]
    if not with_oracle:
        return m
    oracle = [labelled[ml.index[j]].oracle for j in with_oracle]
    agree = label_agreement([ml.hard[j] for j in with_oracle], oracle)
    for key in ("step_agreement", "bad_precision", "bad_recall", "bad_f1", "first_error_acc"):
        m[f"{name}.{key}"] = agree[key]
    if name == "mc_soft":
        auc = good_auc([ml.soft[j] for j in with_oracle], oracle)
        if auc is not None:
            m["mc_soft.good_auc"] = auc
    return m


def rollout_ratio(by_method: dict[str, MethodLabels]) -> dict:
    """``first_error.rollout_ratio_vs_mc`` on the solutions both labelled (when both ran)."""
    if "first_error" not in by_method or "mc_hard" not in by_method:
        return {}
    both = set(by_method["first_error"].index) & set(by_method["mc_hard"].index)

    def spent_on(ml: MethodLabels) -> int:
        return sum(r for i, r in zip(ml.index, ml.rollouts) if i in both)

    mc_total = spent_on(by_method["mc_hard"])
    return {"first_error.rollout_ratio_vs_mc": spent_on(by_method["first_error"]) / mc_total if mc_total else 0.0}


def comparison_table(metrics: dict) -> str:
    """Markdown table of the methods' agreement with the oracle and their cost."""
    cols = ("step_agreement", "bad_precision", "bad_recall", "bad_f1", "first_error_acc", "rollouts_per_step")
    lines = ["| method | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for m in LABEL_METHODS:
        if f"{m}.rollouts" not in metrics:
            continue
        cells = [f"{metrics[f'{m}.{c}']:.3f}" if f"{m}.{c}" in metrics else "n/a" for c in cols]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    notes = [
        f"solutions labelled: {metrics['num_labelled_solutions']} (skipped, no steps: {metrics['skipped_no_steps']}); "
        f"policy solve rate {metrics['policy_solve_rate']:.3f}"
    ]
    if "oracle_note" in metrics:
        notes.append(metrics["oracle_note"])
    if "first_error.rollout_ratio_vs_mc" in metrics:
        notes.append(f"first_error rollouts / mc rollouts: {metrics['first_error.rollout_ratio_vs_mc']:.3f}")
    return "\n".join(lines + [""] + notes) + "\n"
