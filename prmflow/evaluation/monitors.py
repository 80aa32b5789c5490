"""Reward-hacking monitors of a candidate policy, read by the promotion gate (``rl.monitors``)."""

from __future__ import annotations

from prmflow.config import ModelConfig
from prmflow.evaluation.metrics import mean
from prmflow.evaluation.policy import Evaluation
from prmflow.lm.prompts import format_prompt
from reward.process import process_rewards

PRM_MONITORS = ("prm_outcome_disagreement", "prm_high_on_wrong")
"""The monitors that need a PRM to score the candidate's samples."""


def monitors(cand: Evaluation, base: Evaluation, scorer=None, model_cfg: ModelConfig | None = None) -> dict[str, float]:
    """Reward-hacking monitors of the candidate (see ``rl.monitors``).

    ``step_inflation``: mean greedy steps of the candidate / of the warm-started base.
    ``prm_outcome_disagreement`` (with a PRM): fraction of the candidate's samples where the
    PRM's verdict (min step score > 0.5) and the outcome verifier differ; ``prm_high_on_wrong``
    is the part of it that matters most (the PRM approves a wrong answer).
    """
    out = {}
    base_steps = mean(base.greedy_steps())
    out["step_inflation"] = mean(cand.greedy_steps()) / base_steps if base_steps else 1.0
    if scorer is not None:
        prompts, texts, right, done = [], [], [], []
        for i, (ts, cs, fs) in enumerate(zip(cand.sample_texts, cand.sample_correct(), cand.sample_done())):
            prompts += [cand.prompts[i] if cand.prompts else format_prompt(cand.problems[i]["question"], model_cfg, None)] * len(ts)
            texts += ts
            right += cs
            done += fs
        verdict = [r > 0.5 for r in process_rewards(scorer.score(prompts, texts, finished=done), "min")]
        out["prm_outcome_disagreement"] = mean([v != r for v, r in zip(verdict, right)])
        wrong = [v for v, r in zip(verdict, right) if not r]
        out["prm_high_on_wrong"] = mean(wrong) if wrong else 0.0
    return out


def skipped_monitors(scorer=None) -> dict[str, str]:
    """Why monitors have no value (for :func:`prmflow.evaluation.gate.decide`): without a PRM,
    the PRM monitors are skipped, and the gate says so instead of passing them silently."""
    return {} if scorer is not None else dict.fromkeys(PRM_MONITORS, "no PRM")
