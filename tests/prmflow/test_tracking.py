"""MLflow tracking: a moved checkout keeps its artifacts; runs of dead processes end FAILED."""

import shutil
import subprocess
import sys

import pytest


@pytest.fixture
def fresh_mlflow(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("PRMFLOW_EXPERIMENT", raising=False)


def test_a_moved_project_still_finds_every_artifact_and_model(tmp_path, fresh_mlflow):
    import mlflow
    from mlflow import MlflowClient

    from prmflow import tracking

    old, new = tmp_path / "old" / "proj", tmp_path / "new" / "proj"
    old.mkdir(parents=True)
    exp_id = tracking.setup(old)
    assert MlflowClient().get_experiment(exp_id).artifact_location == str(old / "mlartifacts")
    (old / "note.txt").write_text("hello")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(old / "note.txt"))
    client = MlflowClient()
    client.create_registered_model("m")
    client.create_model_version("m", source=f"{run.info.artifact_uri}/note.txt", run_id=run.info.run_id)

    shutil.move(str(old), str(new))  # the checkout moves (or is copied, and the old one deleted)
    shutil.rmtree(tmp_path / "old")
    assert tracking.setup(new) == exp_id
    client = MlflowClient()
    moved = client.get_run(run.info.run_id)
    assert moved.info.artifact_uri.startswith(str(new / "mlartifacts"))
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["note.txt"]
    assert open(client.download_artifacts(run.info.run_id, "note.txt", str(tmp_path))).read() == "hello"
    version = client.get_model_version("m", "1")
    assert version.source.startswith(str(new)) and str(tmp_path / "old") not in version.source
    assert client.get_experiment(exp_id).tags[tracking.ROOT_TAG] == str(new)


def test_relocate_only_rewrites_whole_path_prefixes(tmp_path):
    import sqlite3

    from prmflow import tracking

    db = tmp_path / "mlflow.db"
    with sqlite3.connect(db) as con:
        con.execute("create table runs (artifact_uri text)")
        con.executemany(
            "insert into runs values (?)", [("/a/proj/mlartifacts/1",), ("/a/project2/x",), ("s3://bucket/a/proj",), ("/a/proj",)]
        )
    assert tracking.relocate(db, "/a/proj", "/b/p") == 2
    with sqlite3.connect(db) as con:
        got = [r[0] for r in con.execute("select artifact_uri from runs")]
    assert got == ["/b/p/mlartifacts/1", "/a/project2/x", "s3://bucket/a/proj", "/b/p"]


def test_a_run_whose_process_died_is_ended_failed(tmp_path, fresh_mlflow):
    import mlflow
    from mlflow import MlflowClient

    from prmflow import tracking

    exp_id = tracking.setup(tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    client = MlflowClient()
    orphan = client.create_run(exp_id, tags={**tracking.run_tags("label"), "prmflow.pid": dead})  # killed with SIGKILL
    alive = client.create_run(exp_id, tags=tracking.run_tags("evaluate"))  # this process: still running
    assert tracking.end_orphans(exp_id) == [orphan.info.run_id]
    assert client.get_run(orphan.info.run_id).info.status == "FAILED"
    assert client.get_run(alive.info.run_id).info.status == "RUNNING"
    mlflow.end_run()


def test_metric_dict_names_every_metric_one_way():
    from prmflow import tracking

    report = {"overall": {"pass@4": 0.5, "n": 16, "ok": True}, "prm.chains.step_auc": 0.9, "gate": {"diff": float("nan"), "reason": "x"}}
    assert tracking.metric_dict(report) == {"overall/pass_at_4": 0.5, "overall/n": 16.0, "prm/chains/step_auc": 0.9}
    assert tracking.metric_dict({"diff": 0.1}, "gate/") == {"gate/diff": 0.1}
