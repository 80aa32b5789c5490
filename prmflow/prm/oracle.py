"""The synthetic task's oracle as a step scorer: a perfect PRM (``rl.process_scorer: oracle``).

Scores each step 1.0 when the solution is still right up to and including it, else 0.0
(:func:`prmflow.problems.synthetic.oracle_step_labels`, the prefix correctness that Monte-Carlo
labels estimate). Put in place of the learned PRM, it gives the upper bound of what process
rewards can add on this task: the ablation's oracle arm. It has the scorers' ``score`` API
(:class:`prmflow.prm.scorers.StepScorer`) but no model.

``needed=True`` (``rl.process_scorer: oracle_needed``) also scores 0.0 a right step that
computes a distractor (:func:`prmflow.problems.synthetic.oracle_needed_steps`): a perfect PRM
that marks wasted work as well as wrong work, the upper bound of a process-level length signal.
Under step credit the tokens of a wasted step are charged where they are written, in every group
that holds one, where a sequence-level length term needs two right solutions of different length
in the same group.
"""

from __future__ import annotations

from collections.abc import Sequence

from prmflow.problems.synthetic import oracle_needed_steps, oracle_step_labels
from reward.parse import join_steps, split_steps


class OracleScorer:
    """Oracle step scores for completions of known prompts.

    ``questions``: the prompt each completion answers (as the policy saw it) -> the question
    text of the synthetic problem (the oracle parses the program from it). ``needed``: a right
    step that the target does not need scores 0.0 too.
    """

    def __init__(self, questions: dict[str, str], modulus: int = 100, step_split: str = "line", needed: bool = False):
        if step_split != "line":
            raise ValueError(
                f"rl.process_scorer: oracle reads the synthetic task's one-step-per-line solutions, not data.step_split={step_split!r}"
            )
        self.questions, self.modulus, self.step_split, self.needed = questions, modulus, step_split, needed

    def labels(self, question: str, solution: str) -> list[bool]:
        """Each step's label: still right up to it (and, with ``needed``, needed by the target)."""
        right = oracle_step_labels(question, solution, self.modulus)
        if not self.needed:
            return right
        return [r and n for r, n in zip(right, oracle_needed_steps(question, solution, self.modulus), strict=True)]

    def score(
        self, prompts: Sequence[str], solutions: Sequence[str], batch_size: int = 64, finished: Sequence[bool] | None = None
    ) -> list[list[float]]:
        """Per-step scores (``[]`` for a solution without steps); a cut-off last step
        (``finished[i]`` false) is not scored, as with every scorer."""
        finished = [True] * len(solutions) if finished is None else finished
        out = []
        for prompt, text, done in zip(prompts, solutions, finished):
            if prompt not in self.questions:
                raise KeyError(f"oracle scorer: no synthetic problem for prompt {prompt[:60]!r}")
            steps = split_steps(text, self.step_split, done)
            labels = self.labels(self.questions[prompt], join_steps(steps)) if steps else []
            out.append([1.0 if ok else 0.0 for ok in labels])
        return out
