"""Hybrid reward: weighted reward terms per solution, and process scores as step-level credit.

Two ways a process reward model enters RL (``rl.process_mode``):

- ``sequence``: the ``process`` term (the PRM's aggregate per solution) is mixed into the
  sequence reward with the other terms, and one advantage per solution follows;
- ``step_<credit>`` (``step_sum``: DeepSeekMath, ``step_min``: PURE): the sequence reward holds
  every term *but* ``process``; the PRM's step scores become step-level advantages
  (:func:`reward.advantages.step_advantages`) added, times the process weight, to the tokens of
  each step (:func:`token_advantages`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from reward.advantages import tokens_from_steps
from reward.registry import STEP_CREDITS

if TYPE_CHECKING:
    import torch

PROCESS = "process"


def process_modes() -> list[str]:
    """``sequence`` and one ``step_<credit>`` per registered step credit."""
    return ["sequence", *(f"step_{c}" for c in STEP_CREDITS)]


def step_credit(process_mode: str) -> str | None:
    """The step credit of a ``step_<credit>`` mode; ``None`` for ``sequence``.

    >>> step_credit("step_min"), step_credit("sequence")
    ('min', None)
    """
    if process_mode == "sequence":
        return None
    credit = process_mode.removeprefix("step_")
    if not process_mode.startswith("step_") or credit not in STEP_CREDITS:
        raise ValueError(f"unknown process mode {process_mode!r}; expected one of {process_modes()}")
    return credit


def sequence_terms(weights: Mapping[str, float], process_mode: str) -> dict[str, float]:
    """The terms (name -> weight) of the sequence reward: every nonzero weight, except
    ``process`` in step modes (it enters as step credit there).

    >>> sequence_terms({"outcome": 1.0, "process": 0.5, "length": 0.0}, "step_min")
    {'outcome': 1.0}
    """
    drop = PROCESS if step_credit(process_mode) else None
    return {k: w for k, w in weights.items() if w != 0 and k != drop}


def mix(parts: Mapping[str, Sequence[float]], weights: Mapping[str, float]) -> list[float]:
    """``sum_k weights[k] * parts[k]`` per solution, over the terms with a nonzero weight.

    A nonzero weight whose part is missing is a wiring bug, not a silent zero; a part whose
    weight is 0 (or absent) is ignored. Every part must have one value per solution.

    >>> mix({"outcome": [1.0, 0.0], "length": [0.0, -0.5]}, {"outcome": 1.0, "length": 0.5})
    [1.0, -0.25]
    """
    active = {k: w for k, w in weights.items() if w != 0}
    missing = [k for k in active if k not in parts]
    if missing:
        raise ValueError(f"mix: nonzero weight for {missing} but no such reward part (have {sorted(parts)})")
    sizes = {k: len(parts[k]) for k in active}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"mix: reward parts of different lengths {sizes}")
    n = next(iter(sizes.values()), len(next(iter(parts.values()), [])))
    out = [0.0] * n
    for k, w in active.items():
        out = [acc + w * float(v) for acc, v in zip(out, parts[k])]
    return out


def token_advantages(
    seq_adv: Sequence[float],
    num_tokens: Sequence[int],
    step_adv: Sequence[Sequence[float]] | None = None,
    step_ends: Sequence[Sequence[int]] | None = None,
    process_weight: float = 0.0,
) -> list[torch.Tensor]:
    """Per-token advantages of each completion: ``(num_tokens[i],)`` float32 tensors.

    Every token gets its sequence advantage ``seq_adv[i]``; with step advantages, the tokens
    of step ``j`` (up to its exclusive end ``step_ends[i][j]``) also get
    ``process_weight * step_adv[i][j]``. Steps with no end found in the tokens (a step cut at
    ``max_new_tokens`` has no newline) get no step credit; the caller counts them.

    >>> [t.tolist() for t in token_advantages([1.0], [4], [[0.5, -1.0]], [[1, 3]], 2.0)]
    [[2.0, -1.0, -1.0, 1.0]]
    """
    if len(seq_adv) != len(num_tokens):
        raise ValueError(f"token_advantages: {len(seq_adv)} advantages for {len(num_tokens)} completions")
    if step_adv is not None and (step_ends is None or len(step_adv) != len(seq_adv) or len(step_ends) != len(seq_adv)):
        raise ValueError("token_advantages: step advantages need step ends, one list per completion")
    if not math.isfinite(process_weight):
        raise ValueError(f"token_advantages: process_weight must be finite, got {process_weight}")
    import torch  # here, not at import: the registries load without torch

    out = []
    for i, (a, n) in enumerate(zip(seq_adv, num_tokens)):
        t = torch.full((n,), float(a))
        if step_adv is not None and process_weight:
            k = min(len(step_adv[i]), len(step_ends[i]))
            if k:
                t = t + process_weight * tokens_from_steps(list(step_adv[i][:k]), [e - 1 for e in step_ends[i][:k]], n)
        out.append(t)
    return out
