import threading
import time

import pytest

from reward import symbolic
from reward.outcome import Verdict, VerifierError, check_verdicts, judge, outcome_rewards, outcome_verdicts, verdict_counts, verify


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
    assert verify("#### \\frac{1}{2}", "0.5")  # the helper is up: its start is not the deadline's
    # 10^(10^(10^10)) has 10^(10^10) digits: sympy would never finish; the deadline stops it.
    t0 = time.monotonic()
    assert judge("#### 10^{10^{10^{10}}}", "5", timeout_s=0.3) is Verdict.TIMEOUT
    assert time.monotonic() - t0 < 1.5


def test_caller_alarm_handler_is_restored():
    import signal

    before = signal.getsignal(signal.SIGALRM)
    verify("#### \\frac{1}{2}", "0.5")
    assert signal.getsignal(signal.SIGALRM) is before
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0.0


def in_thread(fn):
    """``fn()`` run in a worker thread (where no signal can interrupt it); its result and seconds."""
    out = {}

    def work():
        t0 = time.monotonic()
        out["result"] = fn()
        out["seconds"] = time.monotonic() - t0

    t = threading.Thread(target=work, daemon=True)
    t.start()
    t.join(timeout=30)
    assert not t.is_alive(), "verify hung in a worker thread"
    return out["result"], out["seconds"]


def test_deadline_holds_in_a_worker_thread():
    assert in_thread(lambda: judge("#### \\frac{1}{2}", "0.5"))[0] is Verdict.CORRECT  # helper up
    # Gamma(10^8) = (10^8 - 1)!: no power or factorial sign for a pattern to catch
    verdict, seconds = in_thread(lambda: judge("#### \\Gamma(100000000)", "5", timeout_s=1))
    assert verdict is Verdict.TIMEOUT and seconds < 3
    assert in_thread(lambda: judge("#### \\frac{1}{2}", "0.5"))[0] is Verdict.CORRECT  # a fresh helper


def test_worker_thread_gives_the_main_thread_verdicts():
    cases = [("#### \\frac{1}{2}", "0.5"), ("#### 2^{10}", "1024"), ("#### 1,000", "1000"), ("#### \\frac{1}{3}", "0.5")]
    here = [judge(t, a) for t, a in cases]
    assert here == [Verdict.CORRECT, Verdict.CORRECT, Verdict.CORRECT, Verdict.WRONG]
    assert in_thread(lambda: [judge(t, a) for t, a in cases])[0] == here  # 2^{10} was refused there


def test_plain_numbers_never_start_the_helper(monkeypatch):
    def no_helper(*a, **kw):
        raise AssertionError("a plain number reached the symbolic checker")

    monkeypatch.setattr(symbolic, "check", no_helper)
    assert verify("#### 1,000", "1000") and verify("#### -2.50", "-2.5") and not verify("#### 17", "18")


def test_huge_plain_number_is_compared_without_int_conversion():
    big = "1" * 5000  # int() refuses over 4,300 digits
    assert judge(f"#### {big}", big) is Verdict.CORRECT
    assert judge(f"#### {big}1", big) is Verdict.WRONG
    assert judge(f"#### {big}.0", big) is Verdict.CORRECT


def test_checker_fault_is_an_error_verdict_not_a_wrong_answer(monkeypatch):
    def broken(pred, gold, timeout_s):
        raise symbolic.SymbolicError("TypeError: boom")

    monkeypatch.setattr(symbolic, "check", broken)
    assert judge("#### \\frac{1}{2}", "0.5") is Verdict.ERROR
    assert judge("#### 1", "1") is Verdict.CORRECT  # plain numbers never get there


def test_outcome_verdicts_and_counts():
    texts = ["#### 3", "#### 4", "nothing", "#### 3.0"]
    verdicts = outcome_verdicts(texts, ["3"] * 4)
    assert verdicts == [Verdict.CORRECT, Verdict.WRONG, Verdict.NO_ANSWER, Verdict.CORRECT]
    assert verdict_counts(verdicts) == {"correct": 2, "wrong": 1, "no_answer": 1, "timeout": 0, "error": 0}
    # given verdicts, outcome_rewards does not verify again
    assert outcome_rewards(texts, ["9"] * 4, verdicts=verdicts) == [1.0, 0.0, 0.0, 1.0]


def test_check_verdicts_fails_past_the_error_share():
    ok = [Verdict.CORRECT] * 19
    check_verdicts([*ok, Verdict.ERROR], max_error_share=0.05)  # 1/20 = 5%: not more than 5%
    check_verdicts([*ok, Verdict.TIMEOUT, Verdict.TIMEOUT], max_error_share=0.0)  # timeouts are the answer's fault
    with pytest.raises(VerifierError, match=r"2 of 20 verdicts \(10\.0%\) were verifier errors, more than rl\.x = 5\.0%"):
        check_verdicts([*ok[:18], Verdict.ERROR, Verdict.ERROR], max_error_share=0.05, setting="rl.x")
    check_verdicts([], max_error_share=0.0)


def test_outcome_rewards_values_and_length_check():
    texts = ["#### 3", "#### 4", "nothing"]
    assert outcome_rewards(texts, ["3", "3", "3"]) == [1.0, 0.0, 0.0]
    with pytest.raises(ValueError):
        outcome_rewards(texts, ["3", "3"])


def test_verify_reads_answers_by_the_rules_it_is_given():
    rules = ["####", "boxed", "answer_is"]
    assert not verify("She sold \\boxed{72} clips.", "72")  # default: the #### line only
    assert verify("She sold \\boxed{72} clips.", "72", rules=rules)
    assert verify("**Answer:** 72", "#### 72", rules=rules)
    assert not verify("The answer is not 72.", "72", rules=rules)
    assert verify("so \\boxed{\\frac{1}{2}}", "0.5", rules=["boxed"])  # math-verify decides
    assert judge("nothing", "1", rules=rules) is Verdict.NO_ANSWER
    assert outcome_verdicts(["\\boxed{3}", "#### 3"], ["3", "3"], ["boxed"]) == [Verdict.CORRECT, Verdict.NO_ANSWER]
