"""benchmarks/label_rollouts.py: labels and costs by rollout count, by hand."""

from __future__ import annotations

import pytest

from benchmarks.label_rollouts import agreement_rows


def test_more_rollouts_turn_a_false_bad_good_and_cost_only_where_all_failed():
    # One wrong-answer solution of 2 steps: step 0 right (its 10th rollout succeeds), step 1 wrong.
    streams = {(0, 0): [False] * 9 + [True] + [False] * 6, (0, 1): [False] * 16}
    truth = [[True, False]]
    r8, r16 = agreement_rows(streams, [2], [False], truth, truth, [8, 16])
    assert r8["rollouts"] == 8 and r8["mc_hard"] == r8["first_error"] == 0.5  # step 0 read bad
    assert r8["bad_precision"] == 0.5 and r8["bad_recall"] == 1.0
    assert r8["adaptive_rollouts_vs_8"] == 1.0  # 8 + 8 of 16
    assert r16["mc_hard"] == r16["first_error"] == r16["mc_hard_vs_reachable"] == 1.0
    assert r16["adaptive_rollouts_vs_8"] == pytest.approx((10 + 16) / 16)  # stops at its success


def test_right_answer_solutions_need_no_stream():
    rows = agreement_rows({}, [3], [True], [[True, True, False]], [[True, True, True]], [8])
    assert rows[0]["mc_hard"] == pytest.approx(2 / 3) and rows[0]["mc_hard_vs_reachable"] == 1.0
    assert rows[0]["adaptive_rollouts_vs_8"] is None  # nothing was rolled out
