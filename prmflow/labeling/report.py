"""How good a labelling run was: metrics per method against the oracle, and its cost.

Metric keys (flat): per method, ``<method>.rollouts``, ``.rollouts_per_step``,
``.pred_bad_rate``, ``.solutions`` and, over the oracle-labelled solutions, ``.step_agreement``,
``.balanced_accuracy``, ``.bad_precision``, ``.bad_recall``, ``.bad_f1``, ``.first_error_acc``,
``.perfect_completer_agreement`` (step agreement with the perfect completer's labels: what is
left is the completer's own misses), ``.oracle_bad_rate`` (of the steps it labelled: the
agreement of an all-bad labeller on them;
and ``mc_soft.good_auc``, the soft labels' ROC AUC); ``first_error.rollout_ratio_vs_mc`` (on the
solutions both labelled); ``num_problems``, ``num_solutions``, ``num_labelled_solutions``,
``skipped_no_steps``, ``num_steps``, ``policy_solve_rate``, ``oracle_solutions``,
``oracle.bad_rate``, ``labels.bad_rate`` (of the output labels); ``oracle_note`` (text) when there
is no oracle.

Without an oracle (real data) the labels are still judged: ``agree.<a>.<b>.step_agreement``,
``.kappa`` (chance-corrected) and ``.first_error_acc`` (same first bad step) of every two methods
on the solutions both labelled (:func:`method_agreement`), and per method
``<method>.bad_on_correct``: the share of steps of right-answer solutions it labels bad, each
provably wrong (the solution itself reaches the answer from every one of its prefixes); 0 for
every registered method, which all label those steps good without rollouts (a guard for new ones).
Truncation: ``truncation.solutions`` / ``.rate`` (sampled solutions cut at the budget) and
``truncation.steps_dropped`` (their cut-off last steps, never labelled).
:func:`samples_markdown` prints labelled solutions for a reader to check by hand.

The perfect completer (``baseline.perfect_completer.<k>``, synthetic data): the labels of a
completer that makes no mistake (can the prefix still reach the right answer?), scored against
the oracle's prefix correctness. Where a wrong step does not change the answer (a distractor,
modular arithmetic forgets it, or a later step writes the right value again), the two disagree.
It is the ceiling of a completer that is never misled, not of every rollout method: a real
completer thrown off by such a wrong line (its rollouts then fail) labels it bad, as the oracle
does. A strong completer beat it on `dag` (README, 2026-11-29 afternoon).

Baselines: step agreement alone flatters a labeller when the classes are skewed (with 72% bad
steps, calling every step bad agrees on 72%). ``baseline.all_good.<k>`` and
``baseline.all_bad.<k>`` are the trivial labellers' scores over all oracle-labelled solutions,
computed like a method's (:func:`trivial_baselines`); the comparison table prints them as rows.
"""

from __future__ import annotations

from prmflow.labeling.estimators import cohen_kappa, good_auc, label_agreement
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
        "truncation.solutions": sum(not s.finished for s in solutions),
        "truncation.rate": sum(not s.finished for s in solutions) / len(solutions) if solutions else 0.0,
        "truncation.steps_dropped": sum(s.cut_step for s in solutions),
    }
    if not metrics["oracle_solutions"]:
        metrics["oracle_note"] = "no oracle: no labelled solution of a 'synthetic' source, so no agreement metrics"
    else:
        oracle = [s.oracle for s in labelled if s.oracle is not None]
        metrics["oracle.bad_rate"] = bad_rate(oracle)
        metrics.update(trivial_baselines(oracle))
        reachable = [s.reachable for s in labelled if s.oracle is not None]
        if all(r is not None for r in reachable):
            agree = label_agreement(reachable, oracle)
            metrics.update({f"baseline.perfect_completer.{k}": agree[k] for k in BASELINE_KEYS})
    return metrics


