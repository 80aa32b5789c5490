"""The run forms ``prmflow serve`` gives the deployments: what a person sees and what it sends."""

import json
from pathlib import Path

import yaml

from flows.lifecycle import FORM_KEYS, LifecycleParams
from flows.serve import deployments, lifecycle_form
from prmflow.config import Params, apply_overrides, load_params, read_params_file, value_at
from prmflow.evaluation.ablation import ARMS, DEFAULT_ARMS

ROOT = Path(__file__).resolve().parents[2]


def write_params(folder: Path, *overrides: str) -> Path:
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(apply_overrides(read_params_file(ROOT / "params.yaml"), list(overrides))))
    return path


def fields(form: dict) -> dict:
    return form["definitions"]["LifecycleParams"]["properties"]


def test_the_lifecycle_form_shows_params_yaml_and_hides_root(tmp_path):
    cfg = load_params(write_params(tmp_path, "rl.steps=5", "rl.weights.process=0.25", "label.method=first_error"))
    form = lifecycle_form(cfg)
    assert set(form["properties"]) == {"params", "experiment_name"}  # root: set by the deployment
    f = fields(form)
    assert f["rl_steps"] == {
        "default": 5,
        "description": "RL steps per iteration (params.yaml: rl.steps)",
        "minimum": 0,
        "title": "RL steps",
        "type": "integer",
    }
    assert f["weight_process"]["default"] == 0.25 and f["weight_process"]["type"] == "number"
    assert f["label_method"]["enum"] == ["first_error", "mc_hard", "mc_soft"] and f["label_method"]["default"] == "first_error"
    assert f["process_mode"]["enum"] == ["sequence", "step_sum", "step_min", "step_delta", "step_own"]
    assert f["data_source"]["enum"] == ["synthetic", "gsm8k", "jsonl", "parquet", "hf"]
    assert "default" not in f["model_name_or_path"] and f["model_name_or_path"]["type"] == "string"  # null: an empty box
    text = json.dumps(form)
    assert '"null"' not in text and "anyOf" not in text  # no type toggles anywhere
    assert all(p.get("title") and p.get("description") for p in f.values())
    # the model's default (what the form starts from) is the effective params
    effective = {k: value_at(cfg, key) for k, key in FORM_KEYS.items()}
    assert form["properties"]["params"]["default"] == {k: v for k, v in effective.items() if v is not None} | {"overrides": []}


def test_an_untouched_form_overrides_nothing_and_a_changed_field_overrides_only_itself():
    cfg = Params()
    sent = lifecycle_form(cfg)["properties"]["params"]["default"]
    assert LifecycleParams.model_validate(sent).to_overrides(cfg) == []
    changed = LifecycleParams.model_validate({**sent, "rl_steps": 120, "weight_process": 0.5, "model_name_or_path": ""})
    assert changed.to_overrides(cfg) == ["rl.steps=120", "rl.weights.process=0.5"]
    assert LifecycleParams(iterations=2, overrides=["data.max_steps=6"]).to_overrides(cfg) == ["lifecycle.iterations=2", "data.max_steps=6"]


def test_every_deployment_is_described_and_its_form_typed(tmp_path):
    write_params(tmp_path, "rl.steps=7")
    served = {d.name: d for d in deployments(tmp_path)}
    assert set(served) == {"retrain", "ablation", "single-stage"}
    for d in served.values():
        assert len(d.description) > 40 and d.parameters == {"root": str(tmp_path.resolve())}
        schema = d._parameter_openapi_schema.model_dump(exclude_unset=True)
        assert "root" not in schema["properties"] and "anyOf" not in json.dumps(schema)
        assert all(p.get("description") and p["title"][0].isupper() for p in schema["properties"].values())
    ablation = served["ablation"]._parameter_openapi_schema.properties
    assert ablation["arms"]["items"]["enum"] == list(ARMS) and ablation["arms"]["default"] == DEFAULT_ARMS
    assert ablation["rl_steps"] == {**ablation["rl_steps"], "default": 7, "minimum": 1, "type": "integer"}
    stage = served["single-stage"]._parameter_openapi_schema.model_dump(exclude_unset=True)
    assert stage["required"] == ["name"] and "train_prm" in stage["properties"]["name"]["enum"]


def test_ctrl_c_stops_serve_even_when_what_it_serves_ignores_it(tmp_path):
    """Prefect's runner, with its API gone, swallows KeyboardInterrupt and retries for minutes:
    here a loop that ignores it stands in. Ctrl-C stops the process after the grace period."""
    import signal
    import subprocess
    import sys
    import time

    hang = (
        "import time\nfrom flows.serve import stop_on_signal\n"
        "with stop_on_signal(grace_s=1):\n    while True:\n        try:\n            print('ready', flush=True)\n            time.sleep(10)\n"
        "        except KeyboardInterrupt:\n            pass\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", hang], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "ready\n"
    t0 = time.time()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(10) == 130 and time.time() - t0 < 3
    assert "prmflow serve: stopping (within 1 s; Ctrl-C again to stop now)" in proc.stderr.read()
