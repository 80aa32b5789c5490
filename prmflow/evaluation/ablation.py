"""Summaries of an RL ablation (outcome-only vs hybrid arms over seeds): pure functions.

Input per run: the arm, the seed, the learning curve (``[(rl_step, eval_greedy_acc), ...]``),
the final evaluation report (``metrics/eval.json``) and the RL summary. The questions answered:
how many steps a hybrid arm needs to reach the outcome-only arm's final accuracy, how each arm
ends on the hardest chains, and how long each arm reasons.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prmflow.evaluation.metrics import mean

BASELINE = "outcome_only"
ARMS: dict[str, list[str]] = {
    "outcome_only": ["rl.weights.process=0.0"],
    "hybrid_seq": ["rl.process_mode=sequence"],
    "hybrid_step_sum": ["rl.process_mode=step_sum"],
    "hybrid_step_min": ["rl.process_mode=step_min"],
}
"""Overrides per arm; the hybrid arms keep ``rl.weights.process`` from params.yaml + the run's
overrides, which must be > 0 (``flows.ablate.check_arms`` refuses 0)."""


@dataclass
class ArmRun:
    arm: str
    seed: int
    curve: list[tuple[int, float]]
    """(RL step, greedy eval accuracy), step 0 first."""
    report: dict = field(default_factory=dict)


def mean_curve(runs: list[ArmRun]) -> list[tuple[int, float]]:
    """Accuracy per step averaged over the runs (steps present in every run)."""
    if not runs:
        return []
    steps = set.intersection(*(set(s for s, _ in r.curve) for r in runs))
    return [(s, mean([dict(r.curve)[s] for r in runs])) for s in sorted(steps)]


def steps_to_reach(curve: list[tuple[int, float]], target: float) -> int | None:
    """First step at which ``curve`` reaches ``target`` (``None``: never)."""
    for step, acc in curve:
        if acc >= target:
            return step
    return None


def hardest(report: dict) -> str | None:
    by = report.get("by_difficulty", {})
    return max(by, key=int) if by else None


def summarize(runs: list[ArmRun]) -> dict[str, dict]:
    """Per arm: final accuracy, hardest-split accuracy, mean tokens/steps, steps to baseline.

    ``steps_to_baseline_final``: first step after the start where the arm's mean curve reaches
    the outcome-only arm's mean final accuracy; ``fraction_of_baseline_steps`` divides it by the
    baseline's number of steps (the issue's "<= 50%" target). Both are absent when the baseline
    did not end above its start (then every arm "reaches" it at step 0, which says nothing).
    """
    arms: dict[str, list[ArmRun]] = {}
    for r in runs:
        arms.setdefault(r.arm, []).append(r)
    base_curve = mean_curve(arms.get(BASELINE, []))
    base_final = base_curve[-1][1] if base_curve else None
    base_steps = base_curve[-1][0] if base_curve else None
    if base_curve and base_final <= base_curve[0][1]:
        base_final = None  # the baseline ended no better than it started: "steps to reach it" is 0 for anyone
    out: dict[str, dict] = {}
    for arm, rs in arms.items():
        curve = mean_curve(rs)
        hard = [hardest(r.report) for r in rs]
        row = {
            "seeds": sorted(r.seed for r in rs),
            "start_greedy_acc": curve[0][1] if curve else None,
            "final_greedy_acc": mean([r.report["overall"]["greedy_acc"] for r in rs if r.report]),
            "final_pass@1": mean([r.report["overall"]["pass@1"] for r in rs if r.report]),
            "hardest_difficulty": hard[0],
            "hardest_greedy_acc": mean([r.report["by_difficulty"][h]["greedy_acc"] for r, h in zip(rs, hard) if h]),
            "mean_tokens": mean([r.report["overall"]["len_tokens_mean"] for r in rs if r.report]),
            "mean_steps": mean([r.report["overall"]["len_steps_mean"] for r in rs if r.report]),
            "curve": curve,
        }
        if base_final is not None:
            reach = steps_to_reach(curve[1:], base_final)
            row["steps_to_baseline_final"] = reach
            row["fraction_of_baseline_steps"] = reach / base_steps if reach is not None and base_steps else None
        out[arm] = row
    if BASELINE in out:
        b = out[BASELINE]
        for row in out.values():
            row["tokens_vs_baseline"] = row["mean_tokens"] / b["mean_tokens"] - 1 if b["mean_tokens"] else None
            row["hardest_vs_baseline"] = row["hardest_greedy_acc"] - b["hardest_greedy_acc"]
    return out


def _fmt(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:+.3f}" if v < 0 else f"{v:.3f}"
    return str(v)


def markdown(summary: dict[str, dict]) -> str:
    cols = [
        "start_greedy_acc",
        "final_greedy_acc",
        "final_pass@1",
        "hardest_greedy_acc",
        "hardest_vs_baseline",
        "mean_tokens",
        "tokens_vs_baseline",
        "steps_to_baseline_final",
        "fraction_of_baseline_steps",
    ]
    lines = ["| arm | seeds | " + " | ".join(cols) + " |", "|---" * (len(cols) + 2) + "|"]
    for arm, row in summary.items():
        lines.append(f"| {arm} | {len(row['seeds'])} | " + " | ".join(_fmt(row.get(c)) for c in cols) + " |")
    return "\n".join(lines) + "\n"