BASELINE_KEYS = ("step_agreement", "balanced_accuracy", "bad_precision", "bad_recall", "bad_f1", "first_error_acc")


def trivial_baselines(oracle: list[list[bool]]) -> dict[str, float]:
    """``baseline.all_good.<k>`` and ``baseline.all_bad.<k>`` (k in :data:`BASELINE_KEYS`): how
    labellers that call every step good, or every step bad, score against ``oracle``. Their
    step agreement is the oracle's good / bad step share; balanced accuracy 0.5."""
    if not oracle:
        return {}
    out = {}
    for name, value in (("all_good", True), ("all_bad", False)):
        agree = label_agreement([[value] * len(o) for o in oracle], oracle)
        out.update({f"baseline.{name}.{k}": agree[k] for k in BASELINE_KEYS})
    return out


def method_metrics(name: str, ml: MethodLabels, labelled: list[Solution]) -> dict:
    """One method's cost and, where there is an oracle, its agreement with it."""
    steps = sum(len(labelled[i].steps) for i in ml.index)
    m = {
        f"{name}.solutions": len(ml.index),
        f"{name}.rollouts": sum(ml.rollouts),
        f"{name}.rollouts_per_step": sum(ml.rollouts) / steps if steps else 0.0,
        f"{name}.pred_bad_rate": bad_rate(ml.hard),
    }
    on_correct = [h for i, h in zip(ml.index, ml.hard) if labelled[i].correct]
    if any(on_correct):
        m[f"{name}.bad_on_correct"] = bad_rate(on_correct)
    with_oracle = [j for j, i in enumerate(ml.index) if labelled[i].oracle is not None]
    if not with_oracle:
        return m
    oracle = [labelled[ml.index[j]].oracle for j in with_oracle]
    agree = label_agreement([ml.hard[j] for j in with_oracle], oracle)
    for key in BASELINE_KEYS + ("oracle_bad_rate",):
        m[f"{name}.{key}"] = agree[key]
    reachable = [labelled[ml.index[j]].reachable for j in with_oracle]
    if all(r is not None for r in reachable):  # vs what rollouts estimate: the completer's own misses
        m[f"{name}.perfect_completer_agreement"] = label_agreement([ml.hard[j] for j in with_oracle], reachable)["step_agreement"]
    if name == "mc_soft":
        auc = good_auc([ml.soft[j] for j in with_oracle], oracle)
        if auc is not None:
            m["mc_soft.good_auc"] = auc
    return m


def method_agreement(by_method: dict[str, MethodLabels]) -> dict[str, float]:
    """``agree.<a>.<b>.<k>`` for every two methods (in registry order) on the solutions both
    labelled: ``step_agreement``, ``kappa`` (:func:`cohen_kappa`), ``first_error_acc`` (same first
    bad step, or none) and ``solutions``. Needs no oracle: where two estimators with different
    assumptions (MC: every prefix rolled out; first error: monotone, searched) disagree, at
    least one is wrong."""
    names = [m for m in LABEL_METHODS if m in by_method]
    out: dict[str, float] = {}
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            la, lb = by_method[a], by_method[b]
            pos_b = {k: j for j, k in enumerate(lb.index)}
            both = [(ja, pos_b[k]) for ja, k in enumerate(la.index) if k in pos_b]
            if not both:
                continue
            ha, hb = [la.hard[ja] for ja, _ in both], [lb.hard[jb] for _, jb in both]
            agree = label_agreement(ha, hb)
            key = f"agree.{a}.{b}"
            out.update({f"{key}.solutions": len(both), f"{key}.step_agreement": agree["step_agreement"]})
            out[f"{key}.first_error_acc"] = agree["first_error_acc"]
            kappa = cohen_kappa(ha, hb)
            if kappa is not None:
                out[f"{key}.kappa"] = kappa
    return out


