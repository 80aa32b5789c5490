"""Dead-step detection as a step scorer (``rl.process_scorer: reuse``): no model, no oracle.

A step of a *right* solution scores 1.0 when the answer uses its result, directly or through
later used steps, and 0.0 when nothing after it does (:func:`reward.reuse.used_steps`): the
solution reached the right answer without it, so it was wasted. Under step credit
(``rl.process_mode: step_own``) the tokens of a wasted step are charged where they are written,
a per-step length signal beside the outcome reward; the oracle's version of it is
``rl.process_scorer: oracle_needed``.

A wrong solution is not scored (``[]``: no step credit; the outcome term charges it). Its chain
is broken, so "unused" there mostly marks the right step whose value the wrong one failed to
use, not waste: on the ``dag`` warm start's samples at temperature 1.0, 27% of their
non-distractor steps were flagged, against 1% on right solutions. In one ablation run (seed
605523, ``step_own``, weight 0.5) scoring wrong solutions too ended at greedy accuracy 0.400,
right solutions only at 0.505, outcome-only at 0.545 (README: Measured). It has the scorers'
``score`` API (:class:`prmflow.prm.scorers.StepScorer`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from reward.outcome import verify
from reward.parse import DEFAULT_ANSWER_RULES
from reward.reuse import solution_used_steps


class ReuseScorer:
    """For each right solution, 1.0 per step the answer uses and 0.0 per step nothing after it
    uses; ``[]`` for a wrong one. ``answers``: the prompt each completion answers -> its reference
    answer; ``answer_rules``: how answers are read (``data.answer_rules``)."""

    def __init__(self, answers: Mapping[str, str], answer_rules: Sequence[str] = DEFAULT_ANSWER_RULES, step_split: str = "line"):
        self.answers, self.answer_rules, self.step_split = answers, answer_rules, step_split

    def score(
        self, prompts: Sequence[str], solutions: Sequence[str], batch_size: int = 64, finished: Sequence[bool] | None = None
    ) -> list[list[float]]:
        """Per-step scores (``[]`` for a wrong solution or one without steps); a cut-off last
        step (``finished[i]`` false) is not scored, as with every scorer."""
        finished = [True] * len(solutions) if finished is None else finished
        out = []
        for prompt, text, done in zip(prompts, solutions, finished, strict=True):
            if prompt not in self.answers:
                raise KeyError(f"reuse scorer: no reference answer for prompt {prompt[:60]!r}")
            right = verify(text, self.answers[prompt], rules=self.answer_rules)
            out.append([1.0 if u else 0.0 for u in solution_used_steps(text, self.step_split, done)] if right else [])
        return out
