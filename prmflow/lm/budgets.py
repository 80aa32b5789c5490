"""Token budgets (``max_new_tokens``) checked against, or derived from, the reference solutions.

A budget shorter than most references cannot hold a solution written like them: every longer
one is cut, scored wrong and (before truncation was counted) silently so. Each sampling stage
resolves its budget before any sampling: ``null`` derives it from the references
(:func:`derive_budget`); a set budget that cuts more than :data:`MAX_CUT_SHARE` of them fails,
naming the setting. References are the curated ``answer`` (steps and answer line) in the
policy's tokens, plus EOS; a model that writes longer than its references needs more, and its
truncation rates say so (``truncation.*``, ``train/truncated``).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from prmflow.config import ConfigError, Params

MAX_CUT_SHARE = 0.25
"""A set budget may cut at most this share of the references. A quarter, not a half: at half,
a budget at the median reference length (GSM8K at 96 tokens with a small BPE) would pass while
cutting every other solution the policy should write."""


def reference_lengths(problems: list[dict], tokenizer) -> list[int]:
    """Tokens of each problem's reference solution (``answer``), EOS included."""
    return [len(tokenizer(p["answer"], add_special_tokens=False)["input_ids"]) + 1 for p in problems]


def derive_budget(lengths: list[int]) -> int:
    """``ceil(1.5 x longest) + 16``: room for the longest reference written more loosely.

    >>> derive_budget([30, 60, 40])
    106
    """
    if not lengths:
        raise ConfigError("cannot derive a token budget: no reference solutions (set it explicitly)")
    return math.ceil(1.5 * max(lengths)) + 16


@dataclass(frozen=True)
class Budget:
    """A resolved budget and what it does to the references."""

    setting: str
    value: int
    derived: bool
    references: int
    cut: int

    def metrics(self) -> dict[str, float]:
        key = f"budget.{self.setting}"
        return {key: self.value, f"{key}.derived": int(self.derived), f"{key}.references_cut": self.cut / max(1, self.references)}


def resolve_budget(setting: str, value: int | None, lengths: list[int]) -> Budget:
    """``value`` checked against the reference ``lengths``, or derived from them when ``None``.

    Raises :class:`ConfigError` naming ``setting`` when a set budget cuts more than
    :data:`MAX_CUT_SHARE` of the references."""
    derived = value is None
    value = derive_budget(lengths) if derived else value
    cut = sum(n > value for n in lengths)
    if lengths and cut / len(lengths) > MAX_CUT_SHARE:
        raise ConfigError(
            f"{setting}: {value} tokens cut {cut} of {len(lengths)} reference solutions ({cut / len(lengths):.0%}; "
            f"median {statistics.median(lengths):g}, longest {max(lengths)} tokens with this tokenizer): the policy could not "
            f"finish them. Raise it, or set it to null to derive it from the data ({derive_budget(lengths)})"
        )
    return Budget(setting, value, derived, len(lengths), cut)


def resolve_setting(params: Params, setting: str, problems: list[dict], tokenizer) -> tuple[Params, Budget]:
    """``params`` with the budget ``setting`` (``"<section>.max_new_tokens"``) resolved against
    ``problems``' references in ``tokenizer``'s tokens (:func:`resolve_budget`), and the budget."""
    section, key = setting.split(".")
    cfg = getattr(params, section)
    budget = resolve_budget(setting, getattr(cfg, key), reference_lengths(problems, tokenizer))
    return params.model_copy(update={section: cfg.model_copy(update={key: budget.value})}), budget


SETTINGS = {
    "label.max_new_tokens": ("train", "num_problems"),
    "rl.max_new_tokens": ("train", None),
    "prm.max_new_tokens": ("eval", "eval_problems"),
    "evaluate.max_new_tokens": ("eval", "num_problems"),
}
"""Each budget and the references it is checked on: a curated split, and the section's setting
that takes its first N problems (``None``: all). The stages resolve their own the same way."""


def check_all(params: Params, splits: dict[str, list[dict]], tokenizer) -> dict[str, Budget]:
    """Resolve every budget of :data:`SETTINGS` on ``splits`` (curated ``train``/``eval``): the
    warm start checks them all before training, so that a budget the label stage would refuse
    fails before hours of SFT, not after."""
    out = {}
    for setting, (split, n_key) in SETTINGS.items():
        section = getattr(params, setting.split(".")[0])
        n = getattr(section, n_key) if n_key else None
        out[setting] = resolve_setting(params, setting, splits[split][:n], tokenizer)[1]
    return out
