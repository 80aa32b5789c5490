"""Advantage estimators: sequence-level GRPO and step-level process advantages.

Rows are prompt-major throughout: with group size ``G``, group ``i`` (the ``G`` completions of
prompt ``i``) is rows ``i*G .. i*G+G-1``. Step-level advantages are written here because
TRL's GRPOTrainer has only one advantage per sequence.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from reward.registry import ADVANTAGES, STEP_CREDITS

if TYPE_CHECKING:
    import torch


def grpo_advantages(rewards: torch.Tensor, group_size: int, scale_by_std: bool = True, eps: float = 1e-6) -> torch.Tensor:
    """GRPO advantages ``(N,)`` from rewards ``(N,)``: ``(r - group mean) / (group std + eps)``.

    The std is the unbiased one (``torch.std``'s default, as in TRL's GRPOTrainer).
    ``scale_by_std=False`` is Dr. GRPO (Liu et al. 2025), which only centres. A group whose
    rewards are all equal gets zeros: it carries no signal about which completion is better.
    """
    if rewards.dim() != 1:
        raise ValueError(f"grpo_advantages: rewards must be 1-D (N,), got shape {tuple(rewards.shape)}")
    if group_size <= 0 or rewards.numel() % group_size:
        raise ValueError(f"grpo_advantages: {rewards.numel()} rewards is not a multiple of group_size={group_size}")
    r = rewards.float().view(-1, group_size)
    adv = r - r.mean(dim=1, keepdim=True)
    if scale_by_std and group_size > 1:  # a group of one has no spread (and torch.std would be nan)
        adv = adv / (r.std(dim=1, keepdim=True) + eps)
    return adv.view(-1)


@ADVANTAGES.register("grpo")
def grpo(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """GRPO (Shao et al. 2024): group-centred, divided by the group's std."""
    return grpo_advantages(rewards, group_size, scale_by_std=True)


