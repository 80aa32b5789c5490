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


def test_unneeded_step_share_counts_every_distractor_step_right_or_wrong():
    """Hand-counted on a=7;b=5;c=a*3;d=c-b;e=b+2;d=? (e is the distractor): the first solution
    computes e after a wrong c, the second computes e wrongly, the third is direct. 2 of the 8
    steps compute e; the old count (right distractors after no wrong step) saw none of them."""
    q = "a=7;b=5;c=a*3;d=c-b;e=b+2;d=?"
    texts = ["c=7*3=20\ne=5+2=7\nd=20-5=15\n#### 15", "c=7*3=21\ne=5+2=8\nd=21-5=16\n#### 16", "c=7*3=21\nd=21-5=16\n#### 16"]
    ev = Evaluation(
        problems=[{"question": q, "final_answer": "16", "difficulty": 2, "source": "synthetic"}] * 3,
        greedy_texts=texts,
        greedy_tokens=[len(t) for t in texts],
        sample_texts=[[t] for t in texts],
    )
    assert ev.greedy_unneeded_steps() == [1, 1, 0]
    out = score(ev, k=1)
    assert out["unneeded_step_share"] == pytest.approx(2 / 8) and out["greedy_acc"] == pytest.approx(2 / 3)


def test_unneeded_steps_are_not_judged_without_the_oracle():
    ev = Evaluation(
        problems=[{"question": "q", "final_answer": "1", "difficulty": 1}],
        greedy_texts=["#### 1"],
        greedy_tokens=[2],
        sample_texts=[["#### 1"]],
    )
    assert ev.greedy_unneeded_steps() is None and "unneeded_step_share" not in score(ev, k=1)
