"""Sampled solutions to label, and rollouts of their step prefixes.

A solution has steps ``s_0 .. s_{n-1}`` (then a final answer line). The *prefix* of step ``k``
is the prompt plus ``s_0 .. s_k``, each ended by a newline (:func:`steps_text`); a *rollout* is
one sampled completion of a prefix, and its outcome is whether the prefix plus the completion
reaches the reference answer (:func:`reward.outcome.verify`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from prmflow.config import ModelConfig
from prmflow.lm.prompts import format_prompt
from prmflow.problems.synthetic import oracle_step_labels
from reward.outcome import verify
from reward.parse import split_steps

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
    """Oracle step labels (synthetic source only), else ``None``."""

    @property
    def answer(self) -> str:
        return str(self.problem["final_answer"])


def steps_text(steps: Sequence[str], k: int) -> str:
    """Text of the prefix through step ``k``, ending with a newline (the next step's start)."""
    return "\n".join(steps[: k + 1]) + "\n"


def make_solutions(problems: list[dict], texts: list[str], n: int, model_cfg: ModelConfig, modulus: int = 100) -> list[Solution]:
    """Group ``n`` sampled texts per problem (prompt-major) into :class:`Solution` objects."""
    if len(texts) != len(problems) * n:
        raise ValueError(f"{len(texts)} texts for {len(problems)} problems x {n} samples")
    out = []
    for i, p in enumerate(problems):
        prompt = format_prompt(p["question"], model_cfg)
        for j, text in enumerate(texts[i * n : (i + 1) * n]):
            oracle = oracle_step_labels(p["question"], text, modulus) if p.get("source") == "synthetic" else None
            correct = verify(text, str(p["final_answer"]))
            out.append(Solution(p, j, prompt, text, split_steps(text), correct, oracle))
    return out


class Rollouts:
    """Rollouts of step prefixes, memoised by ``(solution, step, seed)``.

    Methods that need the same prefixes with the same seed (``mc_hard`` and ``mc_soft``) share
    one sampling run: the second asks and pays nothing. :attr:`sampled` counts the rollouts
    really sampled.
    """

    def __init__(self, solutions: list[Solution], rollout_fn: RolloutFn, n: int):
        self.solutions, self.rollout_fn, self.n = solutions, rollout_fn, n
        self.cache: dict[tuple[int, int, int], list[bool]] = {}
        self.sampled = 0

    def outcomes(self, jobs: list[tuple[int, int]], seed: int, desc: str) -> list[list[bool]]:
        """Outcomes of ``n`` rollouts of each prefix ``(solution index, step k)`` in ``jobs``."""
        todo = [job for job in dict.fromkeys(jobs) if (*job, seed) not in self.cache]
        for job, res in zip(todo, self._run(todo, seed, desc)):
            self.cache[(*job, seed)] = res
        return [self.cache[(*job, seed)] for job in jobs]

    def _run(self, jobs: list[tuple[int, int]], seed: int, desc: str) -> list[list[bool]]:
        """One ``rollout_fn`` call for all ``jobs``, ordered by the reference steps still to go
        and the prompt length, so that a batch holds sequences that finish at about the same
        time (sampling runs until the longest sequence of a batch ends)."""
        if not jobs:
            return []
        sols = self.solutions

        def remaining(job: tuple[int, int]) -> tuple[int, int]:
            s = sols[job[0]]
            ref_steps = len(s.problem.get("steps") or []) or len(s.steps)
            return ref_steps - job[1], len(s.prompt) + len(steps_text(s.steps, job[1]))

        order = sorted(range(len(jobs)), key=lambda j: remaining(jobs[j]))
        prefixes = [steps_text(sols[jobs[j][0]].steps, jobs[j][1]) for j in order]
        prompts = [sols[jobs[j][0]].prompt + prefix for j, prefix in zip(order, prefixes)]
        texts = self.rollout_fn(prompts, self.n, seed=seed, desc=desc)
        if len(texts) != len(prompts) * self.n:
            raise ValueError(f"rollout_fn returned {len(texts)} texts for {len(prompts)} prompts x {self.n}")
        self.sampled += len(texts)
        out: list[list[bool]] = [[] for _ in jobs]
        for pos, (j, prefix) in enumerate(zip(order, prefixes)):
            answer = sols[jobs[j][0]].answer
            out[j] = [verify(prefix + t, answer) for t in texts[pos * self.n : (pos + 1) * self.n]]
        return out
