"""The dead-step scorer: reward.reuse behind the scorers' API, on right solutions only."""

import pytest

from prmflow.prm.reuse import ReuseScorer

VERBOSE, DIRECT = "b=5+3=8\ne=5*2=10\nc=8*2=16\n#### 16", "b=5+3=8\nc=8*2=16\n#### 16"


def test_scores_each_step_of_a_right_solution_by_whether_the_answer_uses_it():
    assert ReuseScorer({"P": "16"}).score(["P"] * 2, [VERBOSE, DIRECT]) == [[1.0, 0.0, 1.0], [1.0, 1.0]]


def test_a_wrong_solution_is_not_scored():
    # its chain is broken: b's 8 is unused because c read 9, which marks b, the right step, as dead
    wrong = "b=5+3=8\nc=9*2=18\n#### 18"
    assert ReuseScorer({"P": "16"}).score(["P", "P"], [wrong, "#### 16"]) == [[], []]


def test_a_cut_off_solution_has_no_answer_so_it_is_not_scored():
    assert ReuseScorer({"P": "16"}).score(["P"], ["b=5+3=8\ne=5*2=10\nc=8*"], finished=[False]) == [[]]


def test_an_unknown_prompt_or_a_missing_finished_flag_is_an_error():
    with pytest.raises(KeyError, match="no reference answer"):
        ReuseScorer({"P": "16"}).score(["Q"], [DIRECT])
    with pytest.raises(ValueError):
        ReuseScorer({"P": "16"}).score(["P", "P"], [DIRECT, DIRECT], finished=[True])
