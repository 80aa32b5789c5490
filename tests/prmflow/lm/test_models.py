"""Loading a private checkpoint's tokenizer as saved: the Qwen2Tokenizer mismatch is caught."""

from __future__ import annotations

import pytest

from tests.real_model import make_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    return make_checkpoint(tmp_path_factory.mktemp("ck") / "qwen2", train_steps=0)


def test_auto_tokenizer_splits_digits_the_saved_tokenizer_keeps(checkpoint):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    from prmflow.lm.models import tokenizer_mismatch

    auto = AutoTokenizer.from_pretrained(str(checkpoint))
    saved = Tokenizer.from_file(str(checkpoint / "tokenizer.json"))
    assert type(auto).__name__ == "Qwen2Tokenizer"  # rebuilt from the folder's model type
    assert auto.tokenize(" 48") == ["Ġ", "4", "8"] and saved.encode(" 48").tokens == ["Ġ48"]
    why = tokenizer_mismatch(auto, checkpoint / "tokenizer.json")
    assert why.startswith("Qwen2Tokenizer encodes") and "'Ġ48'" in why


def test_load_tokenizer_uses_the_tokenizer_as_saved(checkpoint, capsys):
    from tokenizers import Tokenizer

    from prmflow.lm.models import PROBE_TEXT, load_tokenizer, tokenizer_mismatch

    tok = load_tokenizer(checkpoint)
    saved = Tokenizer.from_file(str(checkpoint / "tokenizer.json"))
    text = "Natalia sold 48/2 = 24 clips, 12345 in all."
    assert tok(text, add_special_tokens=False)["input_ids"] == saved.encode(text).ids
    assert tokenizer_mismatch(tok, checkpoint / "tokenizer.json", PROBE_TEXT) is None
    # what the stages need from it: EOS, a pad token, left padding, the chat template
    assert (tok.eos_token, tok.pad_token, tok.padding_side) == ("<|im_end|>", "<|endoftext|>", "left")
    assert tok.chat_template
    assert "using tokenizer.json as saved" in capsys.readouterr().err
    load_tokenizer(checkpoint)
    assert capsys.readouterr().err == ""  # said once per process


def test_a_tokenizer_that_matches_is_kept_as_auto_tokenizer_loads_it(tmp_path):
    from prmflow.lm.models import build_tokenizer, load_tokenizer

    build_tokenizer().save_pretrained(tmp_path)  # no config.json: nothing to rebuild it from
    tok = load_tokenizer(tmp_path)
    assert tok("a=12;a=?", add_special_tokens=False)["input_ids"] == build_tokenizer()("a=12;a=?")["input_ids"]


def test_on_cpu_a_policy_loads_with_the_configured_attention_kernel_and_saves_without_it(tmp_path):
    from prmflow.config import ModelConfig, TinyModelConfig
    from prmflow.lm.models import build_tiny_model, build_tokenizer, load_causal_lm

    tok = build_tokenizer()
    cfg = ModelConfig(device="cpu", tiny=TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64))
    build_tiny_model(tok, cfg, seed=0).save_pretrained(tmp_path / "m")
    own = load_causal_lm(tmp_path / "m", cfg.model_copy(update={"cpu_attention": None})).config._attn_implementation
    model = load_causal_lm(tmp_path / "m", cfg)
    assert cfg.cpu_attention == "eager" and model.config._attn_implementation == "eager" != own
    model.save_pretrained(tmp_path / "again")
    assert load_causal_lm(tmp_path / "again", cfg.model_copy(update={"cpu_attention": None})).config._attn_implementation == own
