"""Outcome reward: is the final answer of a solution right?

Plain numbers (the GSM8K and synthetic case) are compared exactly here, with no sympy. Any
other answer (LaTeX, fractions, expressions) goes to ``math_verify`` in a helper process under a
deadline (:mod:`reward.symbolic`), so that adversarial model output (``9^{9^{9^{9}}}``,
``\\Gamma(10^8)``) cannot hang a rollout worker, in the main thread or any other.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from enum import StrEnum

from reward import symbolic
from reward.parse import DEFAULT_ANSWER_RULES, extract_answer, reference_answer
from reward.registry import REWARDS

MAX_SYMBOLIC_CHARS = 128
"""Longer non-numeric answers are wrong without being parsed (sympy's cost grows with length)."""

_PLAIN_RE = re.compile(r"-?\d+(?:\.\d+)?")


class VerifierError(RuntimeError):
    """Too many verdicts were verifier faults for the rewards built on them to mean anything."""


class Verdict(StrEnum):
    """Why an answer was judged as it was (callers count these; see :func:`judge`)."""

    CORRECT = "correct"
    WRONG = "wrong"
    NO_ANSWER = "no_answer"
    """The solution has no final answer line (or an empty one)."""
    TIMEOUT = "timeout"
    """The symbolic check ran past its deadline (its helper process was killed)."""
    ERROR = "error"
    """The symbolic checker raised or its helper died: a verifier fault, counted and reported
    (:func:`verdict_counts`, :func:`check_verdicts`), never silent."""


def same_answer(pred: str | None, gold: str | None, timeout_s: float = 2.0) -> Verdict:
    """Are two final answers (as :func:`reward.parse.extract_answer` reads them) the same?

    Two plain numbers are equal iff numerically equal (``17.0 == 17``, ``-2.50 == -2.5``),
    compared as decimals (``int()`` refuses over 4,300 digits). Otherwise ``math_verify`` decides
    (``\\frac{1}{2}`` vs ``0.5``) within ``timeout_s`` seconds, the same in every thread.
    """
    if pred is None or gold is None:
        return Verdict.NO_ANSWER
    if pred == gold:
        return Verdict.CORRECT
    if _PLAIN_RE.fullmatch(pred) and _PLAIN_RE.fullmatch(gold):
        return Verdict.CORRECT if Decimal(pred) == Decimal(gold) else Verdict.WRONG
    if len(pred) > MAX_SYMBOLIC_CHARS or len(gold) > MAX_SYMBOLIC_CHARS or timeout_s <= 0:
        return Verdict.WRONG
    try:
        equal = symbolic.check(pred, gold, timeout_s)
    except symbolic.SymbolicError:  # counted as ERROR by callers (verdict_counts), never silent
        return Verdict.ERROR
    return Verdict.TIMEOUT if equal is None else Verdict.CORRECT if equal else Verdict.WRONG


def judge(text: str, answer: str, timeout_s: float = 2.0, rules: Sequence[str] = DEFAULT_ANSWER_RULES) -> Verdict:
    """The verdict on solution ``text`` against the reference ``answer`` (bare or ``#### x``),
    the solution's answer read by the first of ``rules`` that finds one
    (:func:`reward.parse.extract_answer`; the stages pass ``data.answer_rules``)."""
    return same_answer(extract_answer(text, rules), reference_answer(answer), timeout_s)


def verify(text: str, answer: str, timeout_s: float = 2.0, rules: Sequence[str] = DEFAULT_ANSWER_RULES) -> bool:
    """True iff the final answer of ``text`` (read by ``rules``) equals the reference ``answer``:
    the one definition of a right answer, used by the RL reward, evaluation, the warm start's
    probe and labelling. Never raises; use :func:`judge` to know why an answer was not right."""
    return judge(text, answer, timeout_s, rules) is Verdict.CORRECT


def verdict_counts(verdicts: list[Verdict]) -> dict[str, int]:
    """``{"correct": n, "wrong": n, "no_answer": n, "timeout": n, "error": n}``."""
    return {v.value: sum(x is v for x in verdicts) for v in Verdict}


def check_verdicts(verdicts: list[Verdict], max_error_share: float, setting: str = "max_error_share") -> None:
    """Raise :class:`VerifierError` when more than ``max_error_share`` of ``verdicts`` are
    ``ERROR``: the checker is failing, and rewards or accuracies built on it would be noise.
    ``TIMEOUT`` does not count: that is the answer's fault (and it is scored as not right).
    ``setting`` names the limit in the message (e.g. ``rl.max_verifier_errors``)."""
    errors = sum(v is Verdict.ERROR for v in verdicts)
    if verdicts and errors / len(verdicts) > max_error_share:
        raise VerifierError(
            f"{errors} of {len(verdicts)} verdicts ({errors / len(verdicts):.1%}) were verifier errors, "
            f"more than {setting} = {max_error_share:.1%}: the answer checker is failing (see reward.symbolic), not the policy"
        )


def outcome_verdicts(completions: list[str], answers: list[str], rules: Sequence[str] = DEFAULT_ANSWER_RULES) -> list[Verdict]:
    """The verdict (:func:`judge`, answers read by ``rules``) on each completion against its reference answer."""
    if len(completions) != len(answers):
        raise ValueError(f"outcome_verdicts: {len(completions)} completions but {len(answers)} answers")
    return [judge(t, a, rules=rules) for t, a in zip(completions, answers)]


@REWARDS.register("outcome")
def outcome_rewards(
    completions: list[str],
    answers: list[str],
    verdicts: list[Verdict] | None = None,
    answer_rules: Sequence[str] = DEFAULT_ANSWER_RULES,
    **kwargs,
) -> list[float]:
    """1.0 for each solution whose final answer is right (:func:`verify`), else 0.0.

    ``verdicts``: :func:`outcome_verdicts` already computed by the caller (who counts them);
    else they are computed with ``answer_rules``."""
    if verdicts is None:
        verdicts = outcome_verdicts(completions, answers, answer_rules)
    elif len(verdicts) != len(completions):
        raise ValueError(f"outcome_rewards: {len(completions)} completions but {len(verdicts)} verdicts")
    return [1.0 if v is Verdict.CORRECT else 0.0 for v in verdicts]
