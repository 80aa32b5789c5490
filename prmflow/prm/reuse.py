"""Dead-step detection as a step scorer (``rl.process_scorer: reuse``): no model, no oracle.

Scores each step 1.0 when the answer uses its result, directly or through later used steps, and
0.0 when nothing after it does (:func:`reward.reuse.used_steps`). Under step credit
(``rl.process_mode: step_delta``) the tokens of a wasted step are charged where they are written,
a per-step length signal beside the outcome reward; the oracle's version of it is
``rl.process_scorer: oracle_needed``. It says nothing about whether a step is right: the outcome
term does that. It has the scorers' ``score`` API (:class:`prmflow.prm.scorers.StepScorer`).
"""

from __future__ import annotations

from collections.abc import Sequence

from reward.reuse import solution_used_steps


class ReuseScorer:
    """1.0 for each step the answer uses, 0.0 for a step whose result nothing after it uses."""

    def __init__(self, step_split: str = "line"):
        self.step_split = step_split

    def score(
        self, prompts: Sequence[str], solutions: Sequence[str], batch_size: int = 64, finished: Sequence[bool] | None = None
    ) -> list[list[float]]:
        """Per-step scores (``[]`` for a solution without steps); a cut-off last step
        (``finished[i]`` false) is not scored, as with every scorer."""
        finished = [True] * len(solutions) if finished is None else finished
        return [[1.0 if u else 0.0 for u in solution_used_steps(t, self.step_split, f)] for t, f in zip(solutions, finished, strict=True)]
