import math

import pytest

from prmflow.evaluation.metrics import majority_vote, pass_at_k, percentile, summarize


def test_pass_at_k_hand_computed():
    assert pass_at_k(4, 0, 1) == 0.0
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    # 1 - C(2,2)/C(4,2) = 1 - 1/6
    assert pass_at_k(4, 2, 2) == pytest.approx(5 / 6)
    assert pass_at_k(4, 3, 2) == 1.0
    with pytest.raises(ValueError):
        pass_at_k(2, 1, 3)


def test_majority_vote_ties_and_none():
    assert majority_vote(["3", "4", "4", None]) == "4"
    assert majority_vote(["5", "6"]) == "5"
    assert majority_vote([None, None]) is None


def test_percentiles_and_summary():
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90) == pytest.approx(9.1)
    s = summarize([2, 4, 9])
    assert s == {"mean": 5.0, "median": 4.0, "p90": pytest.approx(8.0)}
    assert math.isnan(summarize([])["mean"])
