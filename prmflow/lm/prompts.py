"""How a question becomes a prompt (light: no torch, so labelling and config code can use it)."""

from __future__ import annotations

from prmflow.config import ModelConfig


def format_prompt(question: str, cfg: ModelConfig) -> str:
    """``model.prompt_template`` with the question filled in; the solution follows it, one step
    per line.

    >>> format_prompt("a=1;a=?", ModelConfig())
    'a=1;a=?\\n'
    """
    return cfg.prompt_template.format(question=question)
