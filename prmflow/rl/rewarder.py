"""From sampled completions to per-token advantages, through ``reward/``'s registries.

1. Reward terms (:data:`reward.registry.REWARDS`): ``outcome`` and ``length`` always (they are
   cheap and logged), ``process`` whenever a PRM scored the steps, any other term with a nonzero
   weight.
2. The sequence reward mixes the terms of :func:`reward.hybrid.sequence_terms` (all weighted
   terms, but ``process`` in step modes), and the ``rl.advantage`` estimator turns it into one
   advantage per completion.
3. Step modes: the PRM's step scores become step advantages (``rl.process_mode``'s credit),
   spread over each step's tokens times the process weight (:func:`reward.hybrid.token_advantages`).

The stats say what the advantages were built from: ``reward/sequence`` (the mixed sequence
reward), ``reward/<term>`` for each term, and in step modes ``reward/process_step`` (the mean
step score that the step advantages came from); ``verifier/errors`` and ``verifier/timeouts``
count the outcome verdicts that were not a judgement of the answer. A step with more than
``rl.max_verifier_errors`` errors fails (:class:`reward.outcome.VerifierError`). The batch's step
counts of :func:`step_credit_counts` say how many scored steps got credit (``reward/steps_without_end``:
scored steps that got none). Answers are read and steps found by the solution format
(``data.answer_rules``, ``data.step_split``); a completion cut at ``rl.max_new_tokens`` has its
cut-off last step neither scored nor credited, and ``train/truncated`` is the share of such
completions.
"""

from __future__ import annotations

import torch

from prmflow.config import RLConfig
from reward.advantages import outcome_last_step, step_advantages
from reward.hybrid import mix, sequence_terms, step_credit, token_advantages
from reward.outcome import Verdict, check_verdicts, outcome_verdicts, verdict_counts
from reward.parse import SolutionFormat
from reward.process import process_rewards
from reward.registry import ADVANTAGES, REWARDS
from reward.steps import step_end_positions


def _mean(xs) -> float:
    xs = list(xs)
    return float(sum(xs) / len(xs)) if xs else 0.0


