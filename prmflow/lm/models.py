"""Models and tokenizers: the tiny embedded default, or any Hugging Face causal LM.

The default tokenizer is word-level: every number below the modulus, every variable letter and
every symbol is one token. Measured on 2 cores (see ../shared/design.md), this is what lets a
~1M-parameter model learn chain arithmetic in a couple of minutes; a BPE tokenizer does not.
"""

from __future__ import annotations

import string
import sys
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, PreTrainedTokenizerFast

from prmflow.config import ModelConfig

SPECIAL_TOKENS = {"pad": "<pad>", "bos": "<s>", "eos": "</s>", "unk": "<unk>"}
SYMBOLS = list("=+-*/;?.,()") + ["####", " ", "\n"]


def build_tokenizer(modulus: int = 100) -> PreTrainedTokenizerFast:
    """Word-level tokenizer for the synthetic task, built offline with ``tokenizers``."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    vocab_list = list(SPECIAL_TOKENS.values()) + SYMBOLS + list(string.ascii_lowercase)
    vocab_list += [str(i) for i in range(max(modulus, 100))]
    vocab = {tok: i for i, tok in enumerate(vocab_list)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=SPECIAL_TOKENS["unk"]))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"####|\d+|[a-z]|\s|."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=SPECIAL_TOKENS["bos"],
        eos_token=SPECIAL_TOKENS["eos"],
        pad_token=SPECIAL_TOKENS["pad"],
        unk_token=SPECIAL_TOKENS["unk"],
        padding_side="left",
    )


def build_tiny_model(tokenizer: PreTrainedTokenizerFast, cfg: ModelConfig, seed: int = 0):
    """A small Llama from a config (random init, no download). bos/eos/pad are set explicitly."""
    t = cfg.tiny
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=t.hidden_size,
        num_hidden_layers=t.num_layers,
        num_attention_heads=t.num_heads,
        num_key_value_heads=t.num_heads,
        intermediate_size=t.intermediate_size,
        max_position_embeddings=t.max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config)


def resolve_device(pref: str = "auto") -> torch.device:
    if pref != "auto":
        return torch.device(pref)
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def resolve_dtype(pref: str, device: torch.device) -> torch.dtype:
    if pref != "auto":
        return getattr(torch, pref)
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


PROBE_TEXT = "Natalia sold 48/2 = 24 clips, then 12345 + 0.5 = 12345.5 in all.\n\n#### 1,234 \\boxed{72}"
"""Digits, spaces, newlines and punctuation: where tokenizer pipelines differ."""
_NOTED: set[str] = set()


def _saved_tokenizer_file(path: str | Path, revision: str | None) -> str | None:
    """The ``tokenizer.json`` saved with the model (local folder or Hub cache), if any."""
    from transformers.utils import cached_file

    try:
        return cached_file(str(path), "tokenizer.json", revision=revision, _raise_exceptions_for_missing_entries=False)
    except OSError:
        return None


def tokenizer_mismatch(tokenizer, tokenizer_file: str | Path, text: str = PROBE_TEXT) -> str | None:
    """How ``tokenizer`` encodes ``text`` differently from the ``tokenizer.json`` saved with the
    model (the pipeline the model was trained with), or ``None`` when they agree.

    ``AutoTokenizer`` rebuilds some tokenizers from their class instead of the saved file: a
    byte-level BPE saved in a Qwen2 folder comes back as ``Qwen2Tokenizer``, whose
    pre-tokenizer splits every digit apart where the saved one kept ``48`` whole."""
    from tokenizers import Tokenizer

    ours = tokenizer(text, add_special_tokens=False)["input_ids"]
    saved = Tokenizer.from_file(str(tokenizer_file)).encode(text, add_special_tokens=False).ids
    if ours == saved:
        return None
    i = next((k for k, (a, b) in enumerate(zip(ours, saved)) if a != b), min(len(ours), len(saved)))
    show = slice(max(0, i - 2), i + 6)
    return (
        f"{type(tokenizer).__name__} encodes {text!r} as {tokenizer.convert_ids_to_tokens(ours[show])} "
        f"where the saved tokenizer.json gives {tokenizer.convert_ids_to_tokens(saved[show])} (from token {i})"
    )


def load_tokenizer(path: str | Path, revision: str | None = None):
    """The tokenizer saved with a model, left-padded (generation appends on the right), with a
    pad token (EOS when it has none).

    ``AutoTokenizer`` first; when the model folder holds a ``tokenizer.json`` that it does not
    reproduce (:func:`tokenizer_mismatch`), the tokenizer is loaded from that file as saved
    (``PreTrainedTokenizerFast``: the same special tokens and chat template), and the mismatch
    is printed once per process: a model fed other token ids than it was trained on is silently
    worse."""
    tok = AutoTokenizer.from_pretrained(str(path), revision=revision)
    saved = _saved_tokenizer_file(path, revision)
    why = tokenizer_mismatch(tok, saved) if saved else None
    if why:
        tok = PreTrainedTokenizerFast.from_pretrained(str(path), revision=revision)
        still = tokenizer_mismatch(tok, saved)
        if still:
            raise ValueError(f"{path}: the tokenizer cannot be loaded as saved: {still}")
        if str(path) not in _NOTED:
            _NOTED.add(str(path))
            print(f"prmflow: tokenizer of {path}: {why}; using tokenizer.json as saved", file=sys.stderr)
    tok.padding_side = "left"  # generation appends on the right
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_causal_lm(path: str | Path, cfg: ModelConfig, device: torch.device | None = None, revision: str | None = None):
    """Load a causal LM (local path or HF id, at ``revision``) onto the configured device and
    dtype; on CPU with ``cfg.cpu_attention``'s attention kernel."""
    device = device or resolve_device(cfg.device)
    dtype = resolve_dtype(cfg.dtype, device)
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype, revision=revision)
    if device.type == "cpu" and cfg.cpu_attention and cfg.cpu_attention != model.config._attn_implementation:
        model.set_attn_implementation(cfg.cpu_attention)  # not saved: config.json keeps no kernel
    return model.to(device)


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())
