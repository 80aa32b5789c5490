"""A model folder is checked before any work, with the setting named."""

from __future__ import annotations

import shutil

import pytest

from prmflow.config import ConfigError, ModelConfig
from prmflow.lm.folders import check_model_source, has_chat_template, model_digest
from tests.real_model import make_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ck") / "qwen2", train_steps=0)


def test_a_model_folder_without_a_tokenizer_fails_naming_the_setting(checkpoint, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    for f in ("config.json", "model.safetensors"):
        shutil.copy(checkpoint / f, bare / f)
    with pytest.raises(ConfigError, match=rf"^model\.name_or_path: {bare}: no tokenizer in the folder"):
        check_model_source(ModelConfig(name_or_path=str(bare)))
    with pytest.raises(ConfigError, match=r"model\.name_or_path: .*/nowhere: no such folder"):
        check_model_source(ModelConfig(name_or_path=str(tmp_path / "nowhere")))
    (bare / "config.json").unlink()
    with pytest.raises(ConfigError, match="no config.json"):
        check_model_source(ModelConfig(name_or_path=str(bare)))
    check_model_source(ModelConfig(name_or_path=str(checkpoint)))
    check_model_source(ModelConfig(name_or_path="Qwen/Qwen2.5-0.5B-Instruct"))  # a Hub id: the loader's to resolve


def test_required_chat_template(checkpoint, tmp_path):
    assert has_chat_template(checkpoint)
    plain = tmp_path / "plain"
    shutil.copytree(checkpoint, plain)
    (plain / "chat_template.jinja").unlink()
    assert not has_chat_template(plain)
    with pytest.raises(ConfigError, match=r"^model\.chat_template: required, but the tokenizer in .*plain has no chat template"):
        check_model_source(ModelConfig(name_or_path=str(plain), chat_template="required"))
    check_model_source(ModelConfig(name_or_path=str(plain)))  # auto: the plain template then
    with pytest.raises(ConfigError, match="tiny default's tokenizer has no chat template"):
        check_model_source(ModelConfig(chat_template="required"))


def test_model_digest_sees_content_not_provenance(checkpoint, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(checkpoint, copy)
    assert model_digest(copy) == model_digest(checkpoint)
    (copy / "champion.json").write_text("{}")  # where it came from: not what it computes
    assert model_digest(copy) == model_digest(checkpoint)
    (copy / "chat_template.jinja").write_text("{{ messages }}")
    assert model_digest(copy) != model_digest(checkpoint)
