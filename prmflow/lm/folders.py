"""What a model folder holds, read from its files alone (no torch, no transformers): whether it
has a tokenizer and a chat template, and a digest of its content.

Light on purpose: the flow checks a model path with it before any stage runs
(:func:`check_model_source`), and the registry compares digests with it
(:func:`prmflow.tracking.log_policy_model`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from prmflow.config import ConfigError, ModelConfig
from prmflow.inputs import file_digest

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model")
"""Any of these makes a folder loadable by ``AutoTokenizer``."""
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")
NOT_MODEL_FILES = ("champion.json",)
"""Files a model folder may hold that say where it came from, not what it computes."""


def has_tokenizer(path: str | Path) -> bool:
    return any((Path(path) / f).is_file() for f in TOKENIZER_FILES)


def has_weights(path: str | Path) -> bool:
    return any(f.suffix in WEIGHT_SUFFIXES for f in Path(path).iterdir() if f.is_file())


def has_chat_template(path: str | Path) -> bool:
    """A chat template saved beside the tokenizer: ``chat_template.jinja`` (transformers 5),
    ``chat_template.json`` or a ``chat_template`` key of ``tokenizer_config.json``."""
    p = Path(path)
    if (p / "chat_template.jinja").is_file() or (p / "chat_template.json").is_file():
        return True
    cfg = p / "tokenizer_config.json"
    try:
        return bool(cfg.is_file() and json.loads(cfg.read_text()).get("chat_template"))
    except (OSError, ValueError):
        return False


def check_model_source(cfg: ModelConfig) -> None:
    """Fail before any work when ``model.name_or_path`` is a local folder that cannot be used
    (:func:`check_model_folder`) or (``model.chat_template: required``) has no chat template."""
    name = cfg.name_or_path
    if name is None:
        if cfg.chat_template == "required":
            raise ConfigError("model.chat_template: required, but the tiny default's tokenizer has no chat template (use auto or none)")
        return
    check_model_folder(name, "model.name_or_path")
    if Path(name).exists() and cfg.chat_template == "required" and not has_chat_template(name):
        raise ConfigError(f"model.chat_template: required, but the tokenizer in {name} has no chat template (use auto or none)")


def check_model_folder(name: str, setting: str) -> None:
    """Fail when ``name`` (the value of ``setting``) is a local folder that cannot be loaded: not
    there, no ``config.json``, no weights, no tokenizer. A Hub id (``org/name``, not found here)
    is left to the loader (it may need the network or a cache)."""
    p = Path(name)
    if not p.exists():
        if name.startswith((".", "/", "~")) or name.count("/") > 1:
            raise ConfigError(f"{setting}: {name}: no such folder (and not a Hugging Face id 'org/name')")
        return
    where = f"{setting}: {name}"
    if not p.is_dir() or not (p / "config.json").is_file():
        raise ConfigError(f"{where}: not a Hugging Face model folder (no config.json); save one with save_pretrained")
    if not has_weights(p):
        raise ConfigError(f"{where}: no weights (*.safetensors / *.bin) in the folder")
    if not has_tokenizer(p):
        raise ConfigError(
            f"{where}: no tokenizer in the folder (none of {', '.join(TOKENIZER_FILES)}); "
            "save the tokenizer the model was trained with beside it (tokenizer.save_pretrained)"
        )


def model_digest(path: str | Path) -> str:
    """``sha256:<hex>`` over what makes a model folder compute what it does: every file's name and
    bytes (weights, config, tokenizer, chat template), sorted; provenance files
    (:data:`NOT_MODEL_FILES`) and sub-folders left out. The same checkpoint saved twice has the
    same digest, so the registry can tell an unchanged model from a new one."""
    root, h = Path(path), hashlib.sha256()
    for f in sorted(p for p in root.iterdir() if p.is_file() and p.name not in NOT_MODEL_FILES):
        h.update(f.name.encode() + b"\0" + file_digest(f).encode() + b"\n")
    return "sha256:" + h.hexdigest()
