"""The dead-step scorer: reward.reuse behind the scorers' API."""

import pytest

from prmflow.prm.reuse import ReuseScorer


def test_scores_each_step_by_whether_the_answer_uses_it():
    texts = ["b=5+3=8\ne=5*2=10\nc=8*2=16\n#### 16", "b=5+3=8\nc=8*2=16\n#### 16", "#### 16"]
    assert ReuseScorer().score(["P"] * 3, texts) == [[1.0, 0.0, 1.0], [1.0, 1.0], []]


def test_a_cut_off_last_step_is_not_scored_and_nothing_before_it_is_charged():
    assert ReuseScorer().score(["P"], ["b=5+3=8\ne=5*2=10\nc=8*"], finished=[False]) == [[1.0, 1.0]]


def test_one_finished_flag_per_solution():
    with pytest.raises(ValueError):
        ReuseScorer().score(["P", "P"], ["b=1\n#### 1", "b=1\n#### 1"], finished=[True])
