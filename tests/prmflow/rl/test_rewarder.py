"""The rewarder counts the verifier's ERROR and TIMEOUT verdicts and stops a step on too many errors."""

import pytest

from prmflow.config import RLConfig
from prmflow.rl.rewarder import Rewarder
from reward import symbolic
from reward.outcome import VerifierError

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
