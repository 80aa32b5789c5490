"""The label report: agreement beside the trivial labellers' (all good, all bad), by hand."""

from __future__ import annotations

import pytest

from prmflow.labeling.report import comparison_table, trivial_baselines

ORACLE = [[True, False, False], [False]]  # 4 steps, 3 bad: the oracle's bad-step rate is 0.75


def test_trivial_baselines_by_hand():
    b = trivial_baselines(ORACLE)
    # all good: right on the 1 good step of 4; finds no bad step (F1 0); first errors (1, 0) vs none
    assert b["baseline.all_good.step_agreement"] == 0.25
    assert b["baseline.all_good.balanced_accuracy"] == 0.5
    assert b["baseline.all_good.bad_f1"] == 0.0
    assert b["baseline.all_good.first_error_acc"] == 0.0
    # all bad: agreement = the bad rate 0.75; bad precision 3/4, recall 1: F1 = 2 * 0.75 / 1.75
    assert b["baseline.all_bad.step_agreement"] == 0.75
    assert b["baseline.all_bad.balanced_accuracy"] == 0.5
    assert b["baseline.all_bad.bad_f1"] == pytest.approx(6 / 7)
    assert b["baseline.all_bad.first_error_acc"] == 0.5  # predicted first error 0: right for solution 1 only
    assert trivial_baselines([]) == {}


def test_comparison_table_prints_agreement_beside_the_baselines():
    metrics = {
        "num_labelled_solutions": 2,
        "skipped_no_steps": 0,
        "policy_solve_rate": 0.5,
        "oracle.bad_rate": 0.75,
        **trivial_baselines(ORACLE),
        "mc_hard.rollouts": 8,
        "mc_hard.rollouts_per_step": 2.0,
        "mc_hard.step_agreement": 0.8,
        "mc_hard.oracle_bad_rate": 0.75,
        "mc_hard.balanced_accuracy": 0.7,
        "mc_hard.bad_precision": 1.0,
        "mc_hard.bad_recall": 0.5,
        "mc_hard.bad_f1": 2 / 3,
        "mc_hard.first_error_acc": 0.5,
    }
    lines = comparison_table(metrics).splitlines()
    assert lines[0] == (
        "| method | step_agreement | all-good / all-bad agreement, same steps | balanced_accuracy | bad_precision | bad_recall "
        "| bad_f1 | first_error_acc | perfect_completer_agreement | rollouts_per_step |"
    )
    assert "| mc_hard | 0.800 | 0.250 / 0.750 | 0.700 | 1.000 | 0.500 | 0.667 | 0.500 | n/a | 2.000 |" in lines
    assert "| baseline: all good | 0.250 | 0.250 / 0.750 | 0.500 | 0.000 | 0.000 | 0.000 | 0.000 | n/a | 0 |" in lines
    assert "| baseline: all bad | 0.750 | 0.250 / 0.750 | 0.500 | 0.750 | 1.000 | 0.857 | 0.500 | n/a | 0 |" in lines


def test_label_quality_by_step_position_by_hand():
    from prmflow.labeling.methods import MethodLabels
    from prmflow.labeling.report import by_position
    from prmflow.labeling.solutions import Solution

    labelled = [Solution({}, 0, "", "", ["a", "b", "c"], False, o) for o in ORACLE]  # ORACLE[1]: 1 step
    labelled.append(Solution({}, 0, "", "", ["a"], True, None))  # no oracle: not counted
    chosen = MethodLabels([0, 1, 2], [[True, False, True], [True], [True]], [], [])  # solution 0: right on steps 1, 2; 1: wrong
    subset = MethodLabels([0], [[True, False, False]], [], [])  # labelled solution 0 only
    rows = by_position({"mc_soft": chosen, "first_error": subset}, labelled)
    assert rows == [
        {"step": 1, "mc_soft": 0.5, "first_error": 1.0, "all_bad": 0.5, "steps": 2},  # oracle: good, bad
        {"step": 2, "mc_soft": 1.0, "first_error": 1.0, "all_bad": 1.0, "steps": 1},
        {"step": 3, "mc_soft": 0.0, "first_error": 1.0, "all_bad": 1.0, "steps": 1},
    ]


def test_the_perfect_completer_bounds_rollout_labels_by_hand():
    from prmflow.labeling.methods import MethodLabels
    from prmflow.labeling.report import method_metrics, run_metrics
    from prmflow.labeling.solutions import Solution

    # solution 0: its 2nd step is wrong, but the answer survives it (reachable to the end);
    # solution 1: one wrong step that loses the answer
    labelled = [
        Solution({}, 0, "", "", ["a", "b", "c"], False, ORACLE[0], reachable=[True, True, True]),
        Solution({}, 0, "", "", ["a"], False, ORACLE[1], reachable=[False]),
    ]
    m = run_metrics(labelled, labelled)
    assert m["baseline.perfect_completer.step_agreement"] == 0.5  # steps b, c: reachable, oracle-bad
    assert m["baseline.perfect_completer.bad_recall"] == 1 / 3 and m["baseline.perfect_completer.bad_precision"] == 1.0
    # a method whose completer missed step a (labelled bad): 1 of 4 steps off the perfect completer
    ml = MethodLabels([0, 1], [[False, True, True], [False]], [[0.0, 1.0, 1.0], [0.0]], [8, 8])
    mm = method_metrics("mc_soft", ml, labelled)
    assert mm["mc_soft.perfect_completer_agreement"] == 0.75 and mm["mc_soft.step_agreement"] == 0.25
    assert "| baseline: perfect completer | 0.500 |" in comparison_table({**m, "num_labelled_solutions": 2, "policy_solve_rate": 0.0})
