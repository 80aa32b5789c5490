"""Reports for people: the gate's monitors and the across-iterations table, from hand-made metrics."""

from __future__ import annotations

import json

from prmflow.evaluation.gate import decide
from prmflow.evaluation.tables import eval_markdown, format_table, iteration_row, iterations_markdown

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


def write_metrics(root, **by_file) -> None:
    (root / "metrics").mkdir()
    for name, data in by_file.items():
        (root / "metrics" / f"{name}.json").write_text(json.dumps(data))


def test_iteration_row_puts_like_beside_like_and_rounds(tmp_path):
    write_metrics(
        tmp_path,
        eval={
            "overall": {"greedy_acc": 0.4, "pass@1": 0.35, "len_tokens_mean": 31.25},
            "champion": {"overall": {"greedy_acc": 0.3, "pass@1": 0.2, "len_tokens_mean": 28.0}},
            # gate scores: mean over problems of (greedy + samples right) / (1 + samples)
            "gate": {
                "candidate": 5 / 12,
                "champion": 0.375,
                "diff": 1 / 24,
                "margin": 0.1,
                "promote": False,
                "reason": "gain +0.042 within noise margin 0.100",
            },
        },
        label={
            "method": "mc_hard",
            "mc_hard.step_agreement": 0.8,
            "mc_hard.balanced_accuracy": 5 / 7,
            "baseline.all_bad.step_agreement": 0.72,
        },
        prm={"prm.chains.step_auc": 0.9123456, "prm.chains.first_error_f1": 0.5},
        train_policy={"eval_greedy_acc_end": 0.45},
    )
    row = iteration_row(2, tmp_path)
    assert row == {
        "iteration": 2,
        "candidate_greedy_acc": 0.4,
        "champion_greedy_acc": 0.3,
        "candidate_pass@1": 0.35,
        "champion_pass@1": 0.2,
        "candidate_gate_score": 0.417,
        "champion_gate_score": 0.375,
        "gate_gain": 0.042,
        "gate_noise_margin": 0.1,
        "promoted": False,
        "gate_reason": "gain +0.042 within noise margin 0.100",
        "candidate_greedy_tokens_mean": 31.25,
        "label_step_agreement": 0.8,
        "label_all_bad_step_agreement": 0.72,
        "label_balanced_accuracy": 0.714,
        "rl_eval_greedy_acc_end": 0.45,
        "prm_chains_step_auc": 0.912,
        "prm_chains_first_error_f1": 0.5,
    }
    md = iterations_markdown([row])
    assert "| iteration | candidate_greedy_acc | champion_greedy_acc | candidate_pass@1 |" in md
    assert "| 2 | 0.400 | 0.300 | 0.350 | 0.200 | 0.417 | 0.375 | 0.042 | 0.100 | False |" in md
    assert "- candidate_gate_score: " in md and "- champion_greedy_acc: " in md  # a legend says what each column is


def test_iteration_row_without_a_gate_leaves_the_champion_blank(tmp_path):
    write_metrics(tmp_path, eval={"overall": {"greedy_acc": 0.25, "pass@1": 0.125, "len_tokens_mean": 10.0}})
    row = iteration_row(1, tmp_path)
    assert row["candidate_greedy_acc"] == 0.25 and row["champion_greedy_acc"] is None
    assert row["gate_reason"] == "no gate" and row["champion_gate_score"] is None
    assert "| 1 | 0.250 |  |" in iterations_markdown([row])


def test_the_prefect_table_keeps_the_columns_a_person_reads_as_rounded_text():
    from prmflow.evaluation.tables import iterations_table

    rows = [
        {"iteration": 1, "candidate_greedy_acc": 0.27700000000000014, "champion_greedy_acc": 0.25, "gate_gain": -1 / 30, "promoted": False},
        {"iteration": 2, "status": "nothing changed since evaluate run 1a2b3c4d of 2026-11-27 10:00"},
    ]
    table = iterations_table(rows)
    assert table[0] == {
        "iteration": "1",
        "candidate": "0.277",
        "champion": "0.250",
        "gain": "-0.033",
        "margin": "",
        "promoted": "no",
        "label bal. acc": "",
        "PRM AUC": "",
        "status": "",
    }
    assert table[1]["iteration"] == "2" and table[1]["status"].startswith("nothing changed") and table[1]["candidate"] == ""
    assert "status" not in iterations_table(rows[:1])[0]  # only when a row has one
