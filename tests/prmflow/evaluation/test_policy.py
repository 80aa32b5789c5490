"""Evaluation scores count the verifier's ERROR and TIMEOUT verdicts next to the accuracies."""

import pytest

from prmflow.evaluation.policy import Evaluation, score
from reward import symbolic


def test_score_counts_verifier_errors_and_timeouts(monkeypatch):
    def check(pred, gold, timeout_s):  # \frac{6}{2}: a checker fault; anything else symbolic: too slow
        if pred == "\\frac{6}{2}":
            raise symbolic.SymbolicError("TypeError: boom")
        return None

    monkeypatch.setattr(symbolic, "check", check)
    ev = Evaluation(
        problems=[{"final_answer": "3", "difficulty": 2}, {"final_answer": "5", "difficulty": 2}],
        greedy_texts=["a\n#### 3", "a\n#### \\frac{6}{2}"],
        greedy_tokens=[4, 4],
        sample_texts=[["#### 3", "#### \\Gamma(9)"], ["#### 5", "#### \\frac{6}{2}"]],
    )
    out = score(ev, k=2)
    assert (out["verifier_errors"], out["verifier_timeouts"]) == (2, 1)  # of 6 verdicts: 2 greedy + 4 samples
    assert out["greedy_acc"] == 0.5 and out["pass@1"] == pytest.approx(0.5)
