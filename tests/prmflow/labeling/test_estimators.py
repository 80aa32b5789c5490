"""Step-label estimators and their agreement metrics, on hand-computed cases."""

from __future__ import annotations

import math

import pytest

from prmflow.labeling.estimators import (
    first_error_search,
    first_false,
    good_auc,
    known_good,
    label_agreement,
    mc_hard,
    mc_soft,
    probe_verdict,
    probe_waves,
)


def fake_policy(success_rates: list[float], rollouts: int) -> list[list[bool]]:
    """Deterministic rollouts: prefix k succeeds in round(rate_k * R) of its R rollouts."""
    return [[j < round(p * rollouts) for j in range(rollouts)] for p in success_rates]


# --- Monte-Carlo --------------------------------------------------------------------------------


def test_mc_soft_is_the_success_fraction():
    outcomes = fake_policy([1.0, 0.75, 0.125, 0.0], rollouts=8)
    assert mc_soft(outcomes) == [1.0, 0.75, 0.125, 0.0]


def test_mc_hard_is_any_success():
    outcomes = fake_policy([1.0, 0.75, 0.125, 0.0], rollouts=8)
    assert mc_hard(outcomes) == [True, True, True, False]


def test_mc_allows_different_rollout_counts_per_step():
    # The stage gives a right-answer solution's steps a single outcome each (the solution's own).
    assert mc_soft([[True, False, False, False], [True]]) == [0.25, 1.0]
    assert mc_hard([[False, False], [False]]) == [False, False]


def test_mc_rejects_a_step_without_outcomes():
    with pytest.raises(ValueError, match="step 1"):
        mc_soft([[True], []])


# --- first-error search -------------------------------------------------------------------------


def chain(first_bad: int | None):
    """prefix_ok of a monotone chain whose first bad step is ``first_bad``; records calls."""
    calls = []

    def ok(k: int) -> bool:
        calls.append(k)
        return first_bad is None or k < first_bad

    return ok, calls


@pytest.mark.parametrize(
    "n, first_bad, probes",
    [
        # gallop 0, 1, 3, 7, ... to the first bad probe, then bisect: hand-traced probe sequences
        (8, 0, [0]),
        (8, 1, [0, 1]),
        (8, 3, [0, 1, 3, 2]),
        (8, 5, [0, 1, 3, 7, 5, 4]),
        (8, 7, [0, 1, 3, 7, 5, 6]),
        (8, None, [0, 1, 3, 7]),
        (5, 2, [0, 1, 3, 2]),
        (5, None, [0, 1, 3, 4]),
        (1, 0, [0]),
        (1, None, [0]),
    ],
)
def test_first_error_search_finds_the_first_bad_step(n, first_bad, probes):
    ok, calls = chain(first_bad)
    r = first_error_search(n, ok)
    assert r.first_error == first_bad
    expected = [True] * n if first_bad is None else [k < first_bad for k in range(n)]
    assert r.labels == expected
    assert r.probes == probes == calls


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 15, 16, 31])
def test_first_error_probes_are_logarithmic_in_the_first_error(n):
    for first_bad in [*range(n), None]:
        ok, _ = chain(first_bad)
        r = first_error_search(n, ok)
        assert r.first_error == first_bad
        f = n if first_bad is None else first_bad
        assert len(r.probes) <= min(2 * math.ceil(math.log2(f + 1)) + 1, 2 * math.ceil(math.log2(n + 1))), (n, first_bad, r.probes)


def test_a_right_answer_proves_every_step_good_and_a_wrong_one_proves_nothing():
    assert known_good(True, 4) == [True] * 4
    assert known_good(True, 0) == []
    assert known_good(False, 4) is None


def test_wrong_solution_still_searches_the_last_prefix():
    ok, calls = chain(None)  # all steps right, answer line wrong
    r = first_error_search(3, ok)
    assert r.first_error is None and r.labels == [True, True, True]
    assert calls == [0, 1, 2]


@pytest.mark.parametrize("rollouts, waves", [(1, [1]), (2, [1, 1]), (3, [1, 1, 1]), (4, [1, 1, 2]), (8, [1, 1, 2, 4]), (10, [1, 1, 2, 4, 2])])
def test_probe_waves_double_and_sum_to_the_rollouts(rollouts, waves):
    assert probe_waves(rollouts) == waves and sum(waves) == rollouts


def test_probe_waves_rejects_no_rollouts():
    with pytest.raises(ValueError, match="probe_waves: rollouts must be >= 1, got 0"):
        probe_waves(0)


