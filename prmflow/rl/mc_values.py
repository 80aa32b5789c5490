"""Monte-Carlo step values from the policy being trained: ``rl.process_scorer: mc`` (VinePPO-style).

VinePPO (Kazemnejad et al. 2024) needs no value network and no PRM: the value of a reasoning
state is estimated by sampling ``K`` completions of it from the *current* policy and counting
how many reach the reference answer. As a step scorer, step ``k``'s score is that fraction for
the prefix ``s_0 .. s_k`` (the same prefix a Monte-Carlo label rolls out, :mod:`prmflow.labeling`,
but from the policy as it is now, at every RL step, so it cannot drift off-policy). With progress
credit (``rl.process_mode: step_delta``) a step's advantage is the change in value it makes,
``V(s_0..s_k) - V(s_0..s_{k-1})``, normalised within the group: VinePPO's advantage, with the
group's mean score standing in for the value of the bare prompt.

Cost: ``K`` rollouts per distinct step prefix. Completions of one prompt share their first steps
(more so at low temperature), and a shared prefix is rolled out once.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from prmflow.lm.sampling import sample
from reward.outcome import verify
from reward.parse import SolutionFormat


class MCValueScorer:
    """Per-step Monte-Carlo values of completions of known prompts (the scorers' ``score`` API,
    :class:`prmflow.prm.scorers.StepScorer`), sampled from ``model`` as it is when called.

    ``answers``: the reference final answer of each prompt (as the policy saw it);
    ``rollouts``: completions per distinct prefix (``rl.mc_rollouts``); ``seed``: with the
    prefixes, seeds each call (the same samples give the same values: a resumed run replays them).
    ``last_stats`` says what the last call cost.
    """

    def __init__(
        self,
        model,
        tokenizer,
        answers: dict[str, str],
        rollouts: int,
        temperature: float,
        max_new_tokens: int,
        fmt: SolutionFormat = SolutionFormat(),
        batch_size: int = 512,
        seed: int = 0,
    ):
        if rollouts < 1:
            raise ValueError(f"rl.mc_rollouts must be >= 1, got {rollouts}")
        self.model, self.tokenizer, self.answers = model, tokenizer, answers
        self.rollouts, self.temperature, self.max_new_tokens = rollouts, temperature, max_new_tokens
        self.fmt, self.batch_size, self.seed = fmt, batch_size, seed
        self.last_stats: dict[str, float] = {}

    def score(
        self, prompts: Sequence[str], solutions: Sequence[str], batch_size: int = 64, finished: Sequence[bool] | None = None
    ) -> list[list[float]]:
        """Per-step values (``[]`` for a solution without steps); a cut-off last step
        (``finished[i]`` false) is not scored, as with every scorer."""
        finished = [True] * len(solutions) if finished is None else finished
        steps = [self.fmt.steps(text, done) for text, done in zip(solutions, finished)]
        for p in prompts:
            if p not in self.answers:
                raise KeyError(f"mc scorer: no reference answer for prompt {p[:60]!r}")
        per_solution = [[(p, self.fmt.prefix(st, k)) for k in range(len(st))] for p, st in zip(prompts, steps)]
        index: dict[tuple[str, str], int] = {}  # (prompt, prefix) -> its row in the rollouts
        for key in (key for sol in per_solution for key in sol):
            index.setdefault(key, len(index))
        keys = list(index)
        values: list[float] = []
        if keys:
            seed = zlib.crc32("\x00".join(p + t for p, t in keys).encode()) ^ self.seed
            out = sample(
                self.model,
                self.tokenizer,
                [p + t for p, t in keys],
                self.rollouts,
                temperature=self.temperature,
                max_new_tokens=self.max_new_tokens,
                batch_size=self.batch_size,
                seed=seed,
            )
            for j, (p, prefix) in enumerate(keys):
                wins = [verify(prefix + c, self.answers[p], rules=self.fmt.answer_rules) for c in out.group(j)]
                values.append(sum(wins) / len(wins))
        n_steps = sum(map(len, steps))
        self.last_stats = {
            "mc/prefixes": float(len(keys)),
            "mc/shared_prefix_rate": 1.0 - len(keys) / n_steps if n_steps else 0.0,
            "mc/rollouts": float(len(keys) * self.rollouts),
        }
        return [[values[index[key]] for key in sol] for sol in per_solution]
