import pytest

from reward.process import aggregate, process_rewards


@pytest.mark.parametrize(
    "agg, expected",
    [
        ("min", 0.5),  # min(0.8, 0.5, 1.0)
        ("mean", 0.7666666666666667),  # (0.8 + 0.5 + 1.0) / 3 = 2.3 / 3
        ("last", 1.0),
        ("product", 0.4),  # 0.8 * 0.5 * 1.0
    ],
)
def test_aggregate(agg, expected):
    assert aggregate([0.8, 0.5, 1.0], agg) == pytest.approx(expected)


@pytest.mark.parametrize("agg", ["min", "mean", "last", "product"])
def test_no_steps_scores_zero_and_loses_to_any_solution_with_steps(agg):
    assert aggregate([], agg) == 0.0
    assert aggregate([], agg) <= aggregate([0.1], agg)


def test_process_rewards_per_solution():
    # [0.9, 0.2] -> min 0.2, mean 0.55; [0.6] -> 0.6; [] -> 0.0
    assert process_rewards([[0.9, 0.2], [0.6], []]) == pytest.approx([0.2, 0.6, 0.0])
    assert process_rewards([[0.9, 0.2], [0.6], []], "mean") == pytest.approx([0.55, 0.6, 0.0])


def test_unknown_aggregation_raises():
    with pytest.raises(ValueError, match="max"):
        aggregate([0.5], "max")
    with pytest.raises(ValueError):
        process_rewards([], "max")
