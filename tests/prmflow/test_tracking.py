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


def test_a_model_is_registered_only_when_its_content_changed(tmp_path, fresh_mlflow, monkeypatch):
    import mlflow
    import torch
    from mlflow import MlflowClient

    from prmflow import tracking
    from prmflow.config import ModelConfig, TinyModelConfig
    from prmflow.lm.models import build_tiny_model, build_tokenizer

    torch.set_num_threads(1)
    monkeypatch.setenv("PRMFLOW_LOG_MODELS", "1")
    tracking.setup(tmp_path)
    cfg = ModelConfig(tiny=TinyModelConfig(hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32))
    tok = build_tokenizer()

    def save(seed: int, where: str):
        build_tiny_model(tok, cfg, seed=seed).save_pretrained(tmp_path / where)
        tok.save_pretrained(tmp_path / where)
        return tmp_path / where

    versions = []
    for where, seed, alias in (("base", 0, "base"), ("again", 0, "base"), ("policy", 1, "candidate")):
        with mlflow.start_run() as run:
            versions.append(tracking.log_policy_model(save(seed, where), run.info.run_id, None, tok, aliases=(alias,)))
        tags = MlflowClient().get_run(run.info.run_id).data.tags
        versions.append(tags[f"prmflow.registered.{tracking.POLICY_MODEL}"])
    # the same checkpoint saved again (a warm start re-run) is not logged a second time
    assert versions == ["1", "v1 (new)", "1", "v1 (unchanged: same content, not logged again)", "2", "v2 (new)"]
    client = MlflowClient()
    assert len(client.search_model_versions(f"name='{tracking.POLICY_MODEL}'")) == 2
    assert str(client.get_model_version_by_alias(tracking.POLICY_MODEL, "base").version) == "1"
    assert client.get_model_version(tracking.POLICY_MODEL, "2").tags[tracking.DIGEST_TAG].startswith("sha256:")


def test_metric_dict_names_every_metric_one_way():
    from prmflow import tracking

    report = {"overall": {"pass@4": 0.5, "n": 16, "ok": True}, "prm.chains.step_auc": 0.9, "gate": {"diff": float("nan"), "reason": "x"}}
    assert tracking.metric_dict(report) == {"overall/pass_at_4": 0.5, "overall/n": 16.0, "prm/chains/step_auc": 0.9}
    assert tracking.metric_dict({"diff": 0.1}, "gate/") == {"gate/diff": 0.1}


def test_the_experiment_opens_as_model_training_with_a_description_a_user_edit_kept(tmp_path, fresh_mlflow):
    from mlflow import MlflowClient

    from prmflow import tracking

    exp_id = tracking.setup(tmp_path)
    tags = MlflowClient().get_experiment(exp_id).tags
    assert tags["mlflow.experimentKind"] == "custom_model_development"
    assert tags["mlflow.note.content"].startswith("**prmflow**: RL post-training")
    MlflowClient().set_experiment_tag(exp_id, "mlflow.note.content", "ours")
    tracking.setup(tmp_path)
    assert MlflowClient().get_experiment(exp_id).tags["mlflow.note.content"] == "ours"


def test_the_runs_view_lists_one_lifecycle_runs_stages_in_order_with_metric_columns(tmp_path, fresh_mlflow):
    import json

    from mlflow import MlflowClient

    from prmflow import tracking

    exp_id, client = tracking.setup(tmp_path), MlflowClient()
    top = client.create_run(exp_id, run_name="lifecycle")
    label = tracking.lifecycle_label(top)
    assert label.startswith("lifecycle ") and label.endswith(f"({top.info.run_id[:8]})")
    client.create_run(exp_id, run_name="curate", tags={"prmflow.stage": "curate", "prmflow.lifecycle_run": label})
    path = tracking.save_runs_view(exp_id, top.info.run_id, label)
    assert path == f"#/experiments/{exp_id}/runs?viewStateShareKey={top.info.run_id}&workflowType=machine_learning"
    state = json.loads(client.get_experiment(exp_id).tags[f"mlflow.sharedViewState.{top.info.run_id}"])
    assert state["searchFilter"] == f"tags.`prmflow.lifecycle_run` = '{label}'"
    assert (state["orderByKey"], state["orderByAsc"]) == ("attributes.start_time", True)
    assert "metrics.`overall/greedy_acc`" in state["selectedColumns"]
    assert state["groupBy"]["groupByKeys"] == [{"mode": "tag", "groupByData": "prmflow.lifecycle_run"}]
    # a lifecycle run that ran no stage (nothing changed) links to the last one that did
    again = client.create_run(exp_id, run_name="again")
    tracking.save_runs_view(exp_id, again.info.run_id, tracking.lifecycle_label(again))
    state = json.loads(client.get_experiment(exp_id).tags[f"mlflow.sharedViewState.{again.info.run_id}"])
    assert state["searchFilter"] == f"tags.`prmflow.lifecycle_run` = '{label}'"


def test_a_model_version_carries_the_gate_decision_first_and_its_metrics_as_tags(tmp_path, fresh_mlflow):
    from mlflow import MlflowClient

    from prmflow import tracking

    tracking.setup(tmp_path)
    client = MlflowClient()
    client.create_registered_model("m")
    v = client.create_model_version("m", source=str(tmp_path), description="RL candidate: 2 steps.").version
    client.set_registered_model_alias("m", "candidate", v)
    assert tracking.describe_alias(
        "m", "candidate", "Gate: not promoted (not better).", {"gate.decision": "keep", "gate/diff": 1 / 3}
    ) == str(v)
    mv = client.get_model_version("m", v)
    assert mv.description == "Gate: not promoted (not better).\nRL candidate: 2 steps."
    assert mv.tags == {"gate.decision": "keep", "gate/diff": "0.3333"}
    assert tracking.describe_alias("m", "champion", "x") is None  # no such alias: nothing to describe


def test_logging_a_policy_saved_at_a_relative_path_asks_the_hub_nothing(tmp_path, fresh_mlflow, monkeypatch):
    # the stages log "models/base": a valid Hub repo id, so the flavor looked it up for a license
    # file, 5 retries offline (~25 s per logged model in every `make run`)
    import huggingface_hub
    import mlflow

    from prmflow import tracking
    from prmflow.config import ModelConfig, TinyModelConfig
    from prmflow.lm.models import build_tiny_model, build_tokenizer

    asked = []

    def list_repo_files(repo_id, *args, **kwargs):  # the real one up to its first request
        huggingface_hub.utils.validate_repo_id(repo_id)  # not a repo id: fails here, asking nothing
        asked.append(repo_id)
        return []

    monkeypatch.setattr(huggingface_hub, "list_repo_files", list_repo_files)
    monkeypatch.setenv("PRMFLOW_LOG_MODELS", "1")
    monkeypatch.chdir(tmp_path)
    tracking.setup(tmp_path)
    tok = build_tokenizer()
    cfg = ModelConfig(tiny=TinyModelConfig(hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32))
    build_tiny_model(tok, cfg, seed=0).save_pretrained("models/base")
    tok.save_pretrained("models/base")
    with mlflow.start_run() as run:
        assert tracking.log_policy_model("models/base", run.info.run_id, None, tok) == "1"
    assert asked == []
