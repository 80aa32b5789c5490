"""End to end: the lifecycle flow on a micro config, with real Prefect, DVC and MLflow."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

MICRO = {
    "model": {"tiny": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64, "max_position_embeddings": 160}},
    "data": {"num_train": 40, "num_eval": 16, "min_steps": 2, "max_steps": 4},
    "warmstart": {"max_steps": 4, "batch_size": 8, "num_examples": 64, "warmup_steps": 0},
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
    for f in ("dvc.yaml", ".gitignore", ".dvcignore"):
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
    exe = Path(sys.executable).parent / "dvc"
    return subprocess.run([str(exe), *args], cwd=proj, capture_output=True, text=True, check=True).stdout


@pytest.mark.slow
def test_lifecycle_end_to_end(project, prefect_harness):
    from mlflow import MlflowClient

    from flows.lifecycle import STAGES, LifecycleParams, lifecycle
    from prmflow import tracking

    result = lifecycle(LifecycleParams(), root=str(project), experiment_name="first")
    report = json.loads((project / "metrics/eval.json").read_text())
    assert report == result["eval"]
    assert report["policy"] == "candidate"
    assert report["overall"]["n"] == 16
    assert set(report["by_difficulty"]) <= {"2", "3", "4"}
    assert 0.0 <= report["overall"]["greedy_acc"] <= 1.0
    assert {"base", "champion", "gate", "monitors"} <= set(report)
    assert report["champion"]["path"].endswith("models/base")  # nothing promoted before this run
    assert (project / "plots/eval/accuracy_by_difficulty.csv").exists()
    assert [s["stage"] for s in result["stages"]] == list(STAGES)
    label = json.loads((project / "metrics/label.json").read_text())
    assert {"mc_soft.step_agreement", "first_error.step_agreement", "first_error.rollouts_per_step"} <= set(label)
    assert (project / "models/prm").is_dir() and (project / "models/policy/config.json").exists()
    # the gate's decision was carried out: promoted <=> models/champion exists
    assert (project / "models/champion/config.json").exists() == report["gate"]["promote"]

    # MLflow: lifecycle run -> iteration run -> one run per stage, tagged with the git commit
    tracking.setup(project)
    client = MlflowClient()
    top = client.get_run(result["mlflow_run_id"])
    assert top.info.status == "FINISHED"

    def children(run_id):
        return client.search_runs([top.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run_id}'")

    setup_runs = [r for r in children(top.info.run_id) if "prmflow.stage" in r.data.tags]
    iters = [r for r in children(top.info.run_id) if "prmflow.iteration" in r.data.tags]
    assert sorted(r.data.tags["prmflow.stage"] for r in setup_runs) == ["curate", "warmstart"]
    assert len(iters) == 1 and iters[0].data.tags["dvc.experiment"] == result["dvc_experiment"]
    stage_runs = children(iters[0].info.run_id)
    assert sorted(r.data.tags["prmflow.stage"] for r in stage_runs) == ["evaluate", "label", "train_policy", "train_prm"]
    assert all(r.data.tags.get("git_commit") for r in stage_runs + setup_runs)
    aliases = {
        a
        for v in client.search_model_versions(f"name='{tracking.POLICY_MODEL}'")
        for a in client.get_model_version(tracking.POLICY_MODEL, v.version).aliases
    }
    assert {"base", "candidate"} <= aliases
    assert ("champion" in aliases) == report["gate"]["promote"]
    assert client.search_model_versions("name='prmflow-prm'")

    # DVC: everything up to date; the run is an experiment with its metrics
    assert "up to date" in dvc(project, "status").lower()
    assert result["dvc_experiment"] in dvc(project, "exp", "show", "--no-pager", "--md")

    # a second run changes nothing; changing evaluate.num_samples re-runs only evaluate
    again = lifecycle(LifecycleParams(), root=str(project), experiment_name="second")
    assert all(s["ran"] == [] for s in again["stages"])
    third = lifecycle(LifecycleParams(eval_samples=3), root=str(project), experiment_name="third")
    assert [s["ran"] for s in third["stages"]] == [[], [], [], [], [], ["evaluate"]]
    assert "pass@3" in third["eval"]["overall"]
    assert yaml.safe_load((project / "params.yaml").read_text())["evaluate"]["num_samples"] == 3


@pytest.mark.slow
def test_two_iterations_start_from_the_champion(project, prefect_harness):
    from flows.lifecycle import LifecycleParams, lifecycle

    result = lifecycle(LifecycleParams(iterations=2), root=str(project), experiment_name="iters")
    assert [r["iteration"] for r in result["table"]] == [1, 2]
    ran2 = [s["stage"] for s in result["stages"][len(["curate", "warmstart"]) + 4 :] if s["ran"]]
    assert ran2 == ["label", "train_prm", "train_policy", "evaluate"]  # iteration 2 re-ran every stage
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["lifecycle"] == {**params["lifecycle"], "iteration": 2, "start_policy": "models/start"}
    assert (project / "models/start/config.json").exists()
    assert params["prm"]["history_dir"] == "data/label_history"  # iteration 2's PRM also saw iteration 1's labels
    assert (project / "data/label_history/iter1/stepwise.jsonl").exists()
    assert "up to date" in dvc(project, "status").lower()
    shown = dvc(project, "exp", "show", "--no-pager", "--md")
    assert all(it["dvc_experiment"] in shown for it in result["iterations"])


def test_bad_override_fails_before_touching_params(project, prefect_harness):
    from flows.lifecycle import LifecycleParams, lifecycle
    from prmflow.config import ConfigError

    before = (project / "params.yaml").read_text()
    with pytest.raises(ConfigError, match=r"data\.num_train"):
        lifecycle(LifecycleParams(overrides=["data.num_train=many"]), root=str(project))
    assert (project / "params.yaml").read_text() == before


def test_a_second_run_is_refused_or_skipped_while_one_holds_the_workspace(project, prefect_harness):
    """Two triggers at once: the second fails with a clear message (or skips) and touches nothing."""
    from flows.lifecycle import LifecycleParams, lifecycle
    from flows.lock import RunInProgress
    from tests.flows.test_lock import hold_in_other_process

    before = (project / "params.yaml").read_text()
    holder = hold_in_other_process(project, hold=60)
    try:
        with pytest.raises(RunInProgress, match=r"another run is in progress: nightly \(pid \d+"):
            lifecycle(LifecycleParams(on_conflict="fail", num_train=10), root=str(project))
        assert lifecycle(LifecycleParams(on_conflict="skip", num_train=10), root=str(project)) == {
            "skipped": True,
            "reason": "another run is in progress",
        }
    finally:
        holder.kill()
        holder.wait()
    assert (project / "params.yaml").read_text() == before  # the refused runs changed nothing
    assert not (project / "data/curated").exists() and not (project / "mlflow.db").exists()
