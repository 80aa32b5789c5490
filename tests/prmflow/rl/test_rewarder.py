"""The rewarder: verifier ERROR/TIMEOUT verdicts counted (too many stop the step); step scores
that find no step end in the tokens counted, not silently cut."""

from __future__ import annotations

import pytest

from prmflow.config import RLConfig
from prmflow.rl.rewarder import Rewarder, step_credit_counts
from prmflow.rl.trainer import summarize
from reward import symbolic
from reward.outcome import VerifierError
from reward.parse import split_steps

# 4 completions of one prompt group; answer "3"; two are symbolic and reach the checker
TEXTS = ["#### 3", "#### 4", "#### \\frac{6}{2}", "#### \\Gamma(9)"]


@pytest.fixture
def checker(monkeypatch):
    """A fake symbolic checker: \\frac{6}{2} is a checker fault, \\Gamma(9) runs past the deadline."""

    def check(pred, gold, timeout_s):
        if pred == "\\frac{6}{2}":
            raise symbolic.SymbolicError("TypeError: boom")
        return None

    monkeypatch.setattr(symbolic, "check", check)


def reward(rl: RLConfig):
    return Rewarder(rl)(["q\n"] * 4, TEXTS, ["3"] * 4, [3, 3, 5, 5], [[]] * 4)


def test_verifier_errors_and_timeouts_are_logged(checker):
    rl = RLConfig(group_size=4, weights={"process": 0.0}, max_verifier_errors=0.5)
    _, stats = reward(rl)
    assert (stats["verifier/errors"], stats["verifier/timeouts"]) == (1.0, 1.0)
    assert stats["reward/outcome"] == 0.25  # only "#### 3" is right: an error is not a right answer


def test_too_many_verifier_errors_fail_the_step(checker):
    rl = RLConfig(group_size=4, weights={"process": 0.0}, max_verifier_errors=0.2)  # 1 of 4 = 25%
    with pytest.raises(VerifierError, match=r"1 of 4 verdicts \(25\.0%\) were verifier errors, more than rl\.max_verifier_errors = 20\.0%"):
        reward(rl)


class StepScorer:
    """0.8 for every step line of a solution (what a PRM would score)."""

    def score(self, prompts, texts):
        return [[0.8] * len(split_steps(t)) for t in texts]


def test_step_credit_counts_by_hand():
    # solution 0: 2 scores, 2 ends; 1: 2 scores, 1 end (last step cut before its newline);
    # 2: no score (the scorer found no step), 1 end
    c = step_credit_counts([[0.9, 0.8], [0.7, 0.6], []], [[2, 4], [2], [3]])
    assert c == {"steps_scored": 4, "steps_credited": 3, "steps_without_end": 1, "step_ends_without_score": 1}


def test_rewarder_counts_steps_cut_at_the_token_budget():
    rl = RLConfig(group_size=2, process_mode="step_min", weights={"process": 0.5})
    texts = ["a=1\nb=2\n#### 2", "a=1\nb=2"]  # the second was cut at max_new_tokens: its last step has no newline
    pieces = [["a=1", "\n", "b=2", "\n", "####", " 2"], ["a=1", "\n", "b=2"]]
    adv, stats = Rewarder(rl, StepScorer())(["q\n"] * 2, texts, ["2", "2"], [6, 3], pieces)
    assert [len(a) for a in adv] == [6, 3]
    assert stats["reward/steps_scored"] == 4.0 and stats["reward/steps_credited"] == 3.0
    assert stats["reward/steps_without_end"] == 1.0 and stats["reward/step_ends_without_score"] == 0.0


def test_summarize_totals_the_step_counts_over_the_run():
    rl = RLConfig(steps=2)
    history = [
        {"step": 0, "eval/greedy_acc": 0.5},
        {"step": 1, "reward/sequence": 0.1, "reward/steps_scored": 10.0, "reward/steps_without_end": 2.0},
        {"step": 2, "reward/sequence": 0.2, "reward/steps_scored": 12.0, "reward/steps_without_end": 1.0},
    ]
    out = summarize(history, rl)
    assert out["total_steps_scored"] == 22.0 and out["total_steps_without_end"] == 3.0
    assert out["final_reward_sequence"] == pytest.approx(0.15)
