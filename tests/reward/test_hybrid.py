import dataclasses

import pytest

from reward.hybrid import RewardWeights, mix


def test_weights_defaults_are_outcome_only_and_frozen():
    w = RewardWeights()
    assert (w.outcome, w.process, w.length) == (1.0, 0.0, 0.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        w.outcome = 2.0


def test_mix_weighted_sum():
    # 1*[1, 0] + 0.5*[0.8, 0.4] + 2*[0, -0.25] = [1.4, 0.2 - 0.5] = [1.4, -0.3]
    out = mix([1.0, 0.0], [0.8, 0.4], [0.0, -0.25], RewardWeights(1.0, 0.5, 2.0))
    assert out == pytest.approx([1.4, -0.3])


def test_zero_process_weight_is_the_outcome_only_baseline():
    assert mix([1.0, 0.0], [0.9, 0.9], None, RewardWeights(process=0.0)) == [1.0, 0.0]
    assert mix([1.0, 0.0], None, None, RewardWeights()) == [1.0, 0.0]


def test_missing_part_with_nonzero_weight_raises_naming_it():
    with pytest.raises(ValueError, match="process"):
        mix([1.0], None, None, RewardWeights(process=0.5))
    with pytest.raises(ValueError, match="length"):
        mix([1.0], None, None, RewardWeights(length=0.1))


def test_length_mismatch_raises():
    with pytest.raises(ValueError, match="process"):
        mix([1.0, 0.0], [0.5], None, RewardWeights(process=1.0))
    with pytest.raises(ValueError, match="length"):
        mix([1.0, 0.0], None, [0.5, 0.5, 0.5], RewardWeights(length=1.0))
