import pytest
import torch

from reward.hybrid import mix, process_modes, sequence_terms, step_credit, token_advantages


def test_mix_weighted_sum():
    # 1*[1, 0] + 0.5*[0.8, 0.4] + 2*[0, -0.25] = [1.4, 0.2 - 0.5] = [1.4, -0.3]
    parts = {"outcome": [1.0, 0.0], "process": [0.8, 0.4], "length": [0.0, -0.25]}
    assert mix(parts, {"outcome": 1.0, "process": 0.5, "length": 2.0}) == pytest.approx([1.4, -0.3])


def test_zero_process_weight_is_the_outcome_only_baseline():
    assert mix({"outcome": [1.0, 0.0], "process": [0.9, 0.9]}, {"outcome": 1.0, "process": 0.0}) == [1.0, 0.0]
    assert mix({"outcome": [1.0, 0.0]}, {"outcome": 1.0}) == [1.0, 0.0]


def test_missing_part_with_nonzero_weight_raises_naming_it():
    with pytest.raises(ValueError, match="process"):
        mix({"outcome": [1.0]}, {"outcome": 1.0, "process": 0.5})


def test_length_mismatch_raises():
    with pytest.raises(ValueError, match="different lengths"):
        mix({"outcome": [1.0, 0.0], "process": [0.5]}, {"outcome": 1.0, "process": 1.0})


def test_process_modes_follow_the_step_credit_registry():
    assert process_modes() == ["sequence", "step_sum", "step_min", "step_delta", "step_own"]
    assert step_credit("step_sum") == "sum" and step_credit("sequence") is None
    with pytest.raises(ValueError, match="step_max"):
        step_credit("step_max")


def test_sequence_terms_drop_process_only_in_step_modes():
    w = {"outcome": 1.0, "process": 0.5, "length": 0.1}
    assert sequence_terms(w, "sequence") == w
    assert sequence_terms(w, "step_min") == {"outcome": 1.0, "length": 0.1}


def test_token_advantages_add_weighted_step_credit_to_each_steps_tokens():
    # completion of 6 tokens, steps end (exclusive) at 2 and 5; token 5 is the answer line.
    # seq advantage 0.5, step advantages [1.0, -2.0], process weight 0.25:
    # tokens 0-1: 0.5 + 0.25 = 0.75; tokens 2-4: 0.5 - 0.5 = 0.0; token 5: 0.5
    out = token_advantages([0.5], [6], [[1.0, -2.0]], [[2, 5]], 0.25)
    assert out[0].tolist() == pytest.approx([0.75, 0.75, 0.0, 0.0, 0.0, 0.5])
    # a step with no end in the tokens (cut at the budget) gets no credit
    assert token_advantages([0.5], [3], [[1.0, -2.0]], [[2]], 1.0)[0].tolist() == [1.5, 1.5, 0.5]
    # sequence mode: one value per token
    assert torch.equal(token_advantages([-1.0], [2])[0], torch.tensor([-1.0, -1.0]))
