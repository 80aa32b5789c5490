import threading
import time

import pytest

from reward.outcome import outcome_rewards, verify


@pytest.mark.parametrize(
    "text, answer",
    [
        ("a=1\n#### 1,000", "1000"),  # thousands separator on the model side
        ("#### 1000", "1,000"),  # ... and on the reference side
        ("#### 17.0", "17"),  # 17.0 == 17
        ("#### 17", "#### 17.00"),  # a reference given as a '####' line
        ("#### 0.50", "0.5"),
        ("#### $18", "18"),
        ("#### -3", "-3"),
        ("#### -2.50", "-2.5"),
        ("#### -2.5", "-2.50"),
        ("#### 1,234", "1234"),
        ("#### 1234", "1,234"),
    ],
)
def test_plain_numbers_equal(text, answer):
    assert verify(text, answer) is True


@pytest.mark.parametrize(
    "text, answer",
    [
        ("#### 17", "18"),
        ("#### 1.5", "15"),  # the decimal point matters
        ("#### -3", "3"),
        ("#### 1,001", "1000"),
        ("#### 3 1/2", "3"),  # a mixed number is not its first digit
        ("#### 1 234", "1"),  # nor are spaced thousands
        ("#### 2,5", "25"),  # nor is a decimal comma a thousands separator
    ],
)
def test_plain_numbers_different(text, answer):
    assert verify(text, answer) is False


@pytest.mark.parametrize(
    "text, answer",
    [
        ("#### \\frac{1}{2}", "0.5"),  # 1/2 = 0.5
        ("#### 0.5", "\\frac{1}{2}"),
        ("#### 1/2", "0.5"),
        ("#### \\frac{7}{2}", "3.5"),
        ("#### x+1", "1+x"),
        ("#### \\sqrt{4}", "2"),
        ("#### 2^{10}", "1024"),  # 2^10 = 1024
    ],
)
def test_symbolic_answers_equal(text, answer):
    assert verify(text, answer) is True


@pytest.mark.parametrize(
    "text, answer",
    [
        ("#### \\frac{1}{3}", "0.5"),  # 1/3 != 0.5
        ("#### \\frac{7}{2}", "5"),
        ("#### garbage words", "17"),
        ("no final answer line", "17"),
        ("####", "17"),
        ("#### 17", ""),
    ],
)
def test_wrong_or_missing_answers(text, answer):
    assert verify(text, answer) is False


def test_huge_adversarial_answer_returns_false_fast():
    t0 = time.monotonic()
    assert verify("#### " + "(" * 100_000 + "1" + ")" * 100_000, "1") is False
    assert verify("#### " + "x" * 1_000_000, "1") is False
    assert time.monotonic() - t0 < 1.0


def test_expensive_short_expression_is_cut_at_the_deadline():
    # 10^(10^(10^10)) has 10^(10^10) digits: sympy would never finish; the alarm stops it.
    t0 = time.monotonic()
    assert verify("#### 10^{10^{10^{10}}}", "5", timeout_s=0.3) is False
    assert time.monotonic() - t0 < 1.5


def test_caller_alarm_handler_is_restored():
    import signal

    before = signal.getsignal(signal.SIGALRM)
    verify("#### \\frac{1}{2}", "0.5")
    assert signal.getsignal(signal.SIGALRM) is before
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0.0


def test_worker_thread_verifies_without_signals_and_refuses_unbounded():
    out = {}

    def work():
        t0 = time.monotonic()
        out["half"] = verify("#### \\frac{1}{2}", "0.5")
        out["tower"] = verify("#### 9^{9^{9^{9}}}", "5")  # refused: a power could run forever
        out["deep"] = verify("#### " + "{" * 20 + "1" + "}" * 20, "1")  # refused: 20-deep braces
        out["plain"] = verify("#### 1,000", "1000")
        out["elapsed"] = time.monotonic() - t0

    t = threading.Thread(target=work)
    t.start()
    t.join(timeout=10)
    assert not t.is_alive()
    assert out["half"] is True and out["tower"] is False and out["deep"] is False and out["plain"] is True
    assert out["elapsed"] < 2.0


def test_outcome_rewards_values_and_length_check():
    texts = ["#### 3", "#### 4", "nothing"]
    assert outcome_rewards(texts, ["3", "3", "3"]) == [1.0, 0.0, 0.0]
    with pytest.raises(ValueError):
        outcome_rewards(texts, ["3", "3"])
