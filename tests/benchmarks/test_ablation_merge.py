"""benchmarks/ablation_merge.py: runs of two ablations in one paired table, or a clear refusal."""

import json

import pytest

from benchmarks import ablation_merge
from prmflow.evaluation.ablation import ArmRun


def write(folder, arm, seed, correct):
    run = ArmRun(
        arm, seed, [(0, 0.5), (10, sum(correct) / len(correct))], correct=correct, tokens=[10] * len(correct), difficulty=[2] * len(correct)
    )
    (folder / f"{arm}-s{seed}").mkdir(parents=True)
    (folder / f"{arm}-s{seed}" / "result.json").write_text(json.dumps(run.to_dict()))


def test_merged_arms_are_renamed_and_paired_with_the_baseline(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    for seed in (1, 2):
        write(first, "outcome_only", seed, [True, False, False, True])
        write(first, "oracle_step_min", seed, [False, False, False, False])
        write(second, "oracle_step_min", seed, [True, True, False, True])  # the re-run, another weight
    ablation_merge.main([str(first), f"{second}:_w0.1", "--out", str(tmp_path / "m")])
    summary = json.loads((tmp_path / "m.json").read_text())["summary"]
    assert set(summary) == {"outcome_only", "oracle_step_min", "oracle_step_min_w0.1"}
    # paired by seed and problem: 3/4 vs 2/4 on both seeds, -2/4 for the original arm
    assert summary["oracle_step_min_w0.1"]["final_acc_vs_baseline"]["mean"] == pytest.approx(0.25)
    assert summary["oracle_step_min"]["final_acc_vs_baseline"]["mean"] == pytest.approx(-0.5)
    assert "| oracle_step_min_w0.1 | 2 |" in (tmp_path / "m.md").read_text()


def test_runs_on_other_seeds_are_refused(tmp_path):
    write(tmp_path / "a", "outcome_only", 1, [True, False])
    write(tmp_path / "b", "oracle_step_min", 2, [True, True])
    with pytest.raises(SystemExit, match=r"oracle_step_min ran seeds \[2\], outcome_only \[1\]: not paired"):
        ablation_merge.main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "m")])


def test_the_merged_table_is_logged_to_the_projects_mlflow_store_with_a_run_per_arm_and_seed(tmp_path, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # an earlier test's store (mlflow exports the last one set)
    for seed in (1, 2):
        write(tmp_path / "a", "outcome_only", seed, [True, False])
        write(tmp_path / "a", "oracle_step_min", seed, [True, True])
    project = tmp_path / "project"
    project.mkdir()
    ablation_merge.main([str(tmp_path / "a"), "--out", str(tmp_path / "follow.w0.1"), "--mlflow", str(project)])
    assert (tmp_path / "follow.w0.1.json").exists() and (tmp_path / "follow.w0.1.md").exists()  # a dot in the name is kept
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    top = next(r for r in runs if r.info.run_name == "ablate-merge")
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == top.info.run_id]
    assert sorted(r.info.run_name for r in children) == sorted(
        f"ablate-{a}-s{s}" for a in ("outcome_only", "oracle_step_min") for s in (1, 2)
    )
    assert top.data.metrics["oracle_step_min/final_acc"] == 1.0 and top.data.metrics["outcome_only/final_acc"] == 0.5
    assert {a.path for a in client.list_artifacts(top.info.run_id)} == {"follow.w0.1.md", "follow.w0.1.json"}
