"""How a question becomes a prompt (light: no torch, so labelling and config code can use it).

A prompt is the tokenizer's chat template (``model.chat_template``: ``auto`` when the tokenizer
has one, ``required``, or ``none``) or ``model.prompt_template``. The solution follows it; the
stages tokenize prompts with :func:`adds_special_tokens`, so that a template that writes the BOS
itself does not get a second one.
"""

from __future__ import annotations

from prmflow.config import ConfigError, ModelConfig


def uses_chat_template(cfg: ModelConfig, tokenizer) -> bool:
    """Whether prompts are rendered with ``tokenizer``'s chat template (see ``model.chat_template``);
    ``required`` with a tokenizer that has none is a :class:`ConfigError`."""
    has = bool(getattr(tokenizer, "chat_template", None))
    if cfg.chat_template == "required" and not has:
        raise ConfigError("model.chat_template: required, but the tokenizer has no chat template (use auto or none)")
    return has and cfg.chat_template != "none"


def format_prompt(question: str, cfg: ModelConfig, tokenizer) -> str:
    """The prompt for ``question``: one user message (after ``model.system_prompt``, if set) in
    the tokenizer's chat template with the generation prompt, or ``model.prompt_template`` filled
    in (``tokenizer`` may be ``None`` then).

    >>> format_prompt("a=1;a=?", ModelConfig(), None)
    'a=1;a=?\\n'
    """
    if not uses_chat_template(cfg, tokenizer):
        return cfg.prompt_template.format(question=question)
    messages = [{"role": "system", "content": cfg.system_prompt}] if cfg.system_prompt else []
    messages.append({"role": "user", "content": question})
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def adds_special_tokens(tokenizer, prompts: list[str]) -> bool:
    """``add_special_tokens`` for tokenizing ``prompts``: ``False`` when one already begins with
    the BOS token's text (a chat template that writes it), else ``True`` (the tokenizer adds
    what the model was trained with, BOS or nothing)."""
    bos = getattr(tokenizer, "bos_token", None)
    return not (bos and any(p.startswith(bos) for p in prompts))
