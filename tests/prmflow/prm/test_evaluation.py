"""Evaluating scorers: calibration of nested scores (the rest runs in tests/tasks/test_train_prm.py)."""

import pytest

from prmflow.prm.evaluation import calibrate_scores


def test_calibrate_scores_keeps_shape_and_moves_the_threshold():
    out = calibrate_scores([[0.1, 0.2], []], 0.2)
    assert out[1] == [] and out[0] == pytest.approx([0.25, 0.5])
