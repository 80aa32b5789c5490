"""Stage ``train_prm``: a micro end-to-end run on a tiny random policy and a few fake labelled rows."""

from __future__ import annotations

import json

import pytest

from prmflow.config import Params
from prmflow.problems.synthetic import generate_problems, oracle_step_labels
from reward.parse import join_solution

TINY = {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64}


def fake_label_rows(n: int) -> list[dict]:
    """Reference solutions (all good) and ones with a wrong result from step 1 on."""
    rows = []
    for i, p in enumerate(generate_problems(n, 11, 2, 4)):
        steps = list(p["steps"])
        bad = steps[:1] + [s.rsplit("=", 1)[0] + "=0" for s in steps[1:]]
        for j, st in enumerate((steps, bad)):
            oracle = oracle_step_labels(p["question"], join_solution(st, "0"))
            soft = [1.0 if ok else 0.0 for ok in oracle]
            soft[0] = 0.625  # a soft label that rounding would change
            rows.append(
                {
                    "id": f"p{i}/{j}",
                    "prompt": p["question"] + "\n",
                    "completions": st,
                    "labels": [s >= 0.5 for s in soft],
                    "soft_labels": soft,
                    "method": "mc_soft",
                    "rollouts": 8,
                    "question": p["question"],
                    "final_answer": p["final_answer"],
                    "difficulty": p["difficulty"],
                    "source": "synthetic",
                    "correct": j == 0,
                    "oracle_labels": oracle,
                }
            )
    return rows


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """models/base (tiny random policy), data/curated (2 eval problems), data/labels (12 rows)."""
    import torch

    from prmflow import workspace as ws
    from prmflow.lm.models import build_tiny_model, build_tokenizer

    torch.set_num_threads(1)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    params = Params.model_validate(
        {
            "model": {"tiny": TINY},
            "prm": {"max_steps": 4, "batch_size": 4, "best_of_n": 2, "eval_problems": 2, "max_new_tokens": None, "eval_fraction": 0.34},
        }
    )
    tok = build_tokenizer()
    model = build_tiny_model(tok, params.model, seed=0)
    model.save_pretrained(tmp_path / "models/base")
    tok.save_pretrained(tmp_path / "models/base")

    def split(n, seed):
        return [dict(r, id=f"s{seed}-{i}", source="synthetic") for i, r in enumerate(generate_problems(n, seed, 2, 4))]

    ws.save_curated({"train": split(3, 1), "eval": split(2, 2)}, tmp_path / "data/curated")
    ws.save_labels(fake_label_rows(6), tmp_path / "data/labels")
    return tmp_path, params


def test_split_by_prompt_keeps_prompts_together():
    from prmflow.prm.training import split_by_prompt

    recs = [{"prompt": p, "i": i} for i, p in enumerate("aabbccdd")]
    train, held = split_by_prompt(recs, 0.25, seed=0)
    assert len(held) == 2 and len(train) == 6
    assert not {r["prompt"] for r in train} & {r["prompt"] for r in held}
    assert split_by_prompt([{"prompt": "a"}], 0.5, 0) == ([{"prompt": "a"}], [])


def assert_counts_add_up(m: dict) -> None:
    """Every record and step read is either used or counted as dropped, with its reason."""
    assert m["records_read"] == m["records"] + m["dropped_no_steps"]
    assert m["records"] == m["train_records"] + m["heldout_records"]
    assert m["heldout_records"] == m["calibration_records"] + m["test_records"]
    assert m["train_records"] == m["train.records_used"] + m["train.dropped_no_step_in_context"]
    assert m["train_steps_labelled"] == m["train.steps_used"] + m["train.steps_truncated"]
    for name in ("prm", "confidence"):  # eval chains: 2 problems x best_of_n 2, step-less ones counted
        assert m[f"{name}.chains.num_samples"] == 4
        assert m[f"{name}.chains.num_scored"] + m[f"{name}.chains.skipped_no_steps"] == 4


def test_stage_counts_dropped_records_and_cut_steps(workspace):
    """A step-less label row is counted, not lost (cut steps: tests/prmflow/prm/test_data.py)."""
    from prmflow import workspace as ws
    from tasks.train_prm import run as train_prm

    tmp_path, params = workspace
    rows = fake_label_rows(6)
    empty = dict(rows[0], id="empty", completions=[], labels=[], soft_labels=[], oracle_labels=[])
    ws.save_labels(rows + [empty], tmp_path / "data/labels")
    params.prm.max_steps = 1
    m = train_prm(params)
    assert m["records_read"] == 13 and m["dropped_no_steps"] == 1 and m["records"] == 12
    assert m["train.steps_truncated"] == 0 and m["train.records_used"] == m["train_records"] == 8  # all fit the context
    assert_counts_add_up(m)


