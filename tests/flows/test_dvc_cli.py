from pathlib import Path

import pytest
import yaml

from flows.dvc_cli import set_params
from prmflow.config import ConfigError

# the shipped file: every section is required; it has comments to keep ("# prmflow parameters: ...")
TEXT = (Path(__file__).resolve().parents[2] / "params.yaml").read_text()


def test_set_params_keeps_comments_and_skips_unchanged_values(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text(TEXT)
    steps, seed = yaml.safe_load(TEXT)["rl"]["steps"], yaml.safe_load(TEXT)["seed"]
    set_params([f"rl.steps={steps}", f"seed={seed}"], tmp_path)  # the values it already has
    assert p.read_text() == TEXT  # nothing changed: byte for byte
    set_params(["rl.steps=5"], tmp_path)
    text = p.read_text()
    assert "  steps: 5\n" in text and "# prmflow parameters" in text and "# HF model id or local path" in text


def test_set_params_refuses_a_bad_value_before_writing(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text(TEXT)
    with pytest.raises(ConfigError, match=r"rl\.steps"):
        set_params(["rl.steps=many"], tmp_path)
    assert p.read_text() == TEXT
