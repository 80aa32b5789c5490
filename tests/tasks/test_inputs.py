"""Stage ``inputs``: a data file replaced in place re-runs curate; the same bytes re-run nothing."""

import json
from pathlib import Path

import yaml

from prmflow.inputs import data_inputs, hub_revision, path_digest
from tests.conftest import dvc


def gsm8k(path: Path, n: int, offset: int = 0) -> None:
    rows = [
        {
            "question": f"Tom has {i + offset} apples and buys 2. How many?",
            "answer": f"{i + offset}+2={i + offset + 2}\n#### {i + offset + 2}",
        }
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_a_data_file_rewritten_in_place_re_runs_curate_and_only_then(project):
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["data"].update(source="gsm8k", path="train.jsonl", num_train=20, num_eval=5, min_steps=1, max_steps=8)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    gsm8k(project / "train.jsonl", 30)
    assert "Running stage 'curate'" in dvc(project, "repro", "curate")
    assert "Stage 'curate' didn't change, skipping" in dvc(project, "repro", "curate")  # same bytes: nothing to do

    gsm8k(project / "train.jsonl", 30, offset=100)  # same path, new content (a nightly data drop)
    assert json.loads(dvc(project, "status", "--json"))["inputs"] == ["always changed"]  # the check runs every time
    assert "Running stage 'curate'" in dvc(project, "repro", "curate")
    curated = json.loads((project / "metrics/curate.json").read_text())
    assert curated["train"]["read"] == 30
    assert json.loads((project / "data/inputs/data.json").read_text())["path"]["digest"] == path_digest(project / "train.jsonl")["digest"]


def test_hub_revisions_are_recorded_even_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    sha = "0123456789abcdef0123456789abcdef01234567"
    assert hub_revision("openai/gsm8k", sha, "dataset")["commit"] == sha
    offline = hub_revision("openai/gsm8k", "v2", "dataset")
    assert offline == {"repo": "openai/gsm8k", "type": "dataset", "revision": "v2", "commit": None, "resolved": "offline (HF_HUB_OFFLINE)"}


def test_data_inputs_name_missing_files_instead_of_failing(tmp_path):
    from prmflow.config import load_params
    from tests.conftest import ROOT

    p = load_params(ROOT / "params.yaml", ["data.source=jsonl", f"data.path={tmp_path / 'nope.jsonl'}"])
    assert data_inputs(p)["path"] == {"path": str(tmp_path / "nope.jsonl"), "missing": True}


def test_the_completer_is_fingerprinted_by_its_weights(tmp_path):
    from prmflow.config import load_params
    from prmflow.inputs import completer_inputs
    from tests.conftest import ROOT

    assert completer_inputs(load_params(ROOT / "params.yaml")) == {"completer": "the labelled policy"}
    folder = tmp_path / "champion"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"weights v1")
    p = load_params(ROOT / "params.yaml", [f"label.completer={folder}"])
    v1 = completer_inputs(p)["completer"]["digest"]
    (folder / "model.safetensors").write_bytes(b"weights v2")  # a new champion at the same path
    assert completer_inputs(p)["completer"]["digest"] != v1