def test_probe_verdict_stops_at_the_first_success_and_needs_every_failure():
    assert probe_verdict([], 4) is None
    assert probe_verdict([True], 4) is True  # one wave of 1: decided, 3 rollouts saved
    assert probe_verdict([False, False, True], 4) is True
    assert probe_verdict([False, False], 4) is None
    assert probe_verdict([False] * 4, 4) is False
    # the verdict equals MC's hard label on the same rollouts, whenever it is decided
    for outcomes in ([False, True, False, False], [False] * 4, [True] * 4):
        assert probe_verdict(outcomes, 4) == mc_hard([outcomes])[0]


def test_first_error_search_of_no_steps():
    r = first_error_search(0, lambda k: pytest.fail("no probe expected"))
    assert (r.first_error, r.labels, r.probes) == (None, [], [])


def test_non_monotone_chain_gets_a_consistent_boundary():
    # good, bad, good, bad: the search lands on a bad step whose predecessor is good
    ok = lambda k: k in (0, 2)  # noqa: E731
    r = first_error_search(4, ok)
    assert r.first_error in (1, 3)
    k = r.first_error
    assert not ok(k) and (k == 0 or ok(k - 1))


# --- agreement with the oracle ------------------------------------------------------------------


def test_first_false():
    assert first_false([True, False, False]) == 1
    assert first_false([True, True]) is None
    assert first_false([]) is None


def test_label_agreement_by_hand():
    oracle = [[True, True, False, False], [True, True], [False, False, False]]
    pred = [[True, False, False, False], [True, True], [True, False, False]]
    m = label_agreement(pred, oracle)
    # 9 steps, 7 agree. Bad (positive) class: tp=4 (sol0 steps 2,3; sol2 steps 1,2),
    # fp=1 (sol0 step 1), fn=1 (sol2 step 0).
    assert m["num_solutions"] == 3 and m["num_steps"] == 9
    assert m["step_agreement"] == pytest.approx(7 / 9)
    assert m["bad_precision"] == pytest.approx(4 / 5)
    assert m["bad_recall"] == pytest.approx(4 / 5)
    assert m["bad_f1"] == pytest.approx(4 / 5)
    # first errors: pred (1, None, 1) vs oracle (2, None, 0)
    assert m["first_error_acc"] == pytest.approx(1 / 3)
    assert m["oracle_bad_rate"] == pytest.approx(5 / 9)
    assert m["pred_bad_rate"] == pytest.approx(5 / 9)
    # good class: 4 oracle-good steps (sol0 steps 0,1; sol1), 3 predicted good (not sol0 step 1)
    assert m["good_recall"] == pytest.approx(3 / 4)
    assert m["balanced_accuracy"] == pytest.approx((3 / 4 + 4 / 5) / 2)


def test_label_agreement_zero_division_conventions():
    all_good = [[True, True], [True]]
    perfect = label_agreement(all_good, all_good)
    assert perfect["bad_precision"] == perfect["bad_recall"] == perfect["bad_f1"] == 1.0
    missed = label_agreement(all_good, [[True, False], [True]])  # nothing predicted bad
    assert missed["bad_precision"] == 0.0 and missed["bad_recall"] == 0.0 and missed["bad_f1"] == 0.0
    assert missed["first_error_acc"] == 0.5
    # balanced accuracy averages over the classes the oracle has: all-good oracle, good recall only
    assert perfect["balanced_accuracy"] == 1.0 and label_agreement([[False]], all_good[1:])["balanced_accuracy"] == 0.0


def test_label_agreement_checks_lengths():
    with pytest.raises(ValueError, match="solution 0"):
        label_agreement([[True]], [[True, False]])
    with pytest.raises(ValueError, match="2 predicted"):
        label_agreement([[True], [True]], [[True]])
    assert label_agreement([], []) == {"num_solutions": 0, "num_steps": 0}


def test_good_auc_by_hand():
    # good scores {0.9, 0.5, 0.5}, bad {0.5, 0.1}: pairs (good > bad) = 2 + 1.5 + 1.5 = 5 of 6
    scores = [[0.9, 0.5, 0.1], [0.5, 0.5]]
    oracle = [[True, True, False], [True, False]]
    assert good_auc(scores, oracle) == pytest.approx(5 / 6)
    assert good_auc([[0.1, 0.9]], [[True, False]]) == 0.0
    assert good_auc([[0.3, 0.4]], [[True, True]]) is None
