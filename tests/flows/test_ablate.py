"""The ``ablate`` flow on the micro config: arms side by side, the oracle arm, the summary."""

import json

import pytest


@pytest.mark.slow
def test_ablation_runs_arms_side_by_side_and_reports_intervals(project, prefect_harness):
    from mlflow import MlflowClient

    from flows.ablate import ablate

    before = (project / "params.yaml").read_bytes()
    arms = ["outcome_only", "oracle_step_min"]
    # a micro policy rarely has a group with differing outcomes: train on every group here
    res = ablate(
        arms=arms, num_seeds=2, rl_steps=2, parallel=2, length_weight=0.7, overrides=["rl.dynamic_sampling=false"], root=str(project)
    )

    doc = json.loads((project / "reports/ablation/summary.json").read_text())
    seeds = doc["seeds"]
    assert len(seeds) == 2 and all(s >= 10_000 for s in seeds)  # drawn for this ablation
    assert set(doc["summary"]) == set(arms) and res["seeds"] == seeds
    # the summary says what every arm ran with
    assert doc["overrides"] == ["rl.dynamic_sampling=false", "rl.steps=2", "evaluate.promote=false"]
    assert (doc["process_weight"], doc["length_weight"]) == (0.5, 0.7)
    for arm in arms:
        row = doc["summary"][arm]
        assert row["seeds"] == sorted(seeds)
        final = row["final_acc"]
        assert 0.0 <= final["lo"] <= final["mean"] <= final["hi"] <= 1.0
        assert row["curve"][0][0] == 0 and row["curve"][-1][0] == 2  # learning curve from the start to the end
        result = json.loads((project / f"reports/ablation/runs/{arm}-s{seeds[0]}/result.json").read_text())
        assert len(result["correct"]) == 16 and len(result["unneeded"]) == 16  # every eval problem, judged by the oracle
    # the oracle arm trained on the oracle's step scores: its RL history says so
    oracle_log = json.loads((project / f"reports/ablation/runs/oracle_step_min-s{seeds[0]}/train_policy.json").read_text())
    assert "final_reward_process_step" in oracle_log
    assert "final_acc_vs_baseline" in doc["summary"]["oracle_step_min"]
    assert (project / "reports/ablation/ablation.png").stat().st_size > 0
    md = (project / "reports/ablation/ablation.md").read_text()
    assert "| oracle_step_min | 2 |" in md
    assert (
        "Overrides of every arm: rl.dynamic_sampling=false, rl.steps=2, evaluate.promote=false; process weight 0.5, length weight 0.7" in md
    )

    runs = MlflowClient().search_runs(
        [MlflowClient().get_experiment_by_name("prmflow").experiment_id], filter_string="tags.`prmflow.arm` != ''"
    )
    assert len(runs) == len(arms) * 2
    assert (project / "params.yaml").read_bytes() == before


def test_each_arm_is_checked_on_its_own_settings_before_any_work(project, prefect_harness):
    """A common override that holds alone but clashes with one arm's own settings (a PRM that
    learns online, with the oracle arm's scorer) fails naming that arm, before any stage runs."""
    from flows.ablate import ablate

    with pytest.raises(ValueError, match="arm oracle_step_min: .*prm_online_lr: only the learned PRM learns online"):
        ablate(arms=["outcome_only", "oracle_step_min"], num_seeds=1, rl_steps=1, overrides=["rl.prm_online_lr=0.01"], root=str(project))
    assert not (project / "reports/ablation").exists()


def test_the_cli_checks_each_arm_on_its_own_settings(project, capsys):
    """``prmflow ablate -S``: the common overrides alone (the shared stages run with them), then
    with each arm's own; a refusal names the arm, no traceback."""
    from flows.ablate import arm_params
    from flows.cli import main

    common = ["rl.filter_groups_by=outcome_or_length", "rl.weights.length_group_right=0.5"]
    cfg = arm_params(project, ["outcome_length_right"], common, 0.5, 1.0)["outcome_length_right"]
    assert cfg.rl.weights["length_group_right"] == 1.0 and cfg.rl.filter_groups_by == "outcome_or_length"  # the arm's weight
    assert main(["--root", str(project), "ablate", "--arms", "outcome_length_right", "-S", common[0]]) == 2
    assert "outcome_or_length keeps all-right groups" in capsys.readouterr().err  # the shared stages' settings alone
    argv = ["--root", str(project), "ablate", "--arms", "outcome_only", "oracle_step_min", "-S", "rl.prm_online_lr=0.01"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "prmflow: invalid params:\narm oracle_step_min: " in err and "Traceback" not in err
