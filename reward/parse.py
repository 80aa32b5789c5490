"""Solution text format: one reasoning step per line, then a final answer line ``#### <answer>``.

This is GSM8K's convention; the synthetic task writes the same format, so one parser serves both.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from reward.registry import ANSWER_RULES

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


STEP_SPLITS = ("line", "sentence", "paragraph")
"""How a solution's reasoning is cut into steps (``data.step_split``): one step per line (the
synthetic and GSM8K formats), per sentence, or per paragraph (blank-line separated: free-form
text of instruct models)."""

_BOUNDARIES = {
    "line": re.compile(r"\n"),
    "paragraph": re.compile(r"\n[ \t]*\n\s*"),
    "sentence": re.compile(r"(?<=[.!?])[ \t]+|\n"),
}
STEP_JOINERS = {"line": "\n", "paragraph": "\n\n", "sentence": "\n"}
"""What is written after each step when steps are joined again (:func:`join_steps`): the PRM's
encoding and the label stage's rollout prefixes. A sentence goes on its own line, so that the
text between steps is one newline token for any tokenizer."""


def _check_split(mode: str) -> None:
    if mode not in _BOUNDARIES:
        raise ValueError(f"unknown step split {mode!r}; expected one of {list(STEP_SPLITS)}")


def answer_line_start(text: str) -> int:
    """Offset of the first line that starts with ``####`` (the final answer line, which is not a
    step and ends the reasoning in every split mode); ``len(text)`` when there is none."""
    pos = 0
    for line in text.split("\n"):
        if line.strip().startswith(FINAL_MARKER):
            return pos
        pos += len(line) + 1
    return len(text)


def step_spans(text: str, mode: str = "line", finished: bool = True) -> list[tuple[int, int, int]]:
    r"""``(start, end, close)`` character offsets of each reasoning step of ``text``.

    ``text[start:end]`` is the step, surrounding whitespace stripped; ``close`` is where the
    boundary that closed it ends (the newline, blank line, or sentence-ending space), so that
    ``text[:close]`` holds the step and its separator. Steps stop at the final answer line
    (:func:`answer_line_start`). A step is closed by a boundary or by the answer line; the last
    one is also closed by the end of a ``finished`` text (it ended with EOS). In a text cut at
    the token budget (``finished=False``) an unclosed last step is unfinished: it is left out,
    never read as a step ("The total" of "...\nThe total").

    >>> step_spans("a=1\nThe total", finished=False)
    [(0, 3, 4)]
    >>> [("A. B!\nC"[s:e], c) for s, e, c in step_spans("A. B!\nC", "sentence")]
    [('A.', 3), ('B!', 6), ('C', 7)]
    """
    _check_split(mode)
    body = answer_line_start(text)
    spans: list[tuple[int, int, int]] = []

    def add(start: int, end: int, close: int) -> None:
        seg = text[start:end]
        if seg.strip():
            lead = len(seg) - len(seg.lstrip())
            spans.append((start + lead, start + len(seg.rstrip()), close))

    pos = 0
    for m in _BOUNDARIES[mode].finditer(text, 0, body):
        add(pos, m.start(), m.end())
        pos = m.end()
    if body < len(text) or finished:
        add(pos, body, body)
    return spans


def split_steps(solution: str, mode: str = "line", finished: bool = True) -> list[str]:
    r"""Reasoning steps of a solution (:func:`step_spans`): in ``line`` mode its non-empty lines
    before the final answer line.

    >>> split_steps("b=7*3=21\nc=21-4=17\n#### 17")
    ['b=7*3=21', 'c=21-4=17']
    >>> split_steps("Half is 24.  So 72 in all.\n", "sentence"), split_steps("b=1\nc=", finished=False)
    (['Half is 24.', 'So 72 in all.'], ['b=1'])
    """
    return [solution[s:e] for s, e, _ in step_spans(solution, mode, finished)]


def join_steps(steps: list[str], k: int | None = None, mode: str = "line") -> str:
    r"""Steps ``0..k`` (all when ``None``) each followed by the mode's joiner
    (:data:`STEP_JOINERS`): the text a rollout of step ``k``'s prefix continues.

    >>> join_steps(["b=1", "c=2"], 0)
    'b=1\n'
    """
    _check_split(mode)
    sep = STEP_JOINERS[mode]
    return "".join(s + sep for s in (steps if k is None else steps[: k + 1]))


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


def _canonical(raw: str) -> str | None:
    """One number comes back canonical (:func:`read_number`), anything else stripped; ``None`` if empty."""
    raw = raw.strip()
    if not raw:
        return None
    number = read_number(raw)
    return raw if number is None else number


@ANSWER_RULES.register(FINAL_MARKER)
def final_marker_answer(text: str) -> str | None:
    """After the first ``####`` line (GSM8K's and the synthetic task's answer line); ``None`` when
    there is none or it is empty. The first marker counts, not the last, so text a model rambles
    on with after its answer cannot change the answer it gave."""
    for line in text.split("\n"):
        m = _FINAL_RE.match(line.strip())
        if m:
            return m.group(1).strip() or None
    return None


def _braced(text: str, start: int) -> str | None:
    """The content of the ``{...}`` group opening at ``text[start]`` (nested braces balanced);
    ``None`` when it never closes."""
    depth = 0
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[start + 1 : i]
    return None


_BOXED_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")


@ANSWER_RULES.register("boxed")
def boxed_answer(text: str) -> str | None:
    r"""The content of the first complete ``\boxed{...}`` (or ``\fbox{...}``), nested braces kept.

    >>> boxed_answer(r"so $\boxed{\frac{1}{2}}$."), boxed_answer(r"\boxed{72"), boxed_answer(r"\boxed{}")
    ('\\frac{1}{2}', None, None)
    """
    for m in _BOXED_RE.finditer(text):
        inner = _braced(text, m.end() - 1)
        if inner is not None and inner.strip():
            return inner.strip()
    return None


_ANSWER_IS_RE = re.compile(r"(?i)(?<![a-z])(?:final\s+)?answer(?:\s+is|\s*[:=])\s*(?:\*\*|__)?:?\s*")
_NUMBER_TOKEN = r"-?\$?\s?\d+(?:,\d{3})*(?:\.\d+)?(?:/\d+)?%?"
_ANSWER_TOKEN_RE = re.compile(rf"(?P<number>{_NUMBER_TOKEN})|\$(?P<math>[^$\n]+)\$")
"""A number first: "$72, and she spent $10" is 72 dollars, not the math ``72, and she spent``."""


@ANSWER_RULES.register("answer_is")
def answer_is_answer(text: str) -> str | None:
    r"""The answer after the first "the answer is" / "Answer:" / "**Final Answer:**" that is
    followed by one: a number (``$``, commas, ``%`` allowed), ``$...$`` math or ``\boxed{...}``.
    Words are not answers: "the answer is not 5" finds nothing there (read as 5 it would pay for
    the opposite claim); of "5 or 6" only the first number counts.

    >>> answer_is_answer("So the answer is 72."), answer_is_answer("**Answer:** $1,000"), answer_is_answer("The answer is not 5.")
    ('72', '$1,000', None)
    """
    for m in _ANSWER_IS_RE.finditer(text):
        rest = text[m.end() :]
        if rest.startswith(("\\boxed", "\\fbox")):
            found = boxed_answer(rest[:400])
        else:
            tok = _ANSWER_TOKEN_RE.match(rest)
            found = None if tok is None else (tok["number"] or tok["math"]).strip()
        if found:
            return found.rstrip(".") if found.endswith(".") and not found.endswith("..") else found
    return None


_LAST_NUMBER_RE = re.compile(r"(?:(?<![\w.)])-)?\d+(?:,\d{3})*(?:\.\d+)?(?:/\d+)?")


@ANSWER_RULES.register("last_number")
def last_number_answer(text: str) -> str | None:
    """The last number in the text (``1,234``, ``-2.5``, ``1/2``), whatever it says: a fallback
    for models that state an answer in no fixed form. It also credits a solution that never
    commits to an answer, so it is never on by default.

    >>> last_number_answer("48/2 = 24 in May, 72 in all."), last_number_answer("5-3 is 2; -4"), last_number_answer("none")
    ('72', '-4', None)
    """
    found = _LAST_NUMBER_RE.findall(text)
    return found[-1] if found else None


DEFAULT_ANSWER_RULES = (FINAL_MARKER,)
"""What :func:`extract_answer` reads when no rules are given: the ``####`` line alone (the format
of the references and of the synthetic task). The stages pass ``data.answer_rules``."""


def extract_answer(solution: str, rules: Sequence[str] = DEFAULT_ANSWER_RULES) -> str | None:
    """The final answer of ``solution`` by the first rule of ``rules`` (names in
    :data:`reward.registry.ANSWER_RULES`) that finds one; ``None`` if none does.

    One number (:func:`read_number`) comes back canonical; anything else ("3 1/2", "\\frac12")
    as written, for the verifier to compare as an expression.

    >>> extract_answer("So 72 in all. The answer is $72.", ["####", "boxed", "answer_is"])
    '72'
    """
    for name in rules:
        raw = ANSWER_RULES.get(name)(solution)
        if raw is not None:
            return _canonical(raw)
    return None


def reference_answer(answer: str) -> str | None:
    """A reference answer (bare, ``"1,000"``, or a ``#### 1,000`` line) normalised exactly like
    a model's final answer, so that the two compare equal when they are the same number.

    >>> reference_answer("1,000.0"), reference_answer("#### 17")
    ('1000', '17')
    """
    return extract_answer(answer if FINAL_MARKER in answer else f"{FINAL_MARKER} {answer}", DEFAULT_ANSWER_RULES)


def join_solution(steps: list[str], answer: str) -> str:
    """Inverse of :func:`split_steps` + :func:`extract_answer`."""
    return "\n".join([*steps, f"{FINAL_MARKER} {answer}"])


@dataclass(frozen=True)
class SolutionFormat:
    """How solutions are read, everywhere alike (``data.step_split``, ``data.answer_rules``):
    what a reasoning step is and where the final answer is.

    >>> f = SolutionFormat("sentence", ("answer_is",))
    >>> f.steps("Half is 24. The answer is 72."), f.answer("Half is 24. The answer is 72."), f.prefix(["A.", "B."], 0)
    (['Half is 24.', 'The answer is 72.'], '72', 'A.\\n')
    """

    step_split: str = "line"
    answer_rules: tuple[str, ...] = DEFAULT_ANSWER_RULES

    def __post_init__(self):
        _check_split(self.step_split)
        for name in self.answer_rules:
            ANSWER_RULES.get(name)  # an unknown rule fails here, naming the known ones

    @property
    def joiner(self) -> str:
        """What follows each step when steps are joined again (:data:`STEP_JOINERS`)."""
        return STEP_JOINERS[self.step_split]

    def steps(self, text: str, finished: bool = True) -> list[str]:
        return split_steps(text, self.step_split, finished)

    def answer(self, text: str) -> str | None:
        return extract_answer(text, self.answer_rules)

    def prefix(self, steps: list[str], k: int) -> str:
        """The text a rollout of step ``k``'s prefix continues (:func:`join_steps`)."""
        return join_steps(steps, k, self.step_split)
