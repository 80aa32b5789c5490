"""The embedded tasks (``data.task``): seeded multi-step modular arithmetic, and their oracle.

``chain`` (the default): a chain of assignments, each the previous variable combined with a digit::

    question:  a=7;b=a*3;c=b-4;c=?
    solution:  b=7*3=21
               c=21-4=17
               #### 17

``dag``: the same arithmetic, with digits held in variables to look up and distractors the target
does not need, so a solution can be right but wasteful (``e=5+2=7`` below) or skip what it needs::

    question:  a=7;b=5;c=a*3;d=c-b;e=b+2;d=?
    direct:    c=7*3=21          verbose:  c=7*3=21
               d=21-5=16                   d=21-5=16
               #### 16                     e=5+2=7
                                           #### 16

Difficulty is the number of needed steps; all values live in ``[0, modulus)``. Because the
generator knows every value, the oracle (:mod:`prmflow.problems.programs`) says for any candidate
solution which steps are right and which are needed, which no real dataset here can: it measures
how good automatic step labels and the PRM are, and how much reasoning was wasted.
"""

from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass

from prmflow.problems.programs import (
    OPS,
    Program,
    apply_op,
    first_error,
    parse_program,
    prefix_labels,
    reachable_labels,
    step_verdicts,
    unneeded_steps,
)
from reward.parse import join_solution

VARIABLES = string.ascii_lowercase
"""One letter per variable: a problem has at most this many (``data``'s sizes are checked against it)."""
MAX_DAG_STEPS = 12
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

    A step is right when it computes a variable of the question not computed before, from
    operands known by then, with the right values and result (:mod:`prmflow.problems.programs`;
    for a chain that is exactly the reference step of its position). Once a step is wrong every
    later step is labelled wrong too: this is the prefix correctness that Monte-Carlo labels
    estimate ("can this prefix still reach the answer"). Steps beyond the chain are wrong.
    """
    return prefix_labels(step_verdicts(parse_program(question, modulus), solution))


def oracle_reachable_labels(question: str, solution: str, modulus: int = 100) -> list[bool]:
    """For each step: does a completer that makes no mistake still reach the right answer from
    it? What Monte-Carlo labels estimate with a perfect completer
    (:func:`prmflow.problems.programs.reachable_labels`)."""
    return reachable_labels(parse_program(question, modulus), solution)


def oracle_needed_steps(question: str, solution: str, modulus: int = 100) -> list[bool]:
    """For each step: is it right *and* needed for the target (a right step computing a
    distractor is right but wasteful)?"""
    return [v.needed for v in step_verdicts(parse_program(question, modulus), solution)]


def oracle_unneeded_steps(question: str, solution: str, modulus: int = 100) -> list[bool]:
    """For each step: does it compute a distractor, a variable the target does not need, right
    or wrong (:func:`prmflow.problems.programs.unneeded_steps`)?"""
    return unneeded_steps(parse_program(question, modulus), solution)


def oracle_first_error(question: str, solution: str, modulus: int = 100) -> int | None:
    """Index of the first wrong step; ``None`` when every step is right.

    A solution whose steps are all right but stops early (or gives a wrong final answer) has
    its first error at ``len(steps)``: the missing step / the answer line.
    """
    return first_error(parse_program(question, modulus), solution)


# --------------------------------------------------------------------------- the dag task


def make_dag(rng: random.Random, num_steps: int, modulus: int = 100, max_distractors: int = 3, literal_var_prob: float = 0.4) -> Program:
    """A chain of ``num_steps`` needed operations whose second operand is, with probability
    ``literal_var_prob``, a variable holding a digit (``b=5; d=c-b``) instead of a digit, plus
    0..``max_distractors`` distractors: operations on earlier variables the target never uses.

    Operands stay "value op digit", the chain task's arithmetic, so the task adds structure
    (look a value up, skip what is not needed) without new arithmetic facts to learn.
    """
    if not 1 <= num_steps <= MAX_DAG_STEPS:
        raise ValueError(f"num_steps must be in [1, {MAX_DAG_STEPS}], got {num_steps}")
    nodes: list[tuple] = [("lit", rng.randrange(modulus))]  # (kind, payload) in question order
    prev = 0
    for _ in range(num_steps):
        op = rng.choice(OPS)
        digit = rng.randint(2, 9) if op == "*" else rng.randint(1, 9)
        if rng.random() < literal_var_prob:
            nodes.append(("lit", digit))
            second: int | tuple = ("node", len(nodes) - 1)
        else:
            second = digit
        nodes.append(("op", (("node", prev), op, second)))
        prev = len(nodes) - 1
    target = prev
    for _ in range(rng.randint(0, max_distractors)):
        src = rng.randrange(len(nodes))
        op = rng.choice(OPS)
        digit = rng.randint(2, 9) if op == "*" else rng.randint(1, 9)
        at = rng.randint(src + 1, len(nodes))  # after its operand
        nodes.insert(at, ("op", (("node", src), op, digit)))
        target += at <= target
        nodes = [_shift(n, at) for n in nodes]
    names = {i: VARIABLES[i] for i in range(len(nodes))}

    def name(x):
        return names[x[1]] if isinstance(x, tuple) else x

    assignments = tuple(
        (names[i], payload if kind == "lit" else (name(payload[0]), payload[1], name(payload[2])))
        for i, (kind, payload) in enumerate(nodes)
    )
    return Program(assignments, names[target], modulus)


def _shift(node: tuple, at: int) -> tuple:
    """A node's references after inserting a node at index ``at`` (later indices move by one)."""
    kind, payload = node
    if kind == "lit":
        return node

    def ref(x):
        return ("node", x[1] + (x[1] >= at)) if isinstance(x, tuple) and x[0] == "node" else x

    # the inserted node itself refers to an earlier index: never shifted
    return (kind, (ref(payload[0]), payload[1], ref(payload[2])))


def program_problem(program: Program, difficulty: int) -> dict:
    """A problem in the curated schema (without ``id``/``source``): the direct solution."""
    steps = program.reference_steps()
    return {
        "question": program.question(),
        "answer": join_solution(steps, str(program.answer)),
        "final_answer": str(program.answer),
        "steps": steps,
        "difficulty": difficulty,
    }


def generate_dag_problems(
    n: int, seed: int, min_steps: int, max_steps: int, modulus: int = 100, max_distractors: int = 3, literal_var_prob: float = 0.4
) -> list[dict]:
    """``n`` dag problems, needed steps uniform in ``[min_steps, max_steps]``, reproducible by seed."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        k = rng.randint(min_steps, max_steps)
        out.append(program_problem(make_dag(rng, k, modulus, max_distractors, literal_var_prob), k))
    return out


def verbose_solution(question: str, modulus: int = 100) -> str:
    """The solution that computes every derived variable in question order, distractors too."""
    program = parse_program(question, modulus)
    return join_solution(program.reference_steps(verbose=True), str(program.answer))


TASKS = ("chain", "dag")
"""``data.task``: the synthetic task family."""


def problems(n: int, seed: int, data) -> list[dict]:
    """``n`` problems of ``data.task`` with ``data``'s difficulty range and knobs (``DataConfig``)."""
    if data.task == "chain":
        return generate_problems(n, seed, data.min_steps, data.max_steps, data.modulus)
    return generate_dag_problems(n, seed, data.min_steps, data.max_steps, data.modulus, data.max_distractors, data.literal_var_prob)
