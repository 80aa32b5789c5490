"""Registries: the places where users add reward terms, advantage estimators and step credits.

A new one is one function plus one ``@REGISTRY.register("name")`` line; ``params.yaml`` then
names it (``rl.weights.<name>``, ``rl.advantage``, ``rl.process_mode``). As in open-r1's
``REWARD_FUNCS_REGISTRY`` and verl's ``register_adv_est``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)


class Registry(dict):
    """``name -> function``. ``get`` of an unknown name fails naming the known ones."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def register(self, name: str) -> Callable[[F], F]:
        def add(fn: F) -> F:
            if name in self:
                raise ValueError(f"{self.kind} {name!r} is already registered ({self[name].__module__}.{self[name].__name__})")
            self[name] = fn
            return fn

        return add

    def get(self, name: str) -> Callable:  # type: ignore[override]
        if name not in self:
            raise ValueError(f"unknown {self.kind} {name!r}; registered: {sorted(self)}")
        return self[name]


REWARDS = Registry("reward term")
"""Sequence-level reward terms ``fn(completions: list[str], **kwargs) -> list[float]``.

Keyword arguments every term receives (take what you need, accept ``**kwargs``): ``answers``
(reference answers), ``answer_rules`` (how answers are read: ``data.answer_rules``),
``num_tokens`` (completion lengths), ``finished`` (ended with EOS),
``step_scores`` (PRM scores per step, or ``None`` without a PRM), ``group_size``, and the RL
settings ``process_agg``, ``length_budget``, ``max_new_tokens``."""

ADVANTAGES = Registry("advantage estimator")
"""``fn(rewards: Tensor (N,), group_size: int) -> Tensor (N,)``: sequence-level advantages. An
estimator that does not divide by the group's std sets ``fn.scale_by_std = False``; step-level
process advantages then follow it."""

STEP_CREDITS = Registry("step credit")
"""``fn(normalised_step_rewards: list[float]) -> list[float]``: each step's value from the
group-normalised rewards of its own and later steps (see :func:`reward.advantages.step_advantages`)."""

ANSWER_RULES = Registry("answer rule")
"""``fn(text: str) -> str | None``: the final answer a rule finds in a solution, as written
(:func:`reward.parse.extract_answer` canonicalises numbers), or ``None``. ``data.answer_rules``
lists the rules to try, in order; the first that finds an answer decides."""
