"""Length rewards: penalties that keep completions from growing without bound.

Each returns one float per completion, in ``[-1, 0]`` (overlong) or ``[-0.5, 0.5]`` (group).
"""

from __future__ import annotations

from reward.outcome import outcome_rewards
from reward.parse import DEFAULT_ANSWER_RULES
from reward.registry import REWARDS


def overlong_penalty(n_tokens: list[int], budget: int, max_len: int) -> list[float]:
    """DAPO's soft overlong punishment (Yu et al. 2025, eq. 13).

    0 up to ``budget`` tokens, then linear down to -1 at ``max_len``, and -1 beyond. With
    ``budget >= max_len`` there is no ramp: 0 up to ``max_len``, -1 beyond.
    """
    if budget < 0 or max_len <= 0:
        raise ValueError(f"overlong_penalty: need budget >= 0 and max_len > 0, got {budget}, {max_len}")
    out = []
    for n in n_tokens:
        if n > max_len:
            out.append(-1.0)
        elif n <= budget:
            out.append(0.0)
        else:  # budget < n <= max_len, so budget < max_len here
            out.append(-(n - budget) / (max_len - budget))
    return out


def _groups(who: str, n_tokens: list[int], correct: list[bool], group_size: int) -> list[tuple[list[int], list[bool]]]:
    """The (lengths, correctness) of each group of prompt-major rows, after checking the shapes."""
    if len(n_tokens) != len(correct):
        raise ValueError(f"{who}: {len(n_tokens)} lengths but {len(correct)} correctness flags")
    if group_size <= 0 or len(n_tokens) % group_size:
        raise ValueError(f"{who}: {len(n_tokens)} rows is not a multiple of group_size={group_size}")
    return [(n_tokens[g : g + group_size], correct[g : g + group_size]) for g in range(0, len(n_tokens), group_size)]


def group_length_penalty(n_tokens: list[int], correct: list[bool], group_size: int) -> list[float]:
    """Kimi k1.5's length reward, relative to the other completions of the same prompt.

    Rows are prompt-major (group ``i`` is rows ``i*G .. i*G+G-1``). Within a group,
    ``lam = 0.5 - (len - min_len) / (max_len - min_len)``: the shortest gets +0.5, the longest
    -0.5. A correct completion gets ``lam``; a wrong one ``min(0, lam)``, so being short never
    pays for being wrong. A group whose lengths are all equal gets 0.
    """
    out = []
    for lens, ok in _groups("group_length_penalty", n_tokens, correct, group_size):
        lo, hi = min(lens), max(lens)
        for n, c in zip(lens, ok):
            lam = 0.0 if hi == lo else 0.5 - (n - lo) / (hi - lo)
            out.append(lam if c else min(0.0, lam))
    return out


def right_length_penalty(n_tokens: list[int], correct: list[bool], group_size: int) -> list[float]:
    """The group length reward among a group's *right* completions only.

    Like :func:`group_length_penalty`, but the shortest and longest are those of the right
    completions, and a wrong completion gets 0: the term says only "of two right solutions,
    the shorter is better". Kimi's version also ranks wrong completions by length, so a policy
    that is mostly wrong is mostly taught to be short, and a lone right solution that is longer
    than the wrong ones (which may be short because they skipped needed steps) is charged for it.
    A group with fewer than two right lengths gets 0.

    >>> right_length_penalty([10, 20, 30, 5], [True, False, True, False], 4)
    [0.5, 0.0, -0.5, 0.0]
    """
    out = []
    for lens, ok in _groups("right_length_penalty", n_tokens, correct, group_size):
        right = [n for n, c in zip(lens, ok) if c]
        lo, hi = (min(right), max(right)) if right else (0, 0)
        out += [0.5 - (n - lo) / (hi - lo) if c and hi > lo else 0.0 for n, c in zip(lens, ok)]
    return out


def _right(completions: list[str], answers, verdicts, answer_rules) -> list[bool]:
    """Which completions are right: the outcome term's verdicts (computed when not given)."""
    return [r == 1.0 for r in outcome_rewards(completions, answers, verdicts, answer_rules or DEFAULT_ANSWER_RULES)]


@REWARDS.register("length")
def length_reward(completions: list[str], num_tokens: list[int], length_budget: int, max_new_tokens: int, **kwargs) -> list[float]:
    """The length term of the hybrid reward: :func:`overlong_penalty` of each completion."""
    return overlong_penalty(num_tokens, length_budget, max_new_tokens)


@REWARDS.register("length_group")
def group_length_reward(
    completions: list[str], num_tokens: list[int], group_size: int, verdicts=None, answers=None, answer_rules=None, **kwargs
) -> list[float]:
    """Kimi k1.5's group-relative length term (:func:`group_length_penalty`): within each group
    the shortest right completion gains, the longest loses; a wrong one never gains by being
    short. Correctness is the outcome verdict (:func:`reward.outcome.outcome_verdicts`)."""
    return group_length_penalty(num_tokens, _right(completions, answers, verdicts, answer_rules), group_size)


@REWARDS.register("length_group_right")
def group_right_length_reward(
    completions: list[str], num_tokens: list[int], group_size: int, verdicts=None, answers=None, answer_rules=None, **kwargs
) -> list[float]:
    """The group length term among right completions only (:func:`right_length_penalty`):
    of a group's right completions the shortest gains, the longest loses; wrong ones get 0."""
    return right_length_penalty(num_tokens, _right(completions, answers, verdicts, answer_rules), group_size)
