"""Prompts from the tokenizer's chat template (model.chat_template: auto | none | required)."""

from __future__ import annotations

import pytest

from prmflow.config import ConfigError, ModelConfig
from prmflow.lm.prompts import adds_special_tokens, format_prompt
from tests.real_model import CHAT_TEMPLATE, build_tokenizer

Q = "How many clips did Natalia sell?"


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer([Q, "Natalia sold 72 clips.", CHAT_TEMPLATE], vocab_size=300)


def test_auto_renders_the_chat_template_with_the_generation_prompt(tok):
    assert format_prompt(Q, ModelConfig(), tok) == f"<|im_start|>user\n{Q}<|im_end|>\n<|im_start|>assistant\n"
    cfg = ModelConfig(system_prompt="End with: The answer is N.")
    assert format_prompt(Q, cfg, tok).startswith("<|im_start|>system\nEnd with: The answer is N.<|im_end|>\n<|im_start|>user\n")


def test_none_or_no_template_uses_the_plain_template_literal_braces_and_all(tok):
    cfg = ModelConfig(chat_template="none", prompt_template="Q: {question}\nA:")
    assert format_prompt(Q, cfg, tok) == f"Q: {Q}\nA:"
    tok_without = build_tokenizer([Q], vocab_size=280, chat_template=None)
    assert format_prompt("{x}", ModelConfig(), tok_without) == "{x}\n"  # a brace in the question is text
    assert format_prompt("a=1;a=?", ModelConfig(), None) == "a=1;a=?\n"  # the tiny default


def test_required_fails_on_a_tokenizer_without_a_template(tok):
    tok_without = build_tokenizer([Q], vocab_size=280, chat_template=None)
    with pytest.raises(ConfigError, match=r"model\.chat_template: required, but the tokenizer has no chat template"):
        format_prompt(Q, ModelConfig(chat_template="required"), tok_without)
    assert format_prompt(Q, ModelConfig(chat_template="required"), tok).startswith("<|im_start|>user")


def test_a_template_that_writes_the_bos_gets_no_second_one():
    from prmflow.lm.models import build_tokenizer as tiny_tokenizer

    tiny = tiny_tokenizer()  # bos "<s>"
    assert adds_special_tokens(tiny, ["a=1;a=?\n"]) is True
    assert adds_special_tokens(tiny, ["<s>a=1;a=?\n"]) is False
