import pytest

from reward.length import group_length_penalty, overlong_penalty, right_length_penalty


def test_overlong_penalty_ramp():
    # budget 60, max 80: ramp of 20 tokens. 70 -> -(70-60)/20 = -0.5; 65 -> -0.25; 80 -> -1; 81 -> -1
    assert overlong_penalty([10, 60, 65, 70, 80, 81], 60, 80) == pytest.approx([0, 0, -0.25, -0.5, -1, -1])


def test_overlong_penalty_without_ramp_when_budget_reaches_max_len():
    assert overlong_penalty([80, 81], 80, 80) == [0.0, -1.0]
    assert overlong_penalty([79, 80, 81], 100, 80) == [0.0, 0.0, -1.0]


def test_overlong_penalty_rejects_bad_limits():
    with pytest.raises(ValueError):
        overlong_penalty([1], -1, 80)
    with pytest.raises(ValueError):
        overlong_penalty([1], 10, 0)


def test_group_length_penalty_two_groups():
    # group 1 lengths [10, 20, 30], min 10, max 30: lam = 0.5 - (len-10)/20 = [0.5, 0, -0.5]
    #   correct [T, F, F] -> [0.5, min(0, 0)=0, min(0, -0.5)=-0.5]
    # group 2 lengths [30, 10, 20]: lam = [-0.5, 0.5, 0]; correct [T, F, T] -> [-0.5, 0.0, 0.0]
    out = group_length_penalty([10, 20, 30, 30, 10, 20], [True, False, False, True, False, True], 3)
    assert out == pytest.approx([0.5, 0.0, -0.5, -0.5, 0.0, 0.0])


def test_group_length_penalty_quarter_steps():
    # lengths [10, 15, 30]: lam = 0.5 - [0, 5, 20]/20 = [0.5, 0.25, -0.5]; all correct
    assert group_length_penalty([10, 15, 30], [True] * 3, 3) == pytest.approx([0.5, 0.25, -0.5])


def test_group_length_penalty_equal_lengths_is_zero():
    assert group_length_penalty([7, 7], [True, False], 2) == [0.0, 0.0]


def test_group_length_penalty_checks_shapes():
    with pytest.raises(ValueError):
        group_length_penalty([1, 2, 3], [True] * 3, 2)
    with pytest.raises(ValueError):
        group_length_penalty([1, 2], [True], 2)


def test_the_group_length_term_is_registered_and_reads_the_verdicts():
    from reward import REWARDS
    from reward.outcome import Verdict

    term = REWARDS.get("length_group")
    texts = ["a\n#### 1", "a\nb\n#### 1", "a\nb\nc\n#### 2", "#### 1"]
    # group 1: lengths 2, 4, both right: +0.5, -0.5; group 2: 6 (wrong: min(0, -0.5)), 1 (right): -0.5, +0.5
    out = term(texts, num_tokens=[2, 4, 6, 1], group_size=2, answers=["1", "1", "1", "1"])
    assert out == [0.5, -0.5, -0.5, 0.5]
    given = [Verdict.WRONG, Verdict.CORRECT, Verdict.CORRECT, Verdict.CORRECT]
    assert term(texts, num_tokens=[2, 4, 6, 1], group_size=2, verdicts=given) == [0.0, -0.5, -0.5, 0.5]


def test_right_length_penalty_ranks_only_the_right_completions_by_hand():
    # group 1 (G=4): right lengths 40, 60 (and 50): +0.5, -0.5, 0.0; the short wrong one (10) sets nothing
    # group 2: one right completion: nothing to compare it with, so 0; the wrong ones 0 whatever their length
    n = [40, 10, 60, 50] + [30, 5, 90, 70]
    ok = [True, False, True, True] + [True, False, False, False]
    assert right_length_penalty(n, ok, 4) == [0.5, 0.0, -0.5, 0.0] + [0.0] * 4
    # Kimi's version on the same group 1 ranks against the wrong 10 too: the right 40 gets 0.5 - 30/50
    assert group_length_penalty(n[:4], ok[:4], 4)[0] == pytest.approx(-0.1)
    with pytest.raises(ValueError, match="not a multiple"):
        right_length_penalty([1, 2, 3], [True] * 3, 2)


def test_the_right_only_length_term_is_registered():
    from reward import REWARDS
    from reward.outcome import Verdict

    term = REWARDS.get("length_group_right")
    given = [Verdict.CORRECT, Verdict.WRONG, Verdict.CORRECT, Verdict.CORRECT]
    assert term(["x"] * 4, num_tokens=[3, 1, 9, 6], group_size=4, verdicts=given) == [0.5, 0.0, -0.5, 0.0]
