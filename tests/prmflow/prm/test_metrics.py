"""PRM metrics on hand-computed cases."""

from __future__ import annotations

import math

import pytest

from prmflow.prm.metrics import (
    best_of_n,
    best_threshold,
    first_error_f1,
    predicted_first_error,
    roc_curve,
    step_metrics,
)

# Four solutions; truth T = still right.
SCORES = [[0.9, 0.8, 0.1], [0.9, 0.3], [0.7, 0.6], [0.2, 0.9]]
LABELS = [[True, True, False], [True, True], [True, True], [False, False]]


def test_step_metrics_by_hand():
    m = step_metrics(SCORES, LABELS, threshold=0.5)
    # good steps: 0.9 0.8 0.9 0.3 0.7 0.6 (6); bad: 0.1 0.2 0.9 (3).
    # pairs good > bad: 0.9:2+tie(0.9)=2.5; 0.8:2; 0.9:2.5; 0.3:2; 0.7:2; 0.6:2 -> 13 / 18
    assert m["auc"] == pytest.approx(13 / 18)
    # predicted bad (score < 0.5): 0.1 (bad), 0.3 (good), 0.2 (bad) -> tp 2, fp 1, fn 1 (the 0.9)
    assert m["bad_precision"] == pytest.approx(2 / 3)
    assert m["bad_recall"] == pytest.approx(2 / 3)
    assert m["bad_f1"] == pytest.approx(2 / 3)
    assert m["step_agreement"] == pytest.approx(7 / 9)


def test_step_auc_none_when_one_class_is_absent():
    assert step_metrics([[0.2, 0.3]], [[True, True]])["auc"] is None


def test_predicted_first_error():
    assert predicted_first_error([0.9, 0.8, 0.1]) == 2
    assert predicted_first_error([0.9, 0.3, 0.9]) == 1
    assert predicted_first_error([0.6, 0.7]) is None
    assert predicted_first_error([0.6, 0.7], threshold=0.65) == 0
    assert predicted_first_error([]) is None


def test_first_error_f1_by_hand():
    m = first_error_f1(SCORES, LABELS, threshold=0.5)
    # erroneous: #0 (truth 2, pred 2: hit), #3 (truth 0, pred 0: hit) -> 2/2
    # correct: #1 (pred 1: miss), #2 (pred None: hit) -> 1/2
    assert (m["num_erroneous"], m["num_correct"]) == (2, 2)
    assert m["acc_erroneous"] == 1.0 and m["acc_correct"] == 0.5
    assert m["f1"] == pytest.approx(2 * 1.0 * 0.5 / 1.5)


def test_first_error_f1_wrong_index_is_a_miss_and_degenerate_cases():
    # error predicted too late and too early both miss
    m = first_error_f1([[0.9, 0.9, 0.1], [0.1, 0.9, 0.9]], [[True, False, False], [True, False, False]])
    assert m["acc_erroneous"] == 0.0 and m["f1"] == 0.0
    only_correct = first_error_f1([[0.9]], [[True]])
    assert math.isnan(only_correct["acc_erroneous"]) and only_correct["f1"] == 1.0
    with pytest.raises(ValueError, match="solution 0"):
        first_error_f1([[0.9]], [[True, True]])


def test_best_threshold_picks_the_best_f1_closest_to_half():
    # any t in (0.3, 0.6] makes every prediction right on this data; 0.5 is in that range
    assert best_threshold(SCORES[1:3], [[True, False], [True, True]]) == 0.5
    # only t in (0.05, 0.2] works
    assert best_threshold([[0.2, 0.05]], [[True, False]]) == 0.2
    assert best_threshold([[0.2, 0.05]], [[True, False]], grid=[0.5, 0.1]) == 0.1


def test_best_of_n_by_hand():
    scores = [
        # problem 0 (answer 5): min picks #1 (0.6), product picks #1 (0.36 vs 0.27 vs 0.2), last picks #0 (0.9)
        [[0.3, 0.9], [0.6, 0.6], [0.2]],
        # problem 1 (answer 8): every rule picks #0
        [[0.9], [0.1], []],
    ]
    answers = [["4", "5", "4"], ["8", "2", "2"]]
    r = best_of_n(scores, answers, ["5", "8"])
    assert r["prm_min"] == 1.0
    assert r["prm_product"] == 1.0
    assert r["prm_last"] == 0.5
    assert r["majority"] == 0.0  # "4" and "2" win the votes
    assert r["random"] == pytest.approx((1 / 3 + 1 / 3) / 2)
    assert r["oracle"] == 1.0 and r["num_problems"] == 2


def test_best_of_n_ties_go_to_the_first_and_majority_ties_to_the_first_seen():
    r = best_of_n([[[0.5], [0.5]]], [["1", "2"]], ["2"])
    assert r["prm_min"] == 0.0 and r["majority"] == 0.0
    with pytest.raises(ValueError, match="problem 0"):
        best_of_n([[[0.5]]], [["1", "2"]], ["2"])


def test_roc_curve_by_hand():
    pts = roc_curve(SCORES, LABELS)
    assert pts[0] == (0.0, 0.0) and pts[-1] == (1.0, 1.0)
    # highest score 0.9: three steps, two good and one bad
    assert pts[1] == pytest.approx((1 / 3, 2 / 6))
    assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in zip(pts, pts[1:]))