def test_stage_trains_saves_and_reloads(workspace):
    from prmflow.prm.model import PRM_CONFIG
    from prmflow.prm.scorers import PRMScorer
    from tasks.train_prm import run as train_prm

    tmp_path, params = workspace
    curve = []
    m = train_prm(params, log_fn=lambda metrics, step: curve.append((step, metrics)))

    assert m["train_steps"] == 4 and m["records"] == 12 and m["heldout_records"] == 4
    assert m["calibration_records"] == m["test_records"] == 2  # one held-out prompt each
    assert m["prm.threshold_rule"] == "best first-error F1 on 2 calibration records"
    assert_counts_add_up(m)
    assert curve and all("train/loss" in x for _, x in curve)
    for name in ("prm", "confidence"):
        assert 0 < m[f"{name}.threshold"] < 1
        assert 0 <= m[f"{name}.test_oracle.step_auc"] <= 1
        assert 0 <= m[f"{name}.best_of_2.prm_min"] <= 1
    assert "prm.chains.first_error_f1" in m or "prm.chains.step_auc" not in m
    assert {"best_of_2.majority", "best_of_2.random", "best_of_2.oracle"} <= set(m)
    assert json.loads((tmp_path / "metrics/prm.json").read_text()) == m
    assert (tmp_path / "plots/prm/roc_prm.csv").read_text().startswith("fpr,tpr\n0.0000,0.0000\n")
    assert (tmp_path / "plots/prm/calibration.csv").read_text().startswith("score,prm,prm_steps,confidence,confidence_steps\n")
    assert all((tmp_path / "plots/prm" / png).stat().st_size > 5000 for png in ("roc_calibration.png", "best_of_n.png"))
    assert (tmp_path / "plots/prm/best_of_n.csv").read_text().splitlines()[0].startswith("n,prm_min,")

    out = tmp_path / "models/prm"
    assert (out / "config.json").exists() and (out / "prm_head.safetensors").exists()
    cfg = json.loads((out / PRM_CONFIG).read_text())
    assert cfg["kind"] == "learned" and cfg["threshold"] == m["prm.threshold"] and cfg["soft_labels"] is True
    assert not list(tmp_path.glob("models/.prm*"))  # nothing left of the atomic write
    scorer = PRMScorer.from_pretrained(out, device="cpu")
    scores = scorer.score(["a=7;b=a*3;c=b-4;c=?\n"] * 2, ["b=7*3=21\nc=21-4=17\n#### 17", "#### 3"])
    assert len(scores[0]) == 2 and scores[1] == []
    assert all(0.0 <= s <= 1.0 for s in scores[0])

    # the frozen backbone is referenced (path + digest), not copied; a changed one is refused
    from prmflow.lm.folders import model_digest

    assert m["backbone_referenced"] == 1
    assert sorted(f.name for f in out.glob("*.safetensors")) == ["prm_head.safetensors"]
    assert cfg["backbone"] == {"path": "../base", "abs_path": str(tmp_path / "models/base"), "digest": model_digest(tmp_path / "models/base")}
    (tmp_path / "models/base/generation_config.json").write_text("{}")
    with pytest.raises(ValueError, match=r"the frozen backbone .*models/base changed since this PRM was trained .*: re-run train_prm"):
        PRMScorer.from_pretrained(out)


def test_stage_trains_on_external_data_only(workspace):
    from tasks.train_prm import run as train_prm

    tmp_path, params = workspace
    rows = [{k: r[k] for k in ("prompt", "completions", "labels")} for r in fake_label_rows(4)]
    (tmp_path / "extra.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    params.prm.use_own_labels = False
    params.prm.extra_data = str(tmp_path / "extra.jsonl")
    params.prm.soft_labels = False
    m = train_prm(params)
    assert m["records"] == 8 and m["train_steps"] == 4
    assert "prm.test_oracle.step_auc" not in m  # external data has no oracle


def test_bad_external_data_stops_the_stage_naming_the_record(workspace):
    from prmflow.problems.sources import DataError
    from tasks.train_prm import run as train_prm

    tmp_path, params = workspace
    good = {"prompt": "a=1;b=a+1;b=?\n", "completions": ["b=1+1=2"], "labels": [True]}
    bad = {"prompt": "a=1;b=a+1;b=?\n", "completions": ["b=1+1=2"], "labels": [True, False]}
    (tmp_path / "extra.jsonl").write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    params.prm.extra_data = "extra.jsonl"
    with pytest.raises(DataError, match=r"extra\.jsonl:2: field 'labels'"):
        train_prm(params)
    assert not (tmp_path / "models/prm").exists()


def test_cli_logs_metrics_and_registers_the_prm(workspace, monkeypatch, capsys):
    import mlflow

    from tasks import train_prm as stage

    tmp_path, params = workspace
    monkeypatch.setenv("PRMFLOW_LOG_MODELS", "1")
    (tmp_path / "params.yaml").write_text(json.dumps(params.model_dump()))
    stage.main(["--params", "params.yaml", "-S", "prm.max_steps=2"])
    assert "| metric | learned PRM | policy confidence |" in capsys.readouterr().out

    runs = mlflow.search_runs(experiment_names=["prmflow"], output_format="list")
    assert len(runs) == 1 and runs[0].info.run_name == "train_prm"
    assert "prm/test_oracle/step_auc" in runs[0].data.metrics and runs[0].data.params["max_steps"] == "2"
    client = mlflow.MlflowClient()
    versions = client.search_model_versions("name='prmflow-prm'")
    assert len(versions) == 1
    model = mlflow.pyfunc.load_model(f"models:/prmflow-prm/{versions[0].version}")
    import pandas as pd

    out = model.predict(pd.DataFrame({"prompt": ["a=7;b=a*3;b=?\n"], "solution": ["b=7*3=21\n#### 21"]}))
    assert len(out) == 1 and len(out[0]) == 1 and 0.0 <= out[0][0] <= 1.0
