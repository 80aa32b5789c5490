import math

import pytest

from prmflow.evaluation.gate import decide, paired_margin


def test_paired_margin_hand_computed():
    # d = [1, 0, 0, 1]: mean 0.5, sample var = (0.25*4)/3 = 1/3, se = sqrt(1/12)
    diff, margin = paired_margin([1, 1, 0, 1], [0, 1, 0, 0], z=2.0)
    assert diff == 0.5
    assert margin == pytest.approx(2 * math.sqrt(1 / 12))
    assert paired_margin([1], [0], 2.0)[1] == math.inf
    with pytest.raises(ValueError):
        paired_margin([1, 0], [1], 2.0)


def test_first_candidate_becomes_champion():
    d = decide([1, 0, 1], None)
    assert d.promote and d.reason == "no champion yet"


def test_worse_or_equal_candidate_never_promoted():
    assert not decide([0, 0, 1, 0], [1, 1, 1, 0]).promote
    assert not decide([1, 0] * 50, [1, 0] * 50).promote


def test_gain_within_noise_is_not_promoted_but_clear_gain_is():
    # one extra problem solved out of 100: well inside the noise
    small = decide([1] * 51 + [0] * 49, [1] * 50 + [0] * 50, z=2.0)
    assert not small.promote and "noise margin" in small.reason
    big = decide([1] * 80 + [0] * 20, [1] * 40 + [0] * 60, z=2.0)
    assert big.promote and big.diff == pytest.approx(0.4)


def test_monitor_over_threshold_refuses_even_a_better_candidate():
    d = decide([1] * 90 + [0] * 10, [0] * 100, monitors={"step_inflation": 2.0}, thresholds={"step_inflation": 1.5})
    assert not d.promote and "step_inflation" in d.reason
    ok = decide([1] * 90 + [0] * 10, [0] * 100, monitors={"step_inflation": 1.1}, thresholds={"step_inflation": 1.5})
    assert ok.promote
