"""Reports for people: the gate's monitors and the across-iterations table, from hand-made metrics."""

from __future__ import annotations

from prmflow.evaluation.gate import decide
from prmflow.evaluation.tables import eval_markdown, format_table

OVERALL = {"n": 4, "greedy_acc": 0.5, "pass@1": 0.25, "maj@2": 0.5, "pass@2": 0.75, "len_tokens_mean": 20.0, "len_steps_mean": 2.0}


def report_with_gate() -> dict:
    d = decide(
        [1, 1, 0, 1],
        [1, 0, 0, 1],
        monitors={"step_inflation": 1.25},
        thresholds={"step_inflation": 1.5, "prm_outcome_disagreement": 0.5},
        skipped={"prm_outcome_disagreement": "no PRM"},
    )
    return {"by_difficulty": {}, "overall": OVERALL, "policy": "candidate", "gate": d.to_dict(), "monitors": {"step_inflation": 1.25}}


def test_eval_markdown_lists_every_monitor_with_its_status():
    md = eval_markdown(report_with_gate(), 2)
    assert "| monitor | value | threshold | status |" in md
    assert "| step_inflation | 1.250 | 1.500 | checked |" in md
    assert "| prm_outcome_disagreement | n/a | 0.500 | skipped: no PRM |" in md


def test_terminal_table_lists_every_monitor():
    text = format_table(report_with_gate(), 2)
    assert "monitors: step_inflation 1.250 <= 1.500, prm_outcome_disagreement skipped (no PRM)" in text
