"""Reports of evaluation results for people: the terminal table, the Prefect markdown, and the
across-iterations table. Light (no torch): the CLI and the flows import it."""

from __future__ import annotations

from pathlib import Path

from prmflow.workspace import read_metrics


def format_table(rep: dict, k: int) -> str:
    """Plain-text table of accuracy and length by difficulty."""
    head = f"{'difficulty':>10} {'n':>5} {'greedy':>7} {'pass@1':>7} {'maj@' + str(k):>7} {'pass@' + str(k):>7} {'tokens':>7} {'steps':>6}"
    lines = [head, "-" * len(head)]
    rows = list(rep["by_difficulty"].items()) + [("all", rep["overall"])]
    for d, m in rows:
        lines.append(
            f"{d:>10} {m['n']:>5} {m['greedy_acc']:>7.3f} {m['pass@1']:>7.3f} {m[f'maj@{k}']:>7.3f} "
            f"{m[f'pass@{k}']:>7.3f} {m['len_tokens_mean']:>7.1f} {m['len_steps_mean']:>6.2f}"
        )
    for name in ("base", "champion"):
        if name in rep:
            o = rep[name]["overall"]
            lines.append(
                f"{name:>10} {o['n']:>5} {o['greedy_acc']:>7.3f} {o['pass@1']:>7.3f} {o[f'maj@{k}']:>7.3f} {o[f'pass@{k}']:>7.3f} {o['len_tokens_mean']:>7.1f} {o['len_steps_mean']:>6.2f}"
            )
    if "gate" in rep:
        g = rep["gate"]
        lines.append(
            f"gate: candidate {g['candidate']:.3f} vs champion {g['champion']:.3f} (diff {g['diff']:+.3f}, margin {g['margin']:.3f}): {'promote' if g['promote'] else 'keep champion'} ({g['reason']})"
        )
    return "\n".join(lines)


def eval_markdown(report: dict, k: int) -> str:
    rows = [f"| difficulty | n | greedy | pass@1 | maj@{k} | pass@{k} | tokens | steps |", "|---|---|---|---|---|---|---|---|"]
    lines = list(report["by_difficulty"].items()) + [(f"**all ({report.get('policy', 'policy')})**", report["overall"])]
    for name in ("champion", "base"):
        if name in report:
            lines.append((f"**{name}**", report[name]["overall"]))
    for d, m in lines:
        rows.append(
            f"| {d} | {m['n']} | {m['greedy_acc']:.3f} | {m['pass@1']:.3f} | {m[f'maj@{k}']:.3f} | "
            f"{m[f'pass@{k}']:.3f} | {m['len_tokens_mean']:.1f} | {m['len_steps_mean']:.2f} |"
        )
    out = f"## Evaluation of the {report.get('policy', 'policy')}\n\n" + "\n".join(rows)
    if "gate" in report:
        g = report["gate"]
        verdict = "**promoted to champion**" if g["promote"] else "**not promoted**"
        out += (
            f"\n\n## Gate: {verdict}\n\n{g['reason']}\n\n| | candidate | champion | diff | noise margin |\n|---|---|---|---|---|\n"
            f"| gate score (per problem: fraction right of greedy + samples) | {g['candidate']:.3f} | {g['champion']:.3f} | {g['diff']:+.3f} | {g['margin']:.3f} |\n"
        )
        if g.get("monitors"):
            out += "\n" + monitors_markdown(g["monitors"])
        elif report.get("monitors"):  # a report from before the gate listed its checks
            out += "\nMonitors: " + ", ".join(f"{k} = {v:.3f}" for k, v in report["monitors"].items()) + "\n"
    return out


def monitors_markdown(checks: list[dict]) -> str:
    """The gate's monitor checks (:class:`prmflow.evaluation.gate.MonitorCheck` as dicts): one
    row each, ``checked`` / ``tripped`` / ``skipped: why``."""
    num = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    rows = ["| monitor | value | threshold | status |", "|---|---|---|---|"]
    for c in checks:
        status = f"skipped: {c['note']}" if c["status"] == "skipped" else c["status"]
        rows.append(f"| {c['name']} | {num(c['value'])} | {num(c['threshold'])} | {status} |")
    return "\n".join(rows) + "\n"


ITERATION_COLUMNS = {
    "iteration": "lifecycle iteration (1 starts from the warm-started base)",
    "candidate_greedy_acc": "fraction of eval problems the candidate solves with greedy decoding",
    "champion_greedy_acc": "the same for the champion it was compared with (same problems)",
    "candidate_pass@1": "fraction of the candidate's temperature samples that are right",
    "champion_pass@1": "the same for the champion",
    "candidate_gate_score": "the gate's score: per problem, fraction right among greedy + samples, averaged",
    "champion_gate_score": "the same for the champion",
    "gate_gain": "candidate_gate_score - champion_gate_score (mean paired difference)",
    "gate_noise_margin": "evaluate.gate_z standard errors of that difference; promotion needs gate_gain above it",
    "promoted": "the gate's decision",
    "gate_reason": "why",
    "candidate_greedy_tokens_mean": "mean tokens of the candidate's greedy solutions",
    "label_step_agreement": "fraction of steps where the chosen label method agrees with the oracle",
    "label_all_bad_step_agreement": "the same for a labeller that calls every step bad (the oracle's bad-step rate)",
    "label_balanced_accuracy": "the label method's mean of recall on good and on bad steps (0.5 = trivial)",
    "rl_eval_greedy_acc_end": "greedy accuracy on the first rl.eval_problems eval problems after the last RL step",
    "prm_chains_step_auc": "the PRM's step ROC AUC on fresh policy chains against the oracle",
    "prm_chains_first_error_f1": "the PRM's first-error F1 on those chains",
}
"""The across-iterations table's columns and what each holds (printed under the table)."""


