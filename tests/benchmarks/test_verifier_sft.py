"""benchmarks/verifier_sft.py: the warm start trained on past its target, into a folder of its own."""

import doctest
import json
from pathlib import Path

import pytest
import torch

from benchmarks import verifier_sft
from prmflow import workspace as ws

TINY = ["model.tiny.hidden_size=32", "model.tiny.num_layers=1", "model.tiny.num_heads=2", "model.tiny.intermediate_size=64"]
SMALL_SFT = ["warmstart.num_examples=40", "warmstart.batch_size=8", "warmstart.probe_problems=4", "warmstart.warmup_steps=0"]


def test_docstring_examples():
    assert doctest.testmod(verifier_sft).failed == 0


@pytest.fixture
def base(tmp_path, monkeypatch):
    """A tiny random warm start in models/base and a few synthetic problems in data/curated."""
    from prmflow.config import load_params
    from prmflow.lm.models import build_tiny_model, build_tokenizer
    from prmflow.problems.synthetic import generate_problems

    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text((Path(__file__).resolve().parents[2] / "params.yaml").read_text())
    params = load_params(tmp_path / "params.yaml", TINY)
    tok = build_tokenizer(params.data.modulus)
    build_tiny_model(tok, params.model, seed=0).save_pretrained(tmp_path / "models/base")
    tok.save_pretrained(tmp_path / "models/base")

    def split(n, seed):
        return [dict(r, id=f"s{seed}-{i}", source="synthetic") for i, r in enumerate(generate_problems(n, seed, 2, 4))]

    ws.save_curated({"train": split(5, 1), "eval": split(2, 2)}, tmp_path / "data/curated")
    return tmp_path


def test_the_verifier_is_the_warm_start_trained_on_in_a_new_folder(base, capsys):
    from transformers import AutoModelForCausalLM

    line = verifier_sft.main(["--out", "models/verifier", "--steps", "3", *sum((["-S", o] for o in TINY + SMALL_SFT), [])])

    assert line["sft_steps"] == 3 and line["warmstart_seed"] == 3 + verifier_sft.SEED_OFFSET
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == line
    assert json.loads((base / "models/verifier/sft_metrics.json").read_text())["sft_steps"] == 3
    before = AutoModelForCausalLM.from_pretrained(base / "models/base")
    after = AutoModelForCausalLM.from_pretrained(base / "models/verifier")
    # trained from the warm start (same shapes), and trained: some weight moved
    assert any(not torch.equal(p, q) for p, q in zip(before.parameters(), after.parameters(), strict=True))
    assert not (base / "metrics").exists() and not (base / "mlflow.db").exists()  # the stage's outputs are untouched


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--out", "models/base"], "already exists"),
        (["--out", "models/v", "--policy", "models/nope"], "models/nope: no model folder"),
        (["--out", "models/v", "--policy", "data"], "--policy: data: not a Hugging Face model folder (no config.json)"),
        (["--out", "models/v", "--steps", "0"], "--steps must be >= 1"),
        (["--out", "models/v", "-S", "warmstart.batch_size=0"], "batch_size"),
    ],
)
def test_bad_arguments_are_a_usage_error_not_a_traceback(base, argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        verifier_sft.main(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err
    assert not (base / "models/v").exists()
