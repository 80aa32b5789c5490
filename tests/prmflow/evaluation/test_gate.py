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


def test_every_monitor_is_listed_as_checked_skipped_or_tripped():
    # step_inflation 1.2 <= 1.5: checked; prm_outcome_disagreement has no value (no PRM): skipped
    # with the caller's reason; prm_high_on_wrong has a value but no threshold: skipped, not checked.
    d = decide(
        [1, 1, 1, 0],
        None,
        monitors={"step_inflation": 1.2, "prm_high_on_wrong": 0.25},
        thresholds={"step_inflation": 1.5, "prm_outcome_disagreement": 0.5},
        skipped={"prm_outcome_disagreement": "no PRM"},
    )
    assert d.promote
    assert d.to_dict()["monitors"] == [
        {"name": "step_inflation", "status": "checked", "value": 1.2, "threshold": 1.5, "note": ""},
        {"name": "prm_outcome_disagreement", "status": "skipped", "value": None, "threshold": 0.5, "note": "no PRM"},
        {"name": "prm_high_on_wrong", "status": "skipped", "value": 0.25, "threshold": None, "note": "no threshold: reported only"},
    ]
    assert d.reason == (
        "no champion yet; monitors: step_inflation 1.200 <= 1.500, prm_outcome_disagreement skipped (no PRM), "
        "prm_high_on_wrong skipped (no threshold: reported only)"
    )


def test_all_tripped_monitors_are_named_and_nan_is_not_a_pass():
    d = decide(
        [1, 1],
        [0, 0],
        monitors={"a": 2.0, "b": 0.9, "c": math.nan},
        thresholds={"a": 1.5, "b": 0.5, "c": 0.5},
    )
    assert not d.promote
    assert [c["status"] for c in d.to_dict()["monitors"]] == ["tripped", "tripped", "skipped"]
    assert d.monitors[2].note == "no value"  # nan: not computed, so not a pass either
    assert d.reason.startswith("monitor tripped: a 2.000 > 1.500, b 0.900 > 0.500;")
    assert (d.candidate, d.champion, d.diff, d.margin) == (1.0, 0.0, 1.0, 0.0)
    # a monitor missing with no reason given still shows up
    e = decide([1], None, monitors={}, thresholds={"a": 1.0})
    assert e.to_dict()["monitors"][0]["note"] == "no value"