@ADVANTAGES.register("dr_grpo")
def dr_grpo(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """Dr. GRPO (Liu et al. 2025): group-centred only (no std, which favours easy/hard groups)."""
    return grpo_advantages(rewards, group_size, scale_by_std=False)


dr_grpo.scale_by_std = False  # step-level advantages follow the estimator: centred only


@STEP_CREDITS.register("sum")
def sum_credit(rewards: list[float]) -> list[float]:
    """DeepSeekMath's process supervision: a step's value is the sum of its and later rewards.

    >>> sum_credit([1.0, -2.0, 0.5])
    [-0.5, -1.5, 0.5]
    """
    out, acc = [], 0.0
    for r in reversed(rewards):
        acc += r
        out.append(acc)
    return out[::-1]


@STEP_CREDITS.register("min")
def min_credit(rewards: list[float]) -> list[float]:
    """PURE's min-form credit: a step's value is the minimum of its and later rewards, so a run
    of good steps cannot hide a bad one.

    >>> min_credit([1.0, -2.0, 0.5])
    [-2.0, -2.0, 0.5]
    """
    out, acc = [], math.inf
    for r in reversed(rewards):
        acc = min(acc, r)
        out.append(acc)
    return out[::-1]


@STEP_CREDITS.register("delta")
def delta_credit(rewards: list[float]) -> list[float]:
    """Progress credit (PAV: Setlur et al. 2024, "Rewarding Progress"): a step's value is the
    change its reward makes, ``r_j - r_{j-1}``, with ``r_{-1} = 0`` (the group's mean, once
    normalised). The values of a solution add up to its last step's reward, so writing more or
    fewer steps earns nothing by itself: only a step that lowers the score is charged, and only
    once. (``min`` charges every step before an error with it, so that stopping early pays.)

    >>> delta_credit([1.0, 1.0, -2.0, -2.0])
    [1.0, 0.0, -3.0, 0.0]
    """
    return [r - prev for prev, r in zip([0.0, *rewards[:-1]], rewards)]


@STEP_CREDITS.register("own")
def own_credit(rewards: list[float]) -> list[float]:
    """Each step is valued by its own reward alone (a return with no later terms). For a score of
    waste rather than of correctness (``rl.process_scorer: reuse``): every wasted step is
    charged, also the second of two in a row, which progress credit (``delta``) leaves at 0
    because the score did not drop again.

    >>> own_credit([1.0, -2.0, -2.0, 0.5])
    [1.0, -2.0, -2.0, 0.5]
    """
    return list(rewards)


def outcome_last_step(step_scores: list[list[float]], outcomes: list[float]) -> list[list[float]]:
    """Each completion's last scored step takes its outcome (1.0 right, 0.0 wrong) as its score:
    the value of a finished solution is its outcome, as in PAV's and VinePPO's prefix values.
    With progress credit (:func:`delta_credit`) a completion's credits add up to its last score,
    so every wrong completion then totals the same: one that stops short after right steps, and
    is never scored for the steps it left out, is charged at its last step instead of earning
    more than one that wrote them and slipped (``rl.outcome_last_step``).

    >>> outcome_last_step([[1.0, 1.0], [1.0, 0.0, 0.0], [0.6], []], [0.0, 0.0, 1.0, 0.0])
    [[1.0, 0.0], [1.0, 0.0, 0.0], [1.0], []]
    """
    return [s[:-1] + [float(o)] if s else [] for s, o in zip(step_scores, outcomes, strict=True)]


def center_totals(values: list[list[float]]) -> list[list[float]]:
    """Shift each solution's step values so that the solutions' totals sum to zero over the
    group: solution ``i`` loses ``mean_k(total_k) / len(values[i])`` on each step (solutions
    without steps are left out of the mean). Per-step contrasts stay; a group whose solutions
    all end badly no longer pushes every one of them down on balance (with progress credit a
    solution's total is its last step's normalised score, the same for every wrong one).

    >>> center_totals([[1.0, -2.0], [1.0, 0.0, -3.0], []])
    [[1.75, -1.25], [1.5, 0.5, -2.5], []]
    """
    totals = [sum(v) for v in values if v]
    if not totals:
        return [list(v) for v in values]
    mean = sum(totals) / len(totals)
    return [[x - mean / len(v) for x in v] for v in values]


def step_advantages(
    step_scores: list[list[float]],
    group_size: int,
    credit: str = "sum",
    scale_by_std: bool = True,
    eps: float = 1e-6,
    center: bool = False,
) -> list[list[float]]:
    """Per-step advantages from PRM step scores, one list per solution (same shape as the input).

    Each step reward is normalised by the mean and (unbiased) std of all step rewards of its
    group, ``r~ = (r - mean) / (std + eps)`` (centred only if ``scale_by_std=False``), as in
    DeepSeekMath's process supervision. The value of step ``j`` is then
    ``credit`` (a :data:`reward.registry.STEP_CREDITS` name) applied to its own and later normalised
    rewards: ``sum_{k>=j} r~_k`` (``"sum"``), ``min_{k>=j} r~_k`` (``"min"``),
    ``r~_j - r~_{j-1}`` (``"delta"``) or ``r~_j`` (``"own"``).
    A solution with no steps gets ``[]``; a group with a single step reward in all gets zeros.
    ``center``: then :func:`center_totals` per group (``rl.center_step_credit``).
    """
    value_of = STEP_CREDITS.get(credit)
    if group_size <= 0 or len(step_scores) % group_size:
        raise ValueError(f"step_advantages: {len(step_scores)} solutions is not a multiple of group_size={group_size}")
    out: list[list[float]] = []
    for g in range(0, len(step_scores), group_size):
        group = step_scores[g : g + group_size]
        flat = [float(r) for s in group for r in s]
        if len(flat) <= 1:
            out.extend([0.0] * len(s) for s in group)
            continue
        mean = sum(flat) / len(flat)
        std = math.sqrt(sum((r - mean) ** 2 for r in flat) / (len(flat) - 1))
        scale = std + eps if scale_by_std else 1.0
        values = [value_of([(float(r) - mean) / scale for r in s]) for s in group]
        out.extend(center_totals(values) if center else values)
    return out


def tokens_from_steps(step_values: list[float], ends: list[int], n_tokens: int) -> torch.Tensor:
    """Spread step values over the tokens of a completion: ``(n_tokens,)`` float32.

    ``ends[j]`` is the index of the LAST token of step ``j`` (inclusive), so step ``j`` covers
    positions ``ends[j-1]+1 .. ends[j]`` (step 0 starts at 0). Tokens after the last step (the
    answer line, EOS) get 0: the sequence-level advantage covers them.
    """
    if len(step_values) != len(ends):
        raise ValueError(f"tokens_from_steps: {len(step_values)} step values but {len(ends)} step ends")
    prev = -1
    for e in ends:
        if e <= prev or e >= n_tokens:
            raise ValueError(f"tokens_from_steps: ends must be strictly increasing in [0, {n_tokens}), got {ends}")
        prev = e
    import torch  # here, not at import: the registries above load without torch

    out = torch.zeros(n_tokens, dtype=torch.float32)
    start = 0
    for v, e in zip(step_values, ends):
        out[start : e + 1] = float(v)
        start = e + 1
    return out
