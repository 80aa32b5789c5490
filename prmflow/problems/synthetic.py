"""The embedded default task: seeded multi-step modular arithmetic chains, and their oracle.

A problem is a chain of assignments, each the previous variable combined with a literal::

    question:  a=7;b=a*3;c=b-4;c=?
    solution:  b=7*3=21
               c=21-4=17
               #### 17

Difficulty is the chain length (number of steps); all values live in ``[0, modulus)``. Because
the generator knows every intermediate value, :func:`oracle_step_labels` says for any candidate
solution which steps are right, which no real dataset here can: it measures how good automatic
step labels and the PRM are.
"""

from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass

from reward.parse import extract_answer, join_solution, split_steps

VARIABLES = string.ascii_lowercase
OPS = ("+", "-", "*")
_ASSIGN_RE = re.compile(r"^([a-z])=([a-z])([+\-*])(\d+)$")
_QUESTION_RE = re.compile(r"^([a-z])=(\d+)$")


@dataclass(frozen=True)
class Chain:
    """A parsed problem: start value and the ``(var, op, operand)`` of each step."""

    start_var: str
    start: int
    ops: tuple[tuple[str, str, int], ...]
    modulus: int

    @property
    def values(self) -> list[int]:
        """Value after each step (``len(ops)`` items)."""
        vals, v = [], self.start
        for _, op, x in self.ops:
            v = apply_op(v, op, x, self.modulus)
            vals.append(v)
        return vals

    def reference_steps(self) -> list[str]:
        steps, prev = [], self.start
        for (var, op, x), v in zip(self.ops, self.values):
            steps.append(f"{var}={prev}{op}{x}={v}")
            prev = v
        return steps

    @property
    def answer(self) -> int:
        return self.values[-1] if self.ops else self.start


def apply_op(a: int, op: str, b: int, modulus: int) -> int:
    if op == "+":
        return (a + b) % modulus
    if op == "-":
        return (a - b) % modulus
    if op == "*":
        return (a * b) % modulus
    raise ValueError(f"unknown operator {op!r}")


def make_chain(rng: random.Random, num_steps: int, modulus: int = 100) -> Chain:
    if not 1 <= num_steps < len(VARIABLES):
        raise ValueError(f"num_steps must be in [1, {len(VARIABLES) - 1}], got {num_steps}")
    ops = []
    for i in range(num_steps):
        op = rng.choice(OPS)
        # Single-digit operands: values still span [0, modulus), but the arithmetic facts a
        # tiny model must learn stay in the thousands (measured: operands up to 99 left a 1M
        # model at chance after 1,000 SFT steps).
        x = rng.randint(2, 9) if op == "*" else rng.randint(1, 9)
        ops.append((VARIABLES[i + 1], op, x))
    return Chain(VARIABLES[0], rng.randrange(modulus), tuple(ops), modulus)


def format_question(chain: Chain) -> str:
    parts = [f"{chain.start_var}={chain.start}"]
    prev = chain.start_var
    for var, op, x in chain.ops:
        parts.append(f"{var}={prev}{op}{x}")
        prev = var
    parts.append(f"{prev}=?")
    return ";".join(parts)


def parse_question(question: str, modulus: int = 100) -> Chain:
    """Inverse of :func:`format_question`; raises ``ValueError`` on anything else."""
    parts = question.strip().split(";")
    if len(parts) < 2 or not parts[-1].endswith("=?"):
        raise ValueError(f"not a synthetic chain question: {question!r}")
    m = _QUESTION_RE.match(parts[0])
    if not m:
        raise ValueError(f"bad start assignment {parts[0]!r} in {question!r}")
    start_var, start = m.group(1), int(m.group(2))
    ops, prev = [], start_var
    for p in parts[1:-1]:
        m = _ASSIGN_RE.match(p)
        if not m or m.group(2) != prev:
            raise ValueError(f"bad step {p!r} in {question!r}")
        ops.append((m.group(1), m.group(3), int(m.group(4))))
        prev = m.group(1)
    return Chain(start_var, start, tuple(ops), modulus)


def make_problem(rng: random.Random, num_steps: int, modulus: int = 100) -> dict:
    """One problem in the curated schema (without ``id``/``source``)."""
    chain = make_chain(rng, num_steps, modulus)
    steps = chain.reference_steps()
    return {
        "question": format_question(chain),
        "answer": join_solution(steps, str(chain.answer)),
        "final_answer": str(chain.answer),
        "steps": steps,
        "difficulty": num_steps,
    }


def generate_problems(n: int, seed: int, min_steps: int, max_steps: int, modulus: int = 100) -> list[dict]:
    """``n`` problems, chain lengths uniform in ``[min_steps, max_steps]``, reproducible by seed."""
    rng = random.Random(seed)
    return [make_problem(rng, rng.randint(min_steps, max_steps), modulus) for _ in range(n)]


def oracle_step_labels(question: str, solution: str, modulus: int = 100) -> list[bool]:
    """For each step of ``solution``: is the solution still right up to and including it?

    A step is right when it is exactly the reference step at its position (right variable,
    right carried value, right operand, right result). Once a step is wrong every later step is
    labelled wrong too: this is the prefix correctness that Monte-Carlo labels estimate
    ("can this prefix still reach the answer"). Steps beyond the chain's length are wrong.
    """
    ref = parse_question(question, modulus).reference_steps()
    labels, ok = [], True
    for i, step in enumerate(split_steps(solution)):
        ok = ok and i < len(ref) and step.replace(" ", "") == ref[i]
        labels.append(ok)
    return labels


def oracle_first_error(question: str, solution: str, modulus: int = 100) -> int | None:
    """Index of the first wrong step; ``None`` when every step is right.

    A solution whose steps are all right but stops early (or gives a wrong final answer) has
    its first error at ``len(steps)``: the missing step / the answer line.
    """
    labels = oracle_step_labels(question, solution, modulus)
    for i, ok in enumerate(labels):
        if not ok:
            return i
    chain = parse_question(question, modulus)
    if len(labels) < len(chain.ops) or extract_answer(solution) != str(chain.answer):
        return len(labels)
    return None
