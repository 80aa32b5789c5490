"""Synthetic problems as small programs, and the oracle that judges every step of a solution.

A question is a list of assignments and a target, ``;``-separated::

    a=7;b=5;c=a*3;d=c-b;e=b+2;d=?

Each assignment is a literal (``b=5``) or one operation on two operands, each a variable defined
earlier or a number (``c=a*3``, ``d=c-b``). All values live in ``[0, modulus)``. The target's
*needed* variables are its ancestors; the others (``e`` above) are distractors: a solution that
computes them is right but wasteful. A solution computes derived variables one per line,
operands substituted (``c=7*3=21``, ``d=21-5=16``), then ``#### 16``.

The chain task (``a=7;b=a*3;c=b-4;c=?``) is the special case with no literal variable after the
first and no distractor, and :func:`step_verdicts` judges it exactly as a reference-step
comparison would: its dependency order leaves one right step per position.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reward.parse import extract_answer, split_steps

OPS = ("+", "-", "*")
_LIT_RE = re.compile(r"^([a-z])=(\d+)$")
_OP_RE = re.compile(r"^([a-z])=([a-z]|\d+)([+\-*])([a-z]|\d+)$")
_STEP_RE = re.compile(r"^([a-z])=(\d+)([+\-*])(\d+)=(\d+)$")
_LHS_RE = re.compile(r"^([a-z])=")


def apply_op(a: int, op: str, b: int, modulus: int) -> int:
    if op == "+":
        return (a + b) % modulus
    if op == "-":
        return (a - b) % modulus
    if op == "*":
        return (a * b) % modulus
    raise ValueError(f"unknown operator {op!r}")


@dataclass(frozen=True)
class Program:
    """A parsed question: ``assignments[i] = (var, value)`` for a literal or ``(var, (x, op, y))``
    with operands ``x``/``y`` a variable name or an int; the ``target`` variable."""

    assignments: tuple[tuple[str, int | tuple[str | int, str, str | int]], ...]
    target: str
    modulus: int = 100

    def values(self, written: dict[str, int] | None = None) -> dict[str, int]:
        """Every variable's value; a derived variable in ``written`` (as a solution wrote it,
        maybe wrongly) takes that value, and the ones after it are computed from it."""
        written = written or {}
        vals: dict[str, int] = {}
        for var, expr in self.assignments:
            if isinstance(expr, int):
                vals[var] = expr
            elif var in written:
                vals[var] = written[var]
            else:
                x, op, y = expr
                vals[var] = apply_op(self.operand(x, vals), op, self.operand(y, vals), self.modulus)
        return vals

    @staticmethod
    def operand(x: str | int, vals: dict[str, int]) -> int:
        return x if isinstance(x, int) else vals[x]

    @property
    def derived(self) -> dict[str, tuple]:
        """Variables defined by an operation, in question order."""
        return {v: e for v, e in self.assignments if not isinstance(e, int)}

    def needed(self) -> set[str]:
        """The target and every variable it depends on (literals included)."""
        defs = dict(self.assignments)
        out, todo = set(), [self.target]
        while todo:
            v = todo.pop()
            if v in out:
                continue
            out.add(v)
            if not isinstance(defs[v], int):
                todo += [x for x in (defs[v][0], defs[v][2]) if isinstance(x, str)]
        return out

    def reference_steps(self, verbose: bool = False) -> list[str]:
        """Solution steps in question order: the needed derived variables (``verbose``: all)."""
        vals, needed = self.values(), self.needed()
        return [
            f"{v}={self.operand(x, vals)}{op}{self.operand(y, vals)}={vals[v]}"
            for v, (x, op, y) in self.derived.items()
            if verbose or v in needed
        ]

    @property
    def answer(self) -> int:
        return self.values()[self.target]

    def finish(self, written: dict[str, int]) -> int:
        """The target's value when every derived variable not in ``written`` is computed right
        from the values there: the answer a completer that makes no mistake reaches from that
        prefix."""
        return self.values(written)[self.target]

    def question(self) -> str:
        parts = [f"{v}={e}" if isinstance(e, int) else f"{v}={e[0]}{e[1]}{e[2]}" for v, e in self.assignments]
        return ";".join([*parts, f"{self.target}=?"])


def parse_program(question: str, modulus: int = 100) -> Program:
    """Inverse of :meth:`Program.question`; raises ``ValueError`` on anything else."""
    parts = question.strip().split(";")
    if len(parts) < 2 or not parts[-1].endswith("=?") or len(parts[-1]) != 3:
        raise ValueError(f"not a synthetic question: {question!r}")
    assignments: list[tuple] = []
    seen: set[str] = set()
    for p in parts[:-1]:
        lit, opm = _LIT_RE.match(p), _OP_RE.match(p)
        if lit:
            var, expr = lit.group(1), int(lit.group(2))
        elif opm:
            var = opm.group(1)
            x, op, y = (int(t) if t.isdigit() else t for t in opm.group(2, 3, 4))
            if any(isinstance(t, str) and t not in seen for t in (x, y)):
                raise ValueError(f"assignment {p!r} uses a variable not defined before it in {question!r}")
            expr = (x, op, y)
        else:
            raise ValueError(f"bad assignment {p!r} in {question!r}")
        if var in seen:
            raise ValueError(f"variable {var!r} assigned twice in {question!r}")
        seen.add(var)
        assignments.append((var, expr))
    target = parts[-1][0]
    if target not in seen:
        raise ValueError(f"target {target!r} is not assigned in {question!r}")
    return Program(tuple(assignments), target, modulus)


@dataclass(frozen=True)
class StepVerdict:
    right: bool
    """The step computes a variable not computed before, from operands known by then (literals,
    or variables this solution computed earlier), with the right values and result."""
    needed: bool
    """Right, and its variable is one the target depends on (or the target)."""


def step_verdicts(program: Program, solution: str) -> list[StepVerdict]:
    """Judge each step of ``solution`` on its own (not yet the prefix: see :func:`prefix_labels`)."""
    vals, derived, needed = program.values(), program.derived, program.needed()
    literals = {v for v, e in program.assignments if isinstance(e, int)}
    computed: set[str] = set()
    out = []
    for step in split_steps(solution):
        m = _STEP_RE.match(step.replace(" ", ""))
        right = False
        if m and all(str(int(t)) == t for t in m.group(2, 4, 5)) and m.group(1) in derived and m.group(1) not in computed:
            var, (x, op, y) = m.group(1), derived[m.group(1)]
            known = all(isinstance(t, int) or t in literals or t in computed for t in (x, y))
            right = (
                known
                and m.group(3) == op
                and int(m.group(2)) == program.operand(x, vals)
                and int(m.group(4)) == program.operand(y, vals)
                and int(m.group(5)) == vals[var]
            )
            if right:
                computed.add(var)
        out.append(StepVerdict(right, right and m.group(1) in needed))
    return out


def unneeded_steps(program: Program, solution: str) -> list[bool]:
    r"""For each step: does it compute a derived variable the target does not need (a distractor),
    right or wrong? That is wasted reasoning whatever its arithmetic, and wherever it comes:
    :attr:`StepVerdict.needed` says instead whether a step is right *and* needed.

    >>> p = parse_program("a=7;b=5;c=a*3;d=c-b;e=b+2;d=?")
    >>> unneeded_steps(p, "c=7*3=21\ne=5+2=8\nd=21-5=16\n#### 16")  # e is a distractor, even written wrong
    [False, True, False]
    >>> unneeded_steps(p, "c=7*3=20\ne=5+2=7\nb=5")  # after a wrong step; b is a literal, not computed
    [False, True, False]
    """
    derived, needed = program.derived, program.needed()
    out = []
    for step in split_steps(solution):
        m = _LHS_RE.match(step.replace(" ", ""))
        out.append(bool(m) and m.group(1) in derived and m.group(1) not in needed)
    return out


def needed_attempts(program: Program, solution: str) -> list[tuple[int, bool]]:
    r"""Each step that sets out to compute a needed variable, up to the first one that is wrong:
    how many distractor lines of the question it jumps, and whether it is right.

    The jump is counted from the question line of the last variable the solution wrote to the
    line of the next needed variable it has not computed: the distractor assignments between
    them that it did not write. The verbose style walks every line (jump 0); the direct style
    jumps each distractor in its way. A step whose variable is a distractor is a walk, not an
    attempt, right or wrong (nothing uses its value). A step that names no variable is an
    attempt. This tells whether a policy errs more when it skips lines, the price a length
    term asks it to pay.

    >>> p = parse_program("a=7;b=5;c=a*3;e=b+2;d=c-b;d=?")  # e, between c and d, is a distractor
    >>> needed_attempts(p, "c=7*3=21\nd=21-5=16\n#### 16")  # direct: d jumps e
    [(0, True), (1, True)]
    >>> needed_attempts(p, "c=7*3=21\ne=5+2=7\nd=21-5=16\n#### 16")  # verbose: walks e
    [(0, True), (0, True)]
    >>> needed_attempts(p, "c=7*3=21\nd=21+2=23\n#### 23")  # jumps e, and takes e's "+2": wrong
    [(0, True), (1, False)]
    """
    order = {v: i for i, (v, _) in enumerate(program.assignments)}
    wanted = program.needed()
    needed = [v for v in program.derived if v in wanted]
    distractors = [v for v in program.derived if v not in wanted]
    computed: set[str] = set()
    last, out = -1, []
    for step, verdict in zip(split_steps(solution), step_verdicts(program, solution)):
        m = _LHS_RE.match(step.replace(" ", ""))
        var = m.group(1) if m else None
        if var not in distractors:
            todo = [v for v in needed if v not in computed]
            if not todo:
                break
            out.append((sum(last < order[d] < order[todo[0]] and d not in computed for d in distractors), verdict.right))
            if not verdict.right:
                break
        computed.add(var)
        last = order[var]
    return out


def prefix_labels(verdicts: list[StepVerdict]) -> list[bool]:
    """Is the solution still right up to and including each step (every step so far right)?"""
    labels, ok = [], True
    for v in verdicts:
        ok = ok and v.right
        labels.append(ok)
    return labels


def reachable_labels(program: Program, solution: str) -> list[bool]:
    r"""For each step: does a completer that makes no mistake, finishing the solution from the
    values written so far, reach the right answer? (A line that is not a step of the form
    ``v=x op y=z`` for a derived ``v`` writes nothing.)

    This is what Monte-Carlo labels estimate with a perfect completer, one never misled by a
    wrong line. The two differ where a wrong step does not change the answer: a distractor,
    arithmetic mod ``m`` forgets part of an error (``x*5`` depends only on ``x mod 20`` when
    ``m`` is 100), or a later step writes the right value again. (A real completer thrown off by
    such a line labels it bad, as :func:`prefix_labels` does, so it can agree with them more.)

    >>> p = parse_program("a=3;b=a*5;c=b+1;c=?", modulus=10)
    >>> reachable_labels(p, "b=3*5=7\nc=7+1=8")  # b is wrong (5), and so is the answer (8 vs 6)
    [False, False]
    >>> reachable_labels(p, "b=3*5=15\nc=15+1=6")  # 15 is 5 mod 10: the answer is still right
    [True, True]
    >>> prefix_labels(step_verdicts(p, "b=3*5=15\nc=15+1=6"))  # the oracle calls 15 wrong
    [False, False]
    """
    written: dict[str, int] = {}
    out = []
    for step in split_steps(solution):
        m = _STEP_RE.match(step.replace(" ", ""))
        if m and m.group(1) in program.derived:
            written[m.group(1)] = int(m.group(5))
        out.append(program.finish(written) == program.answer)
    return out


def first_error(program: Program, solution: str) -> int | None:
    """Index of the first wrong step; ``None`` when every step is right and the answer is.

    A solution whose steps are all right but never computes the target, or whose final answer is
    wrong, has its first error at ``len(steps)``: the missing step / the answer line.
    """
    verdicts = step_verdicts(program, solution)
    for i, v in enumerate(verdicts):
        if not v.right:
            return i
    reached = any(s.startswith(f"{program.target}=") for s in split_steps(solution)) or program.target not in program.derived
    if not reached or extract_answer(solution) != str(program.answer):
        return len(verdicts)
    return None
