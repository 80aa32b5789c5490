import json

import pytest

from prmflow.evaluation import champion
from prmflow.evaluation.champion import apply_gate
from prmflow.evaluation.monitors import monitors, skipped_monitors
from prmflow.evaluation.policy import Evaluation, gate_scores


def fake_model(d, tag):
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"tag": tag}))
    (d / "model.safetensors").write_text(tag)


def test_base_is_champion_until_a_promotion(tmp_path):
    base, cand, champ = tmp_path / "base", tmp_path / "cand", tmp_path / "champ"
    fake_model(base, "base")
    fake_model(cand, "cand")
    assert champion.current(base, champ) == base
    rep = {"gate": {"promote": True, "reason": "gain +0.100 exceeds noise margin 0.050", "champion_path": str(base)}}
    msg = apply_gate(rep, cand, champ, registry=False)
    assert "PROMOTED" in msg
    assert champion.current(base, champ) == champ
    assert (champ / "model.safetensors").read_text() == "cand"
    assert champion.info(champ)["gate"]["reason"].startswith("gain")


def test_a_refused_candidate_moves_nothing(tmp_path):
    base, cand, champ = tmp_path / "base", tmp_path / "cand", tmp_path / "champ"
    fake_model(base, "base")
    fake_model(cand, "cand")
    msg = apply_gate({"gate": {"promote": False, "reason": "candidate not better"}}, cand, champ, registry=False)
    assert "NOT promoted" in msg
    assert not champ.exists()
    assert apply_gate({}, cand, champ, registry=False).startswith("gate: no candidate")


def test_promote_refuses_a_directory_without_a_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model to promote"):
        champion.promote(tmp_path / "nothing", tmp_path / "champ")


def ev(texts, samples, answers):
    probs = [{"question": "q", "final_answer": a, "difficulty": 2} for a in answers]
    return Evaluation(probs, texts, [len(t) for t in texts], samples)


def test_gate_scores_and_step_inflation():
    cand = ev(["a=1\nb=2\nc=3\n#### 3", "a=1\n#### 9"], [["#### 3", "#### 1"], ["#### 2", "#### 2"]], ["3", "2"])
    base = ev(["a=1\n#### 3", "a=1\n#### 2"], [["#### 3"], ["#### 2"]], ["3", "2"])
    # problem 1: greedy right + 1 of 2 samples = 2/3; problem 2: greedy wrong + 2 of 2 = 2/3
    assert gate_scores(cand) == [2 / 3, 2 / 3]
    # candidate greedy steps 3 and 1 (mean 2) vs base 1 and 1
    assert monitors(cand, base) == {"step_inflation": 2.0}


def registry(tmp_path, monkeypatch, with_candidate: bool = True):
    """A real MLflow registry (SQLite) with prmflow-policy v1 (and v2 as @candidate)."""
    import mlflow
    from mlflow import MlflowClient

    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = MlflowClient()
    client.create_registered_model("prmflow-policy")
    for _ in range(2):
        client.create_model_version("prmflow-policy", source=str(tmp_path))
    client.set_registered_model_alias("prmflow-policy", "champion", "1")
    if with_candidate:
        client.set_registered_model_alias("prmflow-policy", "candidate", "2")
    return client


PROMOTE = {"gate": {"promote": True, "reason": "gain +0.100 exceeds noise margin 0.050", "champion_path": "models/base"}}


def test_promotion_moves_files_and_alias_together(tmp_path, monkeypatch):
    client = registry(tmp_path, monkeypatch)
    cand, champ = tmp_path / "cand", tmp_path / "champ"
    fake_model(cand, "cand")
    msg = apply_gate(PROMOTE, cand, champ, registry=True)
    assert msg.endswith("MLflow prmflow-policy@champion -> v2")
    assert str(client.get_model_version_by_alias("prmflow-policy", "champion").version) == "2"
    assert json.loads((champ / "champion.json").read_text())["registry_version"] == "2"


def test_no_candidate_alias_means_no_promotion_at_all(tmp_path, monkeypatch):
    from prmflow.evaluation.champion import PromotionError

    client = registry(tmp_path, monkeypatch, with_candidate=False)
    cand, champ = tmp_path / "cand", tmp_path / "champ"
    fake_model(cand, "cand")
    with pytest.raises(PromotionError, match="no registered prmflow-policy@candidate"):
        apply_gate(PROMOTE, cand, champ, registry=True)
    assert not champ.exists()  # the files did not move either
    assert str(client.get_model_version_by_alias("prmflow-policy", "champion").version) == "1"


def test_a_failed_copy_moves_the_alias_back(tmp_path, monkeypatch):
    import prmflow.evaluation.champion as champion_mod

    client = registry(tmp_path, monkeypatch)
    cand, champ = tmp_path / "cand", tmp_path / "champ"
    fake_model(cand, "cand")

    def disk_full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(champion_mod, "promote", disk_full)
    with pytest.raises(OSError, match="No space left"):
        apply_gate(PROMOTE, cand, champ, registry=True)
    assert str(client.get_model_version_by_alias("prmflow-policy", "champion").version) == "1"
    assert not champ.exists()


def test_prm_monitors_are_skipped_with_a_reason_without_a_prm():
    assert skipped_monitors(None) == {"prm_outcome_disagreement": "no PRM", "prm_high_on_wrong": "no PRM"}
    assert skipped_monitors(object()) == {}
