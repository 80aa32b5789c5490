"""Which steps of a solution does its answer use? Dead-step detection from the text alone.

A step that computes a number nothing after it uses is wasted work: on the ``dag`` task, a
distractor (``e=5*2=10`` when the target never reads ``e``); in free text, a side calculation
the answer does not need. Read backwards from the answer, like a compiler's liveness analysis:
the answer's numbers are live; a step is used when its result (its last number) is live, and
then its operands (its other numbers) become live too. A step with no number cannot be judged
and counts as used.

Values, not names, are matched, so a wasted step whose result happens to equal a live number is
taken as used (never the reverse: a used step's result is always live). No model and no
reference solution: a training-free, per-step length signal (``rl.process_scorer: reuse``).
"""

from __future__ import annotations

import re

from reward.parse import answer_line_start, split_steps

_NUMBER_RE = re.compile(r"(?:(?<![\w.)])-)?\d+(?:,\d{3})*(?:\.\d+)?")


def numbers(text: str) -> list[str]:
    """The numbers of ``text`` in order, canonical (no thousands commas, no trailing zeros).

    >>> numbers("Half of 1,200.50 is 600.25; 3.0 - -2")
    ['1200.5', '600.25', '3', '-2']
    """
    out = []
    for raw in _NUMBER_RE.findall(text):
        x = raw.replace(",", "")
        if "." in x:
            x = x.rstrip("0").rstrip(".")
        out.append("0" if x in ("-0", "") else x)
    return out


def used_steps(steps: list[str], answer: str) -> list[bool]:
    """For each step: does the answer use its result, directly or through later used steps?

    >>> used_steps(["b=5+3=8", "e=5*2=10", "c=8*2=16"], "#### 16")
    [True, False, True]
    >>> used_steps(["e=5*2=10", "f=10+1=11", "c=5+3=8"], "#### 8")  # f uses e, but nothing uses f
    [False, False, True]
    >>> used_steps(["First, think.", "c=5+3=8"], "#### 8")  # no number: not judged, so used
    [True, True]
    """
    live = set(numbers(answer))
    used = [True] * len(steps)
    for j in range(len(steps) - 1, -1, -1):
        found = numbers(steps[j])
        if not found:
            continue
        used[j] = found[-1] in live
        if used[j]:
            live.update(found[:-1])
    return used


def solution_used_steps(solution: str, mode: str = "line", finished: bool = True) -> list[bool]:
    """:func:`used_steps` of a whole solution: its steps as :func:`reward.parse.split_steps`
    finds them, the answer line (``####`` and after) as the answer. A cut-off last step
    (``finished`` false) is not a step, as for every scorer. Without an answer line, the last
    step's result stands for the answer when the solution ended; one cut off before its answer
    has every step taken as used (what it would have written next is unknown).

    >>> solution_used_steps("b=5+3=8\\ne=5*2=10\\nc=8*2=16\\n#### 16")
    [True, False, True]
    >>> solution_used_steps("b=5+3=8\\ne=5*2=10\\nc=8*2=16")
    [True, False, True]
    """
    steps = split_steps(solution, mode, finished)
    cut = answer_line_start(solution)
    if cut < len(solution):
        return used_steps(steps, solution[cut:])
    if not finished:  # cut off before its answer: what comes next might use any step
        return [True] * len(steps)
    return used_steps(steps, " ".join(numbers(steps[-1])[-1:]) if steps else "")