def _rounded(v):
    return round(v, 3) if isinstance(v, float) else v


def iteration_row(it: int, root: Path) -> dict:
    """One row of the across-iterations table (:data:`ITERATION_COLUMNS`), from the metrics
    files DVC tracks; floats rounded to 3 decimals, ``None`` where a stage did not report."""
    ev, lab, prm, rl = (read_metrics(s, root) for s in ("evaluate", "label", "train_prm", "train_policy"))
    gate, cand, champ = ev.get("gate", {}), ev.get("overall", {}), ev.get("champion", {}).get("overall", {})
    method = lab.get("method", "")
    row = {
        "iteration": it,
        "candidate_greedy_acc": cand.get("greedy_acc"),
        "champion_greedy_acc": champ.get("greedy_acc"),
        "candidate_pass@1": cand.get("pass@1"),
        "champion_pass@1": champ.get("pass@1"),
        "candidate_gate_score": gate.get("candidate"),
        "champion_gate_score": gate.get("champion"),
        "gate_gain": gate.get("diff"),
        "gate_noise_margin": gate.get("margin"),
        "promoted": gate.get("promote"),
        "gate_reason": gate.get("reason", "no gate"),
        "candidate_greedy_tokens_mean": cand.get("len_tokens_mean"),
        "label_step_agreement": lab.get(f"{method}.step_agreement"),
        "label_all_bad_step_agreement": lab.get("baseline.all_bad.step_agreement"),
        "label_balanced_accuracy": lab.get(f"{method}.balanced_accuracy"),
        "rl_eval_greedy_acc_end": rl.get("eval_greedy_acc_end"),
        "prm_chains_step_auc": prm.get("prm.chains.step_auc"),
        "prm_chains_first_error_f1": prm.get("prm.chains.first_error_f1"),
    }
    return {k: _rounded(v) for k, v in row.items()}


def iterations_markdown(rows: list[dict]) -> str:
    """The rows as a markdown table (floats to 3 decimals), with what each column holds below."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else ("" if v is None else str(v))  # noqa: E731
    head = "| " + " | ".join(keys) + " |\n|" + "---|" * len(keys) + "\n"
    body = "".join("| " + " | ".join(fmt(r.get(k)) for k in keys) + " |\n" for r in rows)
    legend = "".join(f"- {k}: {ITERATION_COLUMNS[k]}\n" for k in keys if k in ITERATION_COLUMNS)
    return "## Iterations\n\n" + head + body + "\n" + legend


ARTIFACT_COLUMNS = {
    "iteration": "iteration",
    "candidate": "candidate_greedy_acc",
    "champion": "champion_greedy_acc",
    "gain": "gate_gain",
    "margin": "gate_noise_margin",
    "promoted": "promoted",
    "label bal. acc": "label_balanced_accuracy",
    "PRM AUC": "prm_chains_step_auc",
}
"""The across-iterations table as the Prefect artifact shows it: header -> row key. The few
columns a person reads first, with short headers, so it fits a page (:data:`ARTIFACT_NOTE`
says what they are); the full table is MLflow's ``iterations.md``."""
ARTIFACT_NOTE = (
    "Greedy accuracy of the candidate and of the champion, the gate's gain and noise margin, whether it promoted, "
    "the step labels' balanced accuracy and the PRM's step AUC (every column: iterations.md in the MLflow lifecycle run)"
)


def iterations_table(rows: list[dict]) -> list[dict[str, str]]:
    """Rows for a Prefect table artifact: :data:`ARTIFACT_COLUMNS`, numbers as text with 3
    decimals (a gain signed), ``yes``/``no``; a ``status`` column when a row has one (an
    iteration where nothing ran says so there).

    >>> iterations_table([{"iteration": 1, "candidate_greedy_acc": 0.27700000000000014, "gate_gain": 0.01, "promoted": True}])
    [{'iteration': '1', 'candidate': '0.277', 'champion': '', 'gain': '+0.010', 'margin': '', 'promoted': 'yes', 'label bal. acc': '', 'PRM AUC': ''}]
    """

    def text(key: str, v) -> str:
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, float):
            return f"{v:+.3f}" if key == "gate_gain" else f"{v:.3f}"
        return "" if v is None else str(v)

    status = any("status" in r for r in rows)
    return [{h: text(k, r.get(k)) for h, k in ARTIFACT_COLUMNS.items()} | ({"status": r.get("status", "")} if status else {}) for r in rows]
