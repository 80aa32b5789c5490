"""A run's overrides hold for the run only: params.yaml stays the user's, byte for byte."""

import shutil
from pathlib import Path

import pytest
import yaml

from flows import run_params
from prmflow.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def ws(tmp_path):
    """A workspace with the shipped params.yaml (comments and all) and flow_state.yaml."""
    for f in ("params.yaml", "flow_state.yaml"):
        shutil.copy(ROOT / f, tmp_path / f)
    return tmp_path


def test_overrides_and_state_hold_inside_and_both_files_come_back_byte_for_byte(ws):
    before = {f: (ws / f).read_bytes() for f in ("params.yaml", "flow_state.yaml")}
    with run_params.applied(ws, ["rl.steps=5", "rl.weights.process=0"]) as rp:
        assert rp.params().rl.steps == 5 and rp.params().rl.weight("process") == 0
        rp.set_state(iteration=2, start_policy="models/start")
        assert yaml.safe_load((ws / "flow_state.yaml").read_text())["iteration"] == 2
        rp.override(["rl.seed=9"])
        rp.reset()  # back to the user's params + this run's overrides; default state
        assert rp.params().rl.seed == 7 and rp.params().rl.steps == 5 and rp.state().iteration == 1
    assert {f: (ws / f).read_bytes() for f in before} == before
    assert not (ws / ".prmflow/backup").exists()


def test_files_come_back_when_the_run_fails(ws):
    before = (ws / "params.yaml").read_bytes()
    with pytest.raises(RuntimeError, match="stage failed"):
        with run_params.applied(ws, ["data.path=missing.jsonl", "data.source=gsm8k"]):
            raise RuntimeError("stage failed")
    assert (ws / "params.yaml").read_bytes() == before


def test_a_bad_override_is_refused_before_anything_is_written(ws):
    before = (ws / "params.yaml").read_bytes()
    with pytest.raises(ConfigError, match=r"rl\.steps"):
        with run_params.applied(ws, ["rl.steps=many"]):
            pass
    assert (ws / "params.yaml").read_bytes() == before and not (ws / ".prmflow").exists()


def test_a_killed_runs_leftovers_are_put_back_by_the_next_run(ws):
    before = (ws / "params.yaml").read_bytes()
    run_params._backup(ws)  # a run that made its backup, changed the file, and was killed
    (ws / "params.yaml").write_text("rl: {steps: 1}\n")
    (ws / "flow_state.yaml").write_text("iteration: 3\nstart_policy: models/start\nlabel_history: null\n")
    heard = []
    with run_params.applied(ws, [], on_recover=heard.append) as rp:
        assert rp.params().rl.steps == yaml.safe_load(before)["rl"]["steps"] != 1  # the file as it was
    assert heard == ["restored params.yaml, flow_state.yaml from a run that was stopped before it could (.prmflow/backup)"]
    assert (ws / "params.yaml").read_bytes() == before


def test_prmflow_stage_refused_by_the_lock_changes_nothing(ws, capsys):
    from flows.cli import main
    from tests.flows.test_lock import hold_in_other_process

    before = (ws / "params.yaml").read_bytes()
    holder = hold_in_other_process(ws, hold=60)
    try:
        code = main(["--root", str(ws), "stage", "evaluate", "-S", "evaluate.num_problems=24", "-S", "lifecycle.on_conflict=fail"])
    finally:
        holder.kill()
        holder.wait()
    assert code == 3
    assert "another run is in progress: nightly" in capsys.readouterr().err
    assert (ws / "params.yaml").read_bytes() == before and not (ws / ".prmflow").exists()


def test_process_arms_refuse_a_zero_process_weight():
    from flows.ablate import check_arms

    with pytest.raises(ValueError, match=r"process arms \['hybrid_seq'\] need a process weight > 0"):
        check_arms(["outcome_only", "hybrid_seq", "outcome_length"], 0.0)
    check_arms(["outcome_only", "outcome_length"], 0.0)  # no process term: fine
    check_arms(["hybrid_seq"], 0.5)
    with pytest.raises(ValueError, match="unknown arm"):
        check_arms(["hybrid_typo"], 0.5)


def test_oracle_arms_need_synthetic_data():
    from flows.ablate import arm_params
    from prmflow.config import ConfigError

    real = ["data.source=gsm8k", "data.path=x.jsonl"]
    assert set(arm_params(ROOT, ["outcome_only", "hybrid_seq"], real, 0.5, 0.2)) == {"outcome_only", "hybrid_seq"}
    for arm in ("oracle_step_min", "oracle_needed_step_delta_centred"):
        with pytest.raises(ConfigError, match=rf"arm {arm}: .*rl.process_scorer: oracle\w* scores steps with the synthetic task's oracle"):
            arm_params(ROOT, ["outcome_only", arm], real, 0.5, 0.2)
