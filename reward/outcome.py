"""Outcome reward: is the final answer of a solution right?

Plain numbers (the GSM8K and synthetic case) are compared exactly here, with no sympy. Any
other answer (LaTeX, fractions, expressions) goes to ``math_verify`` under a deadline, so that
adversarial model output (``9^{9^{9^{9}}}``) cannot hang a rollout worker.
"""

from __future__ import annotations

import logging
import re
import signal
import threading
import time
from enum import StrEnum
from fractions import Fraction

from reward.parse import extract_answer, reference_answer
from reward.registry import REWARDS

MAX_SYMBOLIC_CHARS = 128
"""Longer non-numeric answers are wrong without being parsed (sympy's cost grows with length)."""

_PLAIN_RE = re.compile(r"-?\d+(?:\.\d+)?")
# Without signals sympy cannot be interrupted, so worker threads only get expressions that
# evaluate in bounded time: no powers, factorials, sums, products, integrals or limits, and
# shallow brackets (the LaTeX parser takes ~1 s at 10 nested braces and over a minute at 20).
_UNBOUNDED_RE = re.compile(r"\^|\*\*|!|\\(?:sum|prod|int|lim|binom|choose)")
MAX_THREAD_DEPTH = 6


def _depth(s: str) -> int:
    """Deepest nesting of ``( [ {`` in ``s``."""
    depth = deepest = 0
    for ch in s:
        if ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth -= 1
    return deepest


class _Timeout(BaseException):
    """Raised by the alarm; a BaseException so sympy's ``except Exception`` cannot swallow it."""


def _raise_timeout(signum, frame):
    raise _Timeout


def _with_deadline(fn, seconds: float) -> bool | None:
    """``fn()``, or ``None`` once ``seconds`` have passed (SIGALRM; main thread only).

    A caller's own alarm (e.g. pytest-timeout) is re-armed afterwards, late by at most ``seconds``.
    """
    old_handler = signal.signal(signal.SIGALRM, _raise_timeout)
    old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    t0 = time.monotonic()
    try:
        try:
            return fn()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _Timeout:  # also when it fires at the start of the finally above; the timer is one-shot
        signal.setitimer(signal.ITIMER_REAL, 0)
        return None
    finally:
        signal.signal(signal.SIGALRM, old_handler)
        if old_delay:
            signal.setitimer(signal.ITIMER_REAL, max(old_delay - (time.monotonic() - t0), 1e-3), old_interval)


def _symbolic_equal(pred: str, gold: str) -> bool:
    from math_verify import parse, verify

    logging.getLogger("math_verify").setLevel(logging.ERROR)  # it warns when we pass timeouts=None

    def wrap(s: str) -> str:  # math_verify only finds bare LaTeX inside math delimiters
        return s if "$" in s else f"${s}$"

    # Its own timeouts are off: they need whole seconds and would reset our alarm.
    g = parse(wrap(gold), parsing_timeout=None)
    p = parse(wrap(pred), parsing_timeout=None)
    return bool(g and p and verify(g, p, timeout_seconds=None))


class Verdict(StrEnum):
    """Why an answer was judged as it was (callers count these; see :func:`judge`)."""

    CORRECT = "correct"
    WRONG = "wrong"
    NO_ANSWER = "no_answer"
    """The solution has no final answer line (or an empty one)."""
    TIMEOUT = "timeout"
    """The symbolic check ran past its deadline (or was refused as unbounded off the main thread)."""
    ERROR = "error"
    """The symbolic checker raised: a verifier fault, counted and reported, never silent."""


def same_answer(pred: str | None, gold: str | None, timeout_s: float = 2.0) -> Verdict:
    """Are two final answers (as :func:`reward.parse.extract_answer` reads them) the same?

    Two plain numbers are equal iff numerically equal (``17.0 == 17``, ``1,000 == 1000``,
    ``-2.50 == -2.5``). Otherwise ``math_verify`` decides (``\\frac{1}{2}`` vs ``0.5``) within
    ``timeout_s`` in the main thread; in other threads there is no way to interrupt it, so answers
    with powers, factorials, sums etc. or deeply nested brackets are refused there (``TIMEOUT``).
    """
    if pred is None or gold is None:
        return Verdict.NO_ANSWER
    if pred == gold:
        return Verdict.CORRECT
    if _PLAIN_RE.fullmatch(pred) and _PLAIN_RE.fullmatch(gold):
        return Verdict.CORRECT if Fraction(pred) == Fraction(gold) else Verdict.WRONG
    if len(pred) > MAX_SYMBOLIC_CHARS or len(gold) > MAX_SYMBOLIC_CHARS or timeout_s <= 0:
        return Verdict.WRONG
    try:
        if threading.current_thread() is threading.main_thread():
            equal = _with_deadline(lambda: _symbolic_equal(pred, gold), timeout_s)
            return Verdict.TIMEOUT if equal is None else Verdict.CORRECT if equal else Verdict.WRONG
        if any(_UNBOUNDED_RE.search(x) or _depth(x) > MAX_THREAD_DEPTH for x in (pred, gold)):
            return Verdict.TIMEOUT
        return Verdict.CORRECT if _symbolic_equal(pred, gold) else Verdict.WRONG
    except Exception:  # noqa: BLE001 - sympy/latex2sympy raise anything; counted as ERROR by callers
        return Verdict.ERROR


def judge(text: str, answer: str, timeout_s: float = 2.0) -> Verdict:
    """The verdict on solution ``text`` against the reference ``answer`` (bare or ``#### x``)."""
    return same_answer(extract_answer(text), reference_answer(answer), timeout_s)


def verify(text: str, answer: str, timeout_s: float = 2.0) -> bool:
    """True iff the final answer of ``text`` equals the reference ``answer``: the one definition
    of a right answer, used by the RL reward, evaluation, the warm start's probe and labelling.
    Never raises; use :func:`judge` to know why an answer was not right."""
    return judge(text, answer, timeout_s) is Verdict.CORRECT


def verdict_counts(verdicts: list[Verdict]) -> dict[str, int]:
    """``{"correct": n, "wrong": n, "no_answer": n, "timeout": n, "error": n}``."""
    return {v.value: sum(x is v for x in verdicts) for v in Verdict}


@REWARDS.register("outcome")
def outcome_rewards(completions: list[str], answers: list[str], **kwargs) -> list[float]:
    """1.0 for each solution whose final answer is right (:func:`verify`), else 0.0."""
    if len(completions) != len(answers):
        raise ValueError(f"outcome_rewards: {len(completions)} completions but {len(answers)} answers")
    return [1.0 if verify(t, a) else 0.0 for t, a in zip(completions, answers)]
