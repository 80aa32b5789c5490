"""Solution text format: one reasoning step per line, then a final answer line ``#### <answer>``.

This is GSM8K's convention; the synthetic task writes the same format, so one parser serves both.
"""

from __future__ import annotations

import re

FINAL_MARKER = "####"
_FINAL_RE = re.compile(r"####\s*(.*)")
_CALC_RE = re.compile(r"<<[^<>]*>>")
_NUMBER_RE = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
# A final answer that *is* a number (optionally "$", a unit or "%" after it), not an expression.
_PLAIN_NUMBER_RE = re.compile(r"^\$?\s*(-?\d[\d,]*(?:\.\d+)?)(?:\s|%|$|\.$)")


def strip_calculator(text: str) -> str:
    """Remove GSM8K calculator annotations: ``48/2 = <<48/2=24>>24`` -> ``48/2 = 24``."""
    return _CALC_RE.sub("", text)


def split_steps(solution: str) -> list[str]:
    """Reasoning steps of a solution: its non-empty lines before the final answer line.

    >>> split_steps("b=7*3=21\\nc=21-4=17\\n#### 17")
    ['b=7*3=21', 'c=21-4=17']
    """
    steps = []
    for line in solution.split("\n"):
        line = line.strip()
        if not line:
            continue
        if line.startswith(FINAL_MARKER):
            break
        steps.append(line)
    return steps


def normalize_number(text: str) -> str | None:
    """Canonical string of the first number in ``text`` (commas dropped, ``4.0`` -> ``4``)."""
    m = _NUMBER_RE.search(text)
    if not m:
        return None
    s = m.group(0).replace(",", "")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    if s in ("-0", ""):
        s = "0"
    return s


def extract_answer(solution: str) -> str | None:
    """The final answer after the first ``####`` line, normalised; ``None`` if absent.

    The first marker counts (not the last), so text a model rambles on with after its answer
    cannot change the answer it gave.
    """
    for line in solution.split("\n"):
        line = line.strip()
        m = _FINAL_RE.match(line)
        if m:
            raw = m.group(1).strip()
            if not raw:
                return None
            plain = _PLAIN_NUMBER_RE.match(raw)
            return normalize_number(plain.group(1)) if plain else raw
    return None


def reference_answer(answer: str) -> str | None:
    """A reference answer (bare, ``"1,000"``, or a ``#### 1,000`` line) normalised exactly like
    a model's final answer, so that the two compare equal when they are the same number.

    >>> reference_answer("1,000.0"), reference_answer("#### 17")
    ('1000', '17')
    """
    return extract_answer(answer if FINAL_MARKER in answer else f"{FINAL_MARKER} {answer}")


def join_solution(steps: list[str], answer: str) -> str:
    """Inverse of :func:`split_steps` + :func:`extract_answer`."""
    return "\n".join([*steps, f"{FINAL_MARKER} {answer}"])
