"""The oracle step scorer: the synthetic task's prefix labels, with the scorers' API."""

import pytest

from prmflow.prm.oracle import OracleScorer

Q = "a=5;b=a+3;c=b*2;c=?"  # b = 8, c = 16


def test_oracle_scores_each_step_by_prefix_correctness():
    scorer = OracleScorer({"P\n": Q})
    right = "b=5+3=8\nc=8*2=16\n#### 16"
    wrong_first = "b=5+4=9\nc=9*2=18\n#### 18"
    wrong_second = "b=5+3=8\nc=8*2=17\n#### 17"
    assert scorer.score(["P\n"] * 3, [right, wrong_first, wrong_second]) == [[1.0, 1.0], [0.0, 0.0], [1.0, 0.0]]


def test_oracle_needed_also_scores_a_right_distractor_step_zero():
    """``e`` is a distractor: right but wasted, so 0 with ``needed``, 1 without; a step after a
    wrong one stays 0 either way, and needed steps after a distractor score 1 again."""
    q = "a=5;b=a+3;e=a*2;c=b*2;c=?"  # b = 8, e = 10 (not needed), c = 16
    verbose = "b=5+3=8\ne=5*2=10\nc=8*2=16\n#### 16"
    wrong = "b=5+4=9\ne=5*2=10\nc=9*2=18\n#### 18"
    assert OracleScorer({"P\n": q}, needed=True).score(["P\n"] * 2, [verbose, wrong]) == [[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
    assert OracleScorer({"P\n": q}).score(["P\n"], [verbose]) == [[1.0, 1.0, 1.0]]


def test_a_cut_off_last_step_is_not_scored_and_no_steps_score_nothing():
    scorer = OracleScorer({"P\n": Q})
    assert scorer.score(["P\n", "P\n"], ["b=5+3=8\nc=8*", "#### 16"], finished=[False, True]) == [[1.0], []]


def test_an_unknown_prompt_or_a_free_form_step_split_is_refused():
    with pytest.raises(KeyError, match="no synthetic problem"):
        OracleScorer({"P\n": Q}).score(["other\n"], ["b=5+3=8\n#### 8"])
    with pytest.raises(ValueError, match="rl.process_scorer"):
        OracleScorer({"P\n": Q}, step_split="sentence")
