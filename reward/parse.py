"""Solution text format: one reasoning step per line, then a final answer line ``#### <answer>``.

This is GSM8K's convention; the synthetic task writes the same format, so one parser serves both.
"""

from __future__ import annotations

import re

FINAL_MARKER = "####"
_FINAL_RE = re.compile(r"####\s*(.*)")
_CALC_RE = re.compile(r"<<[^<>]*>>")
_WORD = r"[^\W\d_]+(?:['’-][^\W\d_]+)*"  # letters only: a unit ("dollars"), never a second number
# A final answer that *is* one number: "$" before it, "%" or a full stop after it, commas only
# between groups of three digits, unit words after a space. "3 1/2", "2,5" and "1 234" are not
# (read as 3, 25 and 1 they would silently change the problem), nor are expressions ("1/2").
_ONE_NUMBER_RE = re.compile(rf"(?P<neg1>-)?\$?\s*(?P<neg2>-)?(?P<int>\d{{1,3}}(?:,\d{{3}})+|\d+)(?P<frac>\.\d+)?%?\.?(?:\s+{_WORD})*\.?")


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


def read_number(text: str) -> str | None:
    """Canonical string of ``text`` when it is exactly one number, else ``None``.

    Commas dropped, trailing zeros of the fraction and leading zeros of the integer part too,
    so equal plain numbers get equal strings:

    >>> read_number("$1,234.50"), read_number("-2.50"), read_number("18%"), read_number("7."), read_number("12 dollars")
    ('1234.5', '-2.5', '18', '7', '12')
    >>> read_number("3 1/2"), read_number("2,5"), read_number("1 234"), read_number("1/2")
    (None, None, None, None)
    """
    m = _ONE_NUMBER_RE.fullmatch(text.strip())
    if not m or (m["neg1"] and m["neg2"]):
        return None
    whole = m["int"].replace(",", "").lstrip("0") or "0"  # not int(): it refuses over 4,300 digits
    frac = (m["frac"] or "").rstrip("0").rstrip(".")
    s = whole + frac
    return s if s == "0" or not (m["neg1"] or m["neg2"]) else "-" + s


def extract_answer(solution: str) -> str | None:
    """The final answer after the first ``####`` line; ``None`` if absent.

    One number (:func:`read_number`) comes back canonical; anything else ("3 1/2", "\\frac12")
    as written, for the verifier to compare as an expression. The first marker counts (not the
    last), so text a model rambles on with after its answer cannot change the answer it gave.
    """
    for line in solution.split("\n"):
        line = line.strip()
        m = _FINAL_RE.match(line)
        if m:
            raw = m.group(1).strip()
            if not raw:
                return None
            number = read_number(raw)
            return raw if number is None else number
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
