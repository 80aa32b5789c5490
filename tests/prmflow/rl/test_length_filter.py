"""rl.filter_groups_by: outcome_or_length: which groups dynamic sampling keeps for a group length term."""

import pytest

from prmflow.config import Params
from prmflow.rl.trainer import informative_groups, length_informative_groups


def test_all_right_groups_count_only_when_their_lengths_differ_by_hand():
    G = 3
    right = [True, False, True] + [True, True, True] + [True, True, True] + [False, False, False]
    n_tokens = [40, 12, 40] + [40, 58, 40] + [40, 40, 40] + [30, 50, 70]
    # 0: outcomes differ; 1: all right, a verbose one among direct ones; 2: all right, one length;
    # 3: all wrong (a length term over right completions gives it nothing, and Kimi's only brevity)
    assert informative_groups(right, G) == [0]
    assert length_informative_groups(right, n_tokens, G) == [0, 1]


def test_the_filter_needs_a_group_length_term():
    with pytest.raises(ValueError, match="outcome_or_length keeps all-right groups for a group length term"):
        Params.model_validate({"rl": {"filter_groups_by": "outcome_or_length"}})
    for term in ("length_group", "length_group_right"):
        Params.model_validate({"rl": {"filter_groups_by": "outcome_or_length", "weights": {term: 0.5}}})


def test_with_reuse_scores_the_process_filter_keeps_all_right_groups_with_a_dead_step_and_no_all_wrong_one():
    """rl.filter_groups_by: process with the reuse scorer (arm reuse_step_own_keep): wrong
    solutions have no step scores, so an all-wrong group has no step signal and is dropped."""
    from prmflow.prm.reuse import ReuseScorer
    from prmflow.rl.trainer import process_informative_groups

    direct, verbose, wrong = "b=5+3=8\nc=8*2=16\n#### 16", "b=5+3=8\ne=5*2=10\nc=8*2=16\n#### 16", "b=5+3=8\nc=8*2=17\n#### 17"
    # 0: outcomes differ; 1: all right, one wastes a step; 2: all right and direct; 3: all wrong
    texts = [direct, wrong] + [direct, verbose] + [direct, direct] + [wrong, wrong]
    right = [t != wrong for t in texts]
    scores = ReuseScorer({"P": "16"}).score(["P"] * len(texts), texts)
    assert scores[6:] == [[], []]
    assert process_informative_groups(right, scores, 2, step_mode=True) == [0, 1]
