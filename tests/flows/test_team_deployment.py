"""A team's setup (README "Team deployment"): the lifecycle against a separately started MLflow
tracking server (SQL database + artifact store) with the stage outputs in a DVC remote that
``dvc push`` / ``dvc pull`` round-trip."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import dvc, stale_stages

OUTPUTS = ("data/curated", "data/labels", "models/base", "models/prm", "models/policy")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path):
    """``mlflow server`` on 127.0.0.1 with a SQLite database and a proxied artifact store."""
    port, store = _free_port(), tmp_path / "mlflow-server"
    store.mkdir()
    cmd = [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    cmd += ["--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}", "--artifacts-destination", str(store / "artifacts")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"{url}/health", timeout=1)
                break
            except OSError:
                assert proc.poll() is None, "mlflow server exited"
                time.sleep(0.5)
        else:
            pytest.fail("mlflow server did not start in 120 s")
        yield url, store
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
def test_lifecycle_against_an_mlflow_server_and_a_dvc_remote(project, prefect_harness, mlflow_server, tmp_path, monkeypatch, capsys):
    from mlflow import MlflowClient

    from flows.lifecycle import LifecycleParams, lifecycle
    from prmflow import tracking

    url, store = mlflow_server
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    remote = tmp_path / "dvc-remote"
    dvc(project, "remote", "add", "--default", "team", str(remote))

    t0 = time.perf_counter()
    result = lifecycle(LifecycleParams(), root=str(project), experiment_name="team")
    wall = time.perf_counter() - t0

    # MLflow: every run and model version is on the server, their files in its artifact store
    client = MlflowClient(url)
    top = client.get_run(result["mlflow_run_id"])
    assert top.info.status == "FINISHED" and top.info.artifact_uri.startswith("mlflow-artifacts:")
    assert client.get_registered_model(tracking.POLICY_MODEL) and client.get_registered_model("prmflow-prm")
    assert any(store.joinpath("artifacts").rglob("*.safetensors"))
    assert not (project / "mlflow.db").exists() and not (project / "mlartifacts").exists()

    # DVC: push the outputs, lose them and the local cache, pull them back: up to date
    dvc(project, "push")
    for out in OUTPUTS:
        shutil.rmtree(project / out)
    shutil.rmtree(project / ".dvc/cache")
    dvc(project, "pull")
    assert all((project / out).is_dir() for out in OUTPUTS)
    assert (project / "models/policy/config.json").exists()
    assert stale_stages(project) == {}
    with capsys.disabled():
        print(f"\nteam deployment: lifecycle {wall:.0f} s against {url}; dvc push/pull round-trip clean")
