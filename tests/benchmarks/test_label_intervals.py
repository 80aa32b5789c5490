"""benchmarks/label_intervals.py: per-problem counts and the bootstrap, by hand."""

from __future__ import annotations

import pytest

from benchmarks.label_intervals import bootstrap, problem_counts


def test_counts_pool_a_problems_solutions_and_refuse_ragged_rows():
    rows = [
        {"id": "p1/0", "labels": [True, True, False], "oracle_labels": [True, False, False]},
        {"id": "p1/1", "labels": [True], "oracle_labels": [True]},
        {"id": "p2/0", "labels": [False, False], "oracle_labels": [True, True]},
    ]
    assert problem_counts(rows) == {"p1": [3, 4], "p2": [0, 2]}
    with pytest.raises(ValueError, match="p9/0: 1 labels vs 2 oracle labels"):
        problem_counts([{"id": "p9/0", "labels": [True], "oracle_labels": [True, False]}])


def test_bootstrap_pools_steps_not_problems_and_its_interval_holds_the_point():
    # p1: 3 of 4 steps (base 1), p2: 0 of 2 (base 0): pooled 3/6, paired difference (2 + 0) / 6.
    b = bootstrap({"p1": (3, 4, 1), "p2": (0, 2, 0)}, draws=500)
    assert b["agreement"] == pytest.approx(0.5) and b["difference"] == pytest.approx(1 / 3)
    assert b["problems"] == 2 and b["steps"] == 6
    lo, hi = b["agreement_ci"]
    assert lo == 0.0 and hi == 0.75  # all-p2 and all-p1 resamples are both likely in 500 draws
    assert b["difference_ci"][0] <= 1 / 3 <= b["difference_ci"][1]
