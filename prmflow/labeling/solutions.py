"""Sampled solutions to label, and rollouts of their step prefixes.

A solution has steps ``s_0 .. s_{n-1}`` (then a final answer line), as the solution format reads
them (:class:`reward.parse.SolutionFormat`: ``data.step_split``). The *prefix* of step ``k`` is
the prompt plus ``s_0 .. s_k``, each followed by the split's joiner (a newline for lines); a
*rollout* is one sampled completion of a prefix, and its outcome is whether the prefix plus the
completion reaches the reference answer (:func:`reward.outcome.verify`, ``data.answer_rules``).

A solution cut at the token budget (``finished`` false) keeps only its closed steps: its cut-off
last line ("The total") is not a step and is never labelled.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from prmflow.problems.synthetic import oracle_reachable_labels, oracle_step_labels
from reward.outcome import verify
from reward.parse import SolutionFormat

RolloutFn = Callable[..., list[str]]
"""``rollout_fn(prompts, n, *, seed, desc) -> texts``: ``n`` completions per prompt,
prompt-major (completions ``i*n .. i*n+n-1`` continue prompt ``i``)."""


@dataclass
class Solution:
    """One sampled solution of one problem, split into steps."""

    problem: dict
    sample_index: int
    prompt: str
    text: str
    steps: list[str]
    correct: bool
    oracle: list[bool] | None
    """Oracle step labels (synthetic source, line steps only), else ``None``."""
    finished: bool = True
    """It ended with EOS; ``False``: cut at the token budget."""
    cut_step: bool = False
    """Cut at the budget in the middle of a step, which was dropped (not in ``steps``)."""
    reachable: list[bool] | None = None
    """Where there is an oracle: can a completer that makes no mistake still reach the right
    answer from each step? (What Monte-Carlo labels estimate with a perfect completer.)"""

    @property
    def answer(self) -> str:
        return str(self.problem["final_answer"])


def make_solutions(
    problems: list[dict],
    texts: list[str],
    n: int,
    prompts: Sequence[str],
    fmt: SolutionFormat = SolutionFormat(),
    modulus: int = 100,
    finished: Sequence[bool] | None = None,
) -> list[Solution]:
    """Group ``n`` sampled texts per problem (prompt-major; ``prompts[i]`` is problem ``i``'s)
    into :class:`Solution` objects, split and judged by ``fmt``. ``finished[k]``: text ``k``
    ended with EOS (``None``: all did)."""
    if len(texts) != len(problems) * n or len(prompts) != len(problems):
        raise ValueError(f"{len(texts)} texts and {len(prompts)} prompts for {len(problems)} problems x {n} samples")
    finished = [True] * len(texts) if finished is None else list(finished)
    out = []
    for i, p in enumerate(problems):
        for j, text in enumerate(texts[i * n : (i + 1) * n]):
            done = finished[i * n + j]
            steps = fmt.steps(text, done)
            oracle = reachable = None
            if p.get("source") == "synthetic" and fmt.step_split == "line":  # the oracle reads lines
                oracle = oracle_step_labels(p["question"], text, modulus)[: len(steps)]
                reachable = oracle_reachable_labels(p["question"], text, modulus)[: len(steps)]
            correct = verify(text, str(p["final_answer"]), rules=fmt.answer_rules)
            cut = not done and len(fmt.steps(text)) > len(steps)
            out.append(Solution(p, j, prompts[i], text, steps, correct, oracle, done, cut, reachable))
    return out


class Rollouts:
    """Rollouts of step prefixes: one stream of outcomes per prefix ``(solution, step)``, shared
    by every method.

    A method asks for outcomes ``start .. start + n - 1`` of a prefix's stream; what the stream
    does not hold yet is sampled (one ``rollout_fn`` call per missing count, seeded
    ``seed + call number``) and appended. So methods read the same draws for the same prefix
    (common random numbers): ``mc_hard`` and ``mc_soft`` share theirs outright, and where
    ``first_error`` disagrees with MC it is the search's assumption, not sampling noise. Each
    method counts what it read (its cost); :attr:`sampled` counts the rollouts really sampled.
    """

    def __init__(self, solutions: list[Solution], rollout_fn: RolloutFn, n: int, fmt: SolutionFormat = SolutionFormat(), seed: int = 0):
        self.solutions, self.rollout_fn, self.n, self.fmt, self.seed = solutions, rollout_fn, n, fmt, seed
        self.streams: dict[tuple[int, int], list[bool]] = {}
        self.sampled = self.calls = 0

    def outcomes(self, jobs: list[tuple[int, int]], desc: str, n: int | None = None, start: int = 0) -> list[list[bool]]:
        """Outcomes ``start .. start + n - 1`` (``n`` default :attr:`n`) of the stream of each
        prefix ``(solution index, step k)`` in ``jobs``, sampling what the streams lack."""
        n = self.n if n is None else n
        missing: dict[int, list[tuple[int, int]]] = {}  # rollouts to sample -> prefixes
        for job in dict.fromkeys(jobs):
            lack = start + n - len(self.streams.get(job, []))
            if lack > 0:
                missing.setdefault(lack, []).append(job)
        for lack, todo in sorted(missing.items()):
            self.calls += 1
            for job, res in zip(todo, self._run(todo, self.seed + self.calls, desc, lack)):
                self.streams.setdefault(job, []).extend(res)
        return [self.streams[job][start : start + n] for job in jobs]

    def _run(self, jobs: list[tuple[int, int]], seed: int, desc: str, n: int) -> list[list[bool]]:
        """One ``rollout_fn`` call for all ``jobs``, ordered by the reference steps still to go
        and the prompt length, so that a batch holds sequences that finish at about the same
        time (sampling runs until the longest sequence of a batch ends)."""
        if not jobs:
            return []
        sols, fmt = self.solutions, self.fmt

        def remaining(job: tuple[int, int]) -> tuple[int, int]:
            s = sols[job[0]]
            ref_steps = len(s.problem.get("steps") or []) or len(s.steps)
            return ref_steps - job[1], len(s.prompt) + len(fmt.prefix(s.steps, job[1]))

        order = sorted(range(len(jobs)), key=lambda j: remaining(jobs[j]))
        prefixes = [fmt.prefix(sols[jobs[j][0]].steps, jobs[j][1]) for j in order]
        prompts = [sols[jobs[j][0]].prompt + prefix for j, prefix in zip(order, prefixes)]
        texts = self.rollout_fn(prompts, n, seed=seed, desc=desc)
        if len(texts) != len(prompts) * n:
            raise ValueError(f"rollout_fn returned {len(texts)} texts for {len(prompts)} prompts x {n}")
        self.sampled += len(texts)
        out: list[list[bool]] = [[] for _ in jobs]
        for pos, (j, prefix) in enumerate(zip(order, prefixes)):
            answer = sols[jobs[j][0]].answer
            out[j] = [verify(prefix + t, answer, rules=fmt.answer_rules) for t in texts[pos * n : (pos + 1) * n]]
        return out