def by_position(by_method: dict[str, MethodLabels], labelled: list[Solution]) -> list[dict]:
    """Label quality by step position, over the oracle-labelled solutions: per position ``step``
    (1 = a solution's first step), each method's step agreement with the oracle there (``None``
    where it labelled no such step), ``all_bad`` (the oracle's bad share there: what calling
    every step bad agrees on) and ``steps`` (how many oracle-labelled steps are there)."""
    with_oracle = [s.oracle for s in labelled if s.oracle is not None]
    rows = []
    for k in range(max(map(len, with_oracle), default=0)):
        row: dict = {"step": k + 1}
        for name, ml in by_method.items():
            pairs = [(ml.hard[j][k], labelled[i].oracle[k]) for j, i in enumerate(ml.index) if len(labelled[i].oracle or []) > k]
            row[name] = sum(p == o for p, o in pairs) / len(pairs) if pairs else None
        at_k = [o[k] for o in with_oracle if len(o) > k]
        rows.append(row | {"all_bad": sum(not o for o in at_k) / len(at_k), "steps": len(at_k)})
    return rows


def rollout_ratio(by_method: dict[str, MethodLabels]) -> dict:
    """``first_error.rollout_ratio_vs_mc`` on the solutions both labelled (when both ran)."""
    if "first_error" not in by_method or "mc_hard" not in by_method:
        return {}
    both = set(by_method["first_error"].index) & set(by_method["mc_hard"].index)

    def spent_on(ml: MethodLabels) -> int:
        return sum(r for i, r in zip(ml.index, ml.rollouts) if i in both)

    mc_total = spent_on(by_method["mc_hard"])
    return {"first_error.rollout_ratio_vs_mc": spent_on(by_method["first_error"]) / mc_total if mc_total else 0.0}


COLUMNS = (
    "step_agreement",
    "trivial",
    "balanced_accuracy",
    "bad_precision",
    "bad_recall",
    "bad_f1",
    "first_error_acc",
    "perfect_completer_agreement",
    "rollouts_per_step",
)
"""The comparison table's columns; ``trivial``: the all-good / all-bad labellers' step agreement
on the same steps as the row (a method compared on a subset has its own)."""


def _row(label: str, prefix: str, metrics: dict, bad: float | None) -> str:
    """One table row of the keys ``<prefix>.<column>``; ``bad``: the oracle bad rate of its steps."""
    cells = []
    for c in COLUMNS:
        if c == "trivial":
            cells.append("n/a" if bad is None else f"{1 - bad:.3f} / {bad:.3f}")
        elif c == "rollouts_per_step" and prefix.startswith("baseline."):
            cells.append("0")
        else:
            cells.append(f"{metrics[f'{prefix}.{c}']:.3f}" if f"{prefix}.{c}" in metrics else "n/a")
    return f"| {label} | " + " | ".join(cells) + " |"