class Rewarder:
    """Turns sampled completions into per-token advantages and the stats of what they came from.

    ``scorer`` is a step scorer (:mod:`prmflow.prm.scorers`) or ``None`` (no PRM); ``fmt`` reads
    answers and steps (``params.data.solution_format()``).
    """

    def __init__(self, rl: RLConfig, scorer=None, fmt: SolutionFormat = SolutionFormat()):
        if rl.weight("process") != 0 and scorer is None:
            raise ValueError(f"rl.weights.process = {rl.weight('process')} needs a PRM scorer")
        self.rl, self.scorer, self.fmt = rl, scorer, fmt
        self.credit = step_credit(rl.process_mode)

    def terms(
        self,
        prompts: list[str],
        texts: list[str],
        answers: list[str],
        n_tokens: list[int],
        verdicts=None,
        finished=None,
        scored=True,
        *,
        weights: dict[str, float],
    ) -> tuple[dict[str, list[float]], list[list[float]] | None]:
        """Every reward term's values, and the PRM's step scores (``None`` without a PRM, or
        when not ``scored``). ``verdicts``: the outcome verdicts when already computed
        (``outcome`` reuses them); ``finished``: which completions ended with EOS (``None``: all);
        ``weights``: this step's term weights (``rl.weights`` under its schedule)."""
        rl = self.rl
        step_scores = self.scorer.score(prompts, texts, finished=finished) if self.scorer is not None and scored else None
        wanted = {"outcome", "length"} | {k for k, w in weights.items() if w != 0}
        if step_scores is not None:
            wanted.add("process")
        kwargs = dict(
            answers=answers,
            answer_rules=self.fmt.answer_rules,
            finished=finished,
            verdicts=verdicts,
            num_tokens=n_tokens,
            step_scores=step_scores,
            group_size=rl.group_size,
            process_agg=rl.process_agg,
            length_budget=rl.length_budget,
            max_new_tokens=rl.max_new_tokens,
        )
        return {name: REWARDS.get(name)(texts, **kwargs) for name in sorted(wanted)}, step_scores

    def __call__(
        self,
        prompts: list[str],
        texts: list[str],
        answers: list[str],
        n_tokens: list[int],
        pieces: list[list[str]],
        finished: list[bool] | None = None,
        process_weight: float | None = None,
        monitor: bool = True,
    ) -> tuple[list[torch.Tensor], dict]:
        """``(token advantages, stats)``; ``pieces[i]`` are the decoded tokens of completion ``i``
        (special tokens as ``""``), ``finished[i]`` whether it ended with EOS (``None``: all did);
        ``process_weight``: this step's process weight (``rl.process_weight_schedule``; ``None``:
        ``rl.weights.process``); ``monitor``: with the process term off, whether the scorer
        still scores the samples for the ``monitor/prm_*`` stats (``rl.prm_monitor_every``)."""
        rl, G = self.rl, self.rl.group_size
        weights = dict(rl.weights) if process_weight is None else {**rl.weights, "process": process_weight}
        finished = [True] * len(texts) if finished is None else list(finished)
        verdicts = outcome_verdicts(texts, answers, self.fmt.answer_rules)
        check_verdicts(verdicts, rl.max_verifier_errors, "rl.max_verifier_errors")  # before training on noise
        if hasattr(self.scorer, "update"):  # an online PRM learns from these outcomes before scoring them (PRIME)
            self.scorer.update(prompts, texts, [v is Verdict.CORRECT for v in verdicts], finished)
        parts, step_scores = self.terms(
            prompts, texts, answers, n_tokens, verdicts, finished, scored=monitor or weights["process"] != 0, weights=weights
        )
        seq_reward = mix(parts, sequence_terms(weights, rl.process_mode))
        estimator = ADVANTAGES.get(rl.advantage)
        seq_adv = estimator(torch.tensor(seq_reward), G)
        stats = {"reward/sequence": _mean(seq_reward), **{f"reward/{k}": _mean(v) for k, v in parts.items()}}
        counts = verdict_counts(verdicts)
        stats.update({"verifier/errors": float(counts["error"]), "verifier/timeouts": float(counts["timeout"])})
        stats["train/truncated"] = _mean([not f for f in finished])
        stats.update(getattr(self.scorer, "last_stats", {}))  # what scoring cost (Monte-Carlo values)
        if process_weight is not None:
            stats["reward/process_weight"] = process_weight
        if self.credit and weights["process"]:
            scale = getattr(estimator, "scale_by_std", True) and rl.step_scale_by_std
            credited = outcome_last_step(step_scores, parts["outcome"]) if rl.outcome_last_step else step_scores
            step_adv = step_advantages(credited, G, self.credit, scale_by_std=scale, center=rl.center_step_credit)
            ends = [step_end_positions(pc, self.fmt.step_split, f) for pc, f in zip(pieces, finished)]
            token_adv = token_advantages(seq_adv, n_tokens, step_adv, ends, weights["process"])
            stats["reward/process_step"] = _mean([x for s in step_scores for x in s])
            stats.update({f"reward/{k}": float(v) for k, v in step_credit_counts(step_scores, ends).items()})
            stats.pop("reward/process", None)  # the step advantages, not this aggregate, were trained on
        else:
            token_adv = token_advantages(seq_adv, n_tokens)
        if step_scores is not None:
            stats.update(prm_monitors(process_rewards(step_scores, "min"), parts["outcome"]))
        return token_adv, stats


def step_credit_counts(step_scores: list[list[float]], ends: list[list[int]]) -> dict[str, int]:
    """How many PRM step scores became step credit, over a batch.

    :func:`reward.hybrid.token_advantages` credits the first ``min(len(scores), len(ends))``
    steps of a completion: a scored step with no end in the tokens (cut at ``max_new_tokens``
    before its newline) gets none, nor does a token-found end with no score. So
    ``steps_scored = steps_credited + steps_without_end``.

    >>> step_credit_counts([[0.9, 0.8], []], [[2], [3]])
    {'steps_scored': 2, 'steps_credited': 1, 'steps_without_end': 1, 'step_ends_without_score': 1}
    """
    credited = [min(len(s), len(e)) for s, e in zip(step_scores, ends, strict=True)]
    return {
        "steps_scored": sum(map(len, step_scores)),
        "steps_credited": sum(credited),
        "steps_without_end": sum(len(s) - k for s, k in zip(step_scores, credited)),
        "step_ends_without_score": sum(len(e) - k for e, k in zip(ends, credited)),
    }


def prm_monitors(prm_min: list[float], outcome: list[float]) -> dict[str, float]:
    """How often the PRM's verdict (min step score > 0.5) and the verifier disagree, and on which side.

    >>> prm_monitors([0.9, 0.2, 0.8], [1.0, 1.0, 0.0])["monitor/prm_high_on_wrong"]
    1.0
    """
    verdict = [p > 0.5 for p in prm_min]
    right = [o > 0.5 for o in outcome]
    wrong = [v for v, r in zip(verdict, right) if not r]
    good = [v for v, r in zip(verdict, right) if r]
    return {
        "monitor/prm_outcome_disagreement": _mean([float(v != r) for v, r in zip(verdict, right)]),
        "monitor/prm_high_on_wrong": _mean([float(v) for v in wrong]) if wrong else 0.0,
        "monitor/prm_low_on_right": _mean([float(not v) for v in good]) if good else 0.0,
    }
