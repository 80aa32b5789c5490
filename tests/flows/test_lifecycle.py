"""End to end: the lifecycle flow on a micro config, with real Prefect, DVC and MLflow (tests/conftest.py: project)."""

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import dvc, stale_stages

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_lifecycle_end_to_end(project, prefect_harness):
    from mlflow import MlflowClient

    from flows.lifecycle import STAGES, LifecycleParams, lifecycle
    from prmflow import tracking

    user_params, state = (project / "params.yaml").read_bytes(), (project / "flow_state.yaml").read_bytes()
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

    # DVC: everything up to date; the run is an experiment with its metrics; every plot draws
    assert stale_stages(project) == {}
    drawn = json.loads(dvc(project, "plots", "show", "--json"))["data"]
    top = [next(iter(p)) for p in yaml.safe_load((project / "dvc.yaml").read_text())["plots"]]
    assert [name for name in top if not drawn.get(name)] == []
    assert result["dvc_experiment"] in dvc(project, "exp", "show", "--no-pager", "--md")

    # a second run changes nothing, and says so: no metrics logged as new, no promotion claimed
    again = lifecycle(LifecycleParams(), root=str(project), experiment_name="second")
    assert all(s["ran"] == [] for s in again["stages"])
    assert again["iterations"][0]["evaluated"] is False and "gate" not in again["iterations"][0]
    assert again["table"][0]["status"].startswith("nothing changed since evaluate run ")
    skipped = client.get_run(again["iterations"][0]["mlflow_run_id"])
    assert skipped.data.tags["prmflow.skipped"] == "nothing changed" and not skipped.data.metrics
    assert again["dvc_experiment"] is None  # nothing ran: no new experiment

    # an override holds for its run only: params.yaml is the user's, byte for byte
    third = lifecycle(LifecycleParams(eval_samples=3), root=str(project), experiment_name="third")
    assert [s["ran"] for s in third["stages"]] == [[], [], [], [], [], ["evaluate"]]
    assert "pass@3" in third["eval"]["overall"]
    assert (project / "params.yaml").read_bytes() == user_params and (project / "flow_state.yaml").read_bytes() == state
    assert not (project / ".prmflow/backup").exists()
    effective = client.list_artifacts(third["mlflow_run_id"], "params")
    assert {a.path for a in effective} == {"params/effective_params.json", "params/overrides.txt"}
    # ... and the run's DVC experiment holds it: applying the experiment reproduces it as is
    dvc(project, "exp", "apply", third["dvc_experiment"])
    assert yaml.safe_load((project / "params.yaml").read_text())["evaluate"]["num_samples"] == 3
    assert stale_stages(project) == {}


@pytest.mark.slow
def test_two_iterations_start_from_the_champion(project, prefect_harness):
    from flows.lifecycle import LifecycleParams, lifecycle

    result = lifecycle(LifecycleParams(iterations=2), root=str(project), experiment_name="iters")
    assert [r["iteration"] for r in result["table"]] == [1, 2]
    ran2 = [s["stage"] for s in result["stages"][len(["curate", "warmstart"]) + 4 :] if s["ran"]]
    assert ran2 == ["label", "train_prm", "train_policy", "evaluate"]  # iteration 2 re-ran every stage
    assert (project / "models/start/config.json").exists()
    assert (project / "data/label_history/iter1/stepwise.jsonl").exists()
    # the flow's state is back to iteration 1 / models/base, so a plain `dvc repro` starts from
    # the base again (it would re-run label onwards), and a plain run runs 1 iteration
    assert yaml.safe_load((project / "flow_state.yaml").read_text()) == {
        "iteration": 1,
        "start_policy": "models/base",
        "label_history": None,
    }
    assert yaml.safe_load((project / "params.yaml").read_text())["lifecycle"]["iterations"] == 1
    shown = dvc(project, "exp", "show", "--no-pager", "--md")
    assert all(it["dvc_experiment"] in shown for it in result["iterations"])
    # iteration 2's experiment holds the state it ran with (its PRM also saw iteration 1's labels)
    dvc(project, "exp", "apply", result["iterations"][1]["dvc_experiment"])
    state = yaml.safe_load((project / "flow_state.yaml").read_text())
    assert state == {"iteration": 2, "start_policy": "models/start", "label_history": "data/label_history"}
    assert stale_stages(project) == {}


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
