"""Shared fixtures. Everything runs offline, on CPU, in temporary directories."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

for k, v in {
    "HF_HUB_OFFLINE": "1",
    "DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(k, v)


@pytest.fixture(scope="session")
def prefect_harness():
    """A real, temporary Prefect API (SQLite) for the whole test session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


MICRO = {
    "model": {"tiny": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64, "max_position_embeddings": 160}},
    "data": {"num_train": 40, "num_eval": 16, "min_steps": 2, "max_steps": 4},
    "warmstart": {"max_steps": 4, "batch_size": 8, "num_examples": 64, "warmup_steps": 0, "check_every": 2, "probe_problems": 16, "probe_below_loss": None},
    "evaluate": {"num_samples": 2, "max_new_tokens": 40, "batch_size": 64, "num_examples_logged": 2},
    "label": {"num_problems": 6, "samples_per_problem": 2, "rollouts": 2, "max_new_tokens": 40},
    "prm": {"max_steps": 3, "batch_size": 4, "best_of_n": 2, "eval_problems": 4},
    "rl": {
        "steps": 2,
        "prompts_per_step": 2,
        "group_size": 2,
        "max_new_tokens": 40,
        "eval_every": 1,
        "eval_problems": 4,
        "checkpoint_every": 1,
    },
}


def make_project(tmp_path: Path) -> Path:
    """A throwaway git + DVC repo holding a copy of the code, dvc.yaml and a micro params.yaml."""
    proj = tmp_path / "proj"
    proj.mkdir()
    for d in ("prmflow", "tasks", "reward", "flows"):
        shutil.copytree(ROOT / d, proj / d, ignore=shutil.ignore_patterns("__pycache__"))
    for f in ("dvc.yaml", "flow_state.yaml", ".gitignore", ".dvcignore"):
        shutil.copy(ROOT / f, proj / f)
    shutil.copytree(ROOT / "data/incoming", proj / "data/incoming")
    shutil.copytree(ROOT / ".dvc", proj / ".dvc", ignore=shutil.ignore_patterns("tmp", "cache"))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for section, values in MICRO.items():
        for k, v in values.items():
            params.setdefault(section, {})[k] = v
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q"], cwd=proj, check=True)
    subprocess.run(git + ["add", "-A"], cwd=proj, check=True)
    subprocess.run(git + ["commit", "-qm", "init"], cwd=proj, check=True)
    return proj


@pytest.fixture
def project(tmp_path, monkeypatch):
    proj = make_project(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{proj / 'mlflow.db'}")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "t")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "t@t")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "t")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "t@t")
    return proj


def dvc(proj, *args) -> str:
    """``dvc`` of this venv in ``proj``, with this venv's ``python`` first on PATH (the stages' commands)."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run([str(bin_dir / "dvc"), *args], cwd=proj, env=env, capture_output=True, text=True, check=True).stdout


def stale_stages(proj) -> dict:
    """``dvc status`` of ``proj`` without the ``inputs`` stage, which is always changed (it
    fingerprints external inputs every time): ``{}`` means everything is up to date."""
    import json

    status = json.loads(dvc(proj, "status", "--json"))
    assert status.pop("inputs", ["always changed"]) == ["always changed"]
    return status
