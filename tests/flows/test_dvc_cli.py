import pytest

from flows.dvc_cli import set_params
from prmflow.config import ConfigError

TEXT = "# top comment\nseed: 0\nmodel:\n  name_or_path: null   # keep me\nrl:\n  steps: 80\n"


def test_set_params_keeps_comments_and_skips_unchanged_values(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text(TEXT)
    set_params(["rl.steps=80", "seed=0"], tmp_path)
    assert p.read_text() == TEXT  # nothing changed: byte for byte
    set_params(["rl.steps=5"], tmp_path)
    text = p.read_text()
    assert "steps: 5" in text and "# top comment" in text and "# keep me" in text


def test_set_params_refuses_a_bad_value_before_writing(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text(TEXT)
    with pytest.raises(ConfigError, match=r"rl\.steps"):
        set_params(["rl.steps=many"], tmp_path)
    assert p.read_text() == TEXT
