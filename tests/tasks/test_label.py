"""Stage ``label`` end to end on a tiny random policy: outputs, metrics, MLflow."""

from __future__ import annotations

import json

import pytest

from prmflow import workspace as ws
from prmflow.config import Params


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A tiny random policy in models/base and 3 synthetic problems in data/curated."""
    from prmflow.lm.models import build_tiny_model, build_tokenizer
    from prmflow.problems.synthetic import generate_problems

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    params = Params.model_validate(
        {
            "model": {"tiny": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64}},
            "label": {"num_problems": 3, "samples_per_problem": 3, "rollouts": 2, "max_new_tokens": 32, "batch_size": 16},
        }
    )
    tok = build_tokenizer()
    model = build_tiny_model(tok, params.model, seed=0)
    model.save_pretrained(tmp_path / "models/base")
    tok.save_pretrained(tmp_path / "models/base")

    def split(n, seed):
        return [dict(r, id=f"s{seed}-{i}", source="synthetic") for i, r in enumerate(generate_problems(n, seed, 2, 4))]

    ws.save_curated({"train": split(5, 1), "eval": split(2, 2)}, tmp_path / "data/curated")
    return tmp_path, params


def test_label_stage_writes_stepwise_dataset_and_metrics(workspace):
    from tasks.label import run

    tmp_path, params = workspace
    seen = []
    m = run(params, progress=lambda done, total, desc: seen.append((done, total, desc)))

    assert m["num_problems"] == 3 and m["num_solutions"] == 9
    assert m["num_labelled_solutions"] + m["skipped_no_steps"] == 9
    assert m["oracle_solutions"] == m["num_labelled_solutions"]
    assert m["rollout_max_new_tokens"] <= 32 and m["budget.label.max_new_tokens"] == 32
    assert m["sampling.rollouts.tokens_per_s"] > 0
    assert json.loads((tmp_path / "metrics/label.json").read_text()) == m
    assert 0.0 <= m["truncation.rate"] <= 1.0 and "sampling.rollouts.truncation_rate" in m
    assert (tmp_path / "data/labels/samples.md").read_text().startswith("# ")
    assert seen[0][2] == "solutions" and seen[-1][0] == seen[-1][1]

    ds = ws.load_labels("data/labels")
    assert len(ds) == m["num_labelled_solutions"]
    for r in ds:
        n = len(r["completions"])
        assert n >= 1 and len(r["labels"]) == len(r["soft_labels"]) == len(r["oracle_labels"]) == n
        assert r["method"] == "mc_soft" and r["prompt"] == r["question"] + "\n"
    assert sum(ds["rollouts"]) == m["mc_soft.rollouts"]
    lines = (tmp_path / "data/labels/stepwise.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in lines] == [{k: r[k] for k in ("prompt", "completions", "labels")} for r in ds]


def test_label_cli_logs_to_mlflow(workspace, capsys):
    import mlflow

    from tasks import label as stage

    tmp_path, params = workspace
    (tmp_path / "params.yaml").write_text(json.dumps(params.model_dump()))
    stage.main(["--params", "params.yaml"])
    assert "| mc_soft |" in capsys.readouterr().out

    runs = mlflow.search_runs(experiment_names=["prmflow"], output_format="list")
    assert len(runs) == 1 and runs[0].info.run_name == "label"
    metrics = runs[0].data.metrics
    assert "mc_soft/step_agreement" in metrics and "first_error/rollout_ratio_vs_mc" in metrics
    assert runs[0].data.params["rollouts"] == "2"
    client = mlflow.MlflowClient()
    assert {"label_methods.md", "samples.md"} <= {a.path for a in client.list_artifacts(runs[0].info.run_id)}


def test_rollout_temperature_changes_the_rollouts_not_the_solutions(workspace):
    from tasks.label import run

    tmp_path, params = workspace

    def at(t):
        return params.model_copy(update={"label": params.label.model_copy(update={"rollout_temperature": t})})

    default = run(at(None), out_dir=tmp_path / "labels_default")  # None: label.temperature
    m = run(at(0.05), out_dir=tmp_path / "labels_sharp")

    assert default["rollout_temperature"] == 1.0 and m["rollout_temperature"] == 0.05
    a, b = ws.load_labels(tmp_path / "labels_default"), ws.load_labels(tmp_path / "labels_sharp")
    assert a["completions"] == b["completions"]  # the policy's own samples, at label.temperature
    assert default["sampling.solutions.tokens"] == m["sampling.solutions.tokens"]
    assert default["sampling.rollouts.tokens"] != m["sampling.rollouts.tokens"]  # other completions


def test_label_completer_draws_the_rollouts_not_the_solutions(workspace):
    import torch

    from prmflow.lm.models import build_tiny_model, build_tokenizer, count_parameters
    from tasks.label import run

    tmp_path, params = workspace
    other = params.model.model_copy(update={"tiny": params.model.tiny.model_copy(update={"hidden_size": 48, "intermediate_size": 96})})
    tok = build_tokenizer()
    completer = build_tiny_model(tok, other, seed=1)
    with torch.no_grad():  # sharp logits: a random tiny model is near uniform, so with the same
        completer.lm_head.weight.mul_(100.0)  # seed it would draw the policy's very tokens
    completer.save_pretrained(tmp_path / "models/completer")
    tok.save_pretrained(tmp_path / "models/completer")

    # Room for EOS (the random models' rollouts end at different lengths, not all at the cap).
    label = params.label.model_copy(update={"rollout_max_new_tokens": 120})
    own = run(params.model_copy(update={"label": label}), out_dir=tmp_path / "labels_own")
    by = params.model_copy(update={"label": label.model_copy(update={"completer": "models/completer"})})
    m = run(by, out_dir=tmp_path / "labels_by")

    assert own["completer"] == ws.BASE and own["completer_parameters"] == own["policy_parameters"]
    assert m["completer"] == "models/completer" and m["completer_parameters"] == count_parameters(completer) != m["policy_parameters"]
    a, b = ws.load_labels(tmp_path / "labels_own"), ws.load_labels(tmp_path / "labels_by")
    assert a["completions"] == b["completions"]  # the policy's own solutions either way
    assert own["sampling.solutions.tokens"] == m["sampling.solutions.tokens"]
    assert own["sampling.rollouts.tokens"] != m["sampling.rollouts.tokens"]  # another model's completions


@pytest.mark.parametrize(
    ("completer", "says"),
    [
        ("models/nope/x", "label.completer: models/nope/x: no such folder"),
        ("models/nope", "label.completer: models/nope: not a local folder, and not loadable from the Hugging Face Hub"),
        ("data", "label.completer: data: not a Hugging Face model folder (no config.json)"),
    ],
)
def test_a_completer_that_cannot_load_is_one_line_before_any_sampling(workspace, completer, says):
    from tasks import label as stage

    tmp_path, params = workspace
    (tmp_path / "params.yaml").write_text(json.dumps(params.model_dump() | {"label": params.label.model_dump() | {"completer": completer}}))
    with pytest.raises(SystemExit) as e:
        stage.main(["--params", "params.yaml"])
    assert str(e.value).startswith(f"label: {says}")
    assert not (tmp_path / "data/labels").exists() and not (tmp_path / "metrics/label.json").exists()