def comparison_table(metrics: dict) -> str:
    """Markdown table of the methods' agreement with the oracle and their cost, with the trivial
    labellers (all good, all bad) as rows and, per method, their agreement on the same steps."""
    head = ["all-good / all-bad agreement, same steps" if c == "trivial" else c for c in COLUMNS]
    lines = ["| method | " + " | ".join(head) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for m in LABEL_METHODS:
        if f"{m}.rollouts" in metrics:
            lines.append(_row(m, m, metrics, metrics.get(f"{m}.oracle_bad_rate")))
    for name in ("all_good", "all_bad", "perfect_completer"):
        if f"baseline.{name}.step_agreement" in metrics:
            lines.append(_row(f"baseline: {name.replace('_', ' ')}", f"baseline.{name}", metrics, metrics.get("oracle.bad_rate")))
    notes = [
        f"solutions labelled: {metrics['num_labelled_solutions']} (skipped, no steps: {metrics['skipped_no_steps']}); "
        f"policy solve rate {metrics['policy_solve_rate']:.3f}"
    ]
    if "oracle.bad_rate" in metrics:
        notes.append(
            f"oracle bad-step rate {metrics['oracle.bad_rate']:.3f}: calling every step bad agrees on that share of steps; "
            "balanced accuracy (mean recall on good and on bad steps) is 0.5 for either trivial labeller"
        )
    if "baseline.perfect_completer.step_agreement" in metrics:
        notes.append(
            "perfect completer: Monte-Carlo labels from a completer that makes no mistake (can the prefix still reach the "
            f"right answer?) agree with the oracle on {metrics['baseline.perfect_completer.step_agreement']:.3f} of steps: "
            "wrong steps the answer survives are the rest; a completer that is never misled gets no closer"
        )
    if "oracle_note" in metrics:
        notes.append(metrics["oracle_note"])
    if "first_error.rollout_ratio_vs_mc" in metrics:
        notes.append(f"first_error rollouts / mc rollouts: {metrics['first_error.rollout_ratio_vs_mc']:.3f}")
    notes += quality_notes(metrics)
    return "\n".join(lines + [""] + notes + agreement_table(metrics)) + "\n"


def quality_notes(metrics: dict) -> list[str]:
    """What needs no oracle: provably wrong labels per method, and truncation."""
    notes = []
    wrong = [f"{m} {metrics[f'{m}.bad_on_correct']:.3f}" for m in LABEL_METHODS if f"{m}.bad_on_correct" in metrics]
    if wrong:
        notes.append("steps of right-answer solutions labelled bad (each provably wrong): " + ", ".join(wrong))
    if "truncation.solutions" in metrics:
        notes.append(
            f"solutions cut at label.max_new_tokens: {metrics['truncation.solutions']} ({metrics['truncation.rate']:.1%}); "
            f"cut-off last steps left unlabelled: {metrics['truncation.steps_dropped']}"
            + (f"; rollouts cut: {metrics['sampling.rollouts.truncation_rate']:.1%}" if "sampling.rollouts.truncation_rate" in metrics else "")
        )
    return notes


def agreement_table(metrics: dict) -> list[str]:
    """Markdown rows of :func:`method_agreement` (empty when fewer than two methods ran)."""
    pairs = sorted({k.rsplit(".", 1)[0] for k in metrics if k.startswith("agree.")})
    if not pairs:
        return []
    lines = ["", "| methods (no oracle needed) | solutions | step agreement | kappa | same first error |", "|---|---|---|---|---|"]
    for p in pairs:
        _, a, b = p.split(".")
        kappa = f"{metrics[p + '.kappa']:.3f}" if p + ".kappa" in metrics else "n/a"
        lines.append(
            f"| {a} vs {b} | {metrics[p + '.solutions']:g} | {metrics[p + '.step_agreement']:.3f} | {kappa} | {metrics[p + '.first_error_acc']:.3f} |"
        )
    return lines


def samples_markdown(rows: list[dict], n: int) -> str:
    """Up to ``n`` labelled solutions (one per problem first) with each step's label, to check by
    hand: is step k right, and does its label say so?"""
    seen, pick = set(), []
    for r in rows:  # one per problem, then the rest, in order
        if r["question"] not in seen and len(pick) < n:
            seen.add(r["question"])
            pick.append(r)
    pick += [r for r in rows if r not in pick][: n - len(pick)]
    out = [f"# {len(pick)} labelled solutions ({rows[0]['method'] if rows else 'none'})", ""]
    for r in pick:
        verdict = "right" if r["correct"] else "not right"
        out += [f"## {r['id']}: final answer {verdict} (reference {r['final_answer']})", "", f"question: {r['question']}", ""]
        out += ["| step | label | soft | text |", "|---|---|---|---|"]
        for k, (step, hard, soft) in enumerate(zip(r["completions"], r["labels"], r["soft_labels"])):
            text = " ".join(step.split()).replace("|", "\\|")
            out.append(f"| {k} | {'good' if hard else 'BAD'} | {soft:.2f} | {text[:160]} |")
        out.append("")
    return "\n".join(out)
