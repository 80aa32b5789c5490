"""End to end on a real model and real-format data: a private Qwen2 checkpoint (its own byte-level
BPE, a chat template, saved with save_pretrained; :mod:`tests.real_model`) on GSM8K-format
problems, through the lifecycle flow with real Prefect, DVC and MLflow, warm start off, token
budgets derived from the data. The checkpoint writes steps one per line and "The answer is N."
(never ``#### N``), so right answers are found only through the answer rules, the chat
template and the tokenizer as saved."""

import json
from pathlib import Path

import pytest

from tests.real_model import PROBLEMS, make_checkpoint, write_gsm8k

OVERRIDES = [
    "warmstart.enabled=false",
    "data.num_train=8",
    "data.num_eval=4",
    "data.min_steps=1",
    "label.num_problems=8",
    "label.max_new_tokens=null",
    "evaluate.max_new_tokens=null",
    "prm.max_new_tokens=null",
    "rl.max_new_tokens=null",
    "label.temperature=0.3",  # a checkpoint trained for seconds writes noise at temperature 1
    "rl.temperature=0.5",
    "rl.weights.process=0.5",  # PRM step credit over real text (the default is outcome-only)
    "rl.dynamic_sampling=false",  # every group trains, so every step is scored
    "evaluate.temperature=0.5",
]


@pytest.mark.slow
def test_lifecycle_on_a_private_qwen2_checkpoint_with_gsm8k_problems(project, prefect_harness, tmp_path, monkeypatch):
    import torch
    from mlflow import MlflowClient

    from flows.lifecycle import STAGES, LifecycleParams, lifecycle
    from prmflow import tracking
    from prmflow.lm.models import load_tokenizer

    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the stages' subprocesses: the machine is shared
    # the checkpoint saw all 12 problems (its "pretraining"); train and eval are disjoint splits of them
    ckpt = make_checkpoint(tmp_path / "private-qwen2", PROBLEMS, train_steps=60)
    train, eval_ = write_gsm8k(tmp_path / "gsm8k/train.jsonl", PROBLEMS[:8]), write_gsm8k(tmp_path / "gsm8k/test.jsonl", PROBLEMS[8:])
    params = LifecycleParams(
        model_name_or_path=str(ckpt),
        data_source="gsm8k",
        data_path=str(train),
        overrides=[f"data.eval_path={eval_}", *OVERRIDES],
    )
    result = lifecycle(params, root=str(project), experiment_name="real")
    assert [s["stage"] for s in result["stages"]] == list(STAGES) and all(s["ran"] for s in result["stages"])

    def metrics(stage: str) -> dict:
        return json.loads((project / f"metrics/{stage}.json").read_text())

    warm, label, prm, rl, ev = (metrics(s) for s in ("warmstart", "label", "prm", "train_policy", "eval"))
    # the chat template made the prompts; every budget was derived from the references
    assert warm["chat_template"] == 1 and warm["sft_steps"] == 0
    assert all(warm[f"budget.{s}.max_new_tokens.derived"] == 1 for s in ("label", "rl", "prm", "evaluate"))
    # the tokenizer the stages use is the one saved with the model, not Qwen2Tokenizer's rebuild
    tok = load_tokenizer(project / "models/base")
    assert tok.tokenize(" 48") == ["Ġ48"]

    # label: real text, split into lines, prompts in the chat format; quality without an oracle
    rows = [json.loads(x) for x in (project / "data/labels/stepwise.jsonl").read_text().splitlines()]
    assert rows and all(r["prompt"].startswith("<|im_start|>user\n") and r["prompt"].endswith("<|im_start|>assistant\n") for r in rows)
    assert any("=" in step for r in rows for step in r["completions"])
    assert label["oracle_solutions"] == 0 and "agree.mc_hard.first_error.step_agreement" in label
    assert label["policy_solve_rate"] > 0  # "The answer is N." read by the answer_is rule
    assert 0 <= label["truncation.rate"] <= 1 and "sampling.rollouts.truncation_rate" in label
    assert (project / "data/labels/samples.md").read_text().count("## ") >= 2

    # PRM: the frozen backbone is referenced, not copied
    assert prm["backbone_referenced"] == 1 and prm["budget.prm.max_new_tokens.derived"] == 1
    assert sorted(f.name for f in (project / "models/prm").glob("*.safetensors")) == ["prm_head.safetensors"]
    assert json.loads((project / "models/prm/prm_config.json").read_text())["backbone"]["path"] == "../base"

    # RL and evaluate: truncation reported, per step and by difficulty; right answers found
    assert "final_train_truncated" in rl and rl["total_steps_scored"] == rl["total_steps_credited"]
    assert ev["base"]["overall"]["greedy_acc"] > 0  # the memorised eval problems, read through all of the above
    assert ev["overall"]["n"] == 4 and all("truncated_greedy" in d for d in ev["by_difficulty"].values())

    # MLflow: base and candidate registered once each, the PRM with its backbone's digest
    tracking.setup(project)
    client = MlflowClient()
    assert len(client.search_model_versions(f"name='{tracking.POLICY_MODEL}'")) == 2
    (prm_version,) = client.search_model_versions(f"name='{tracking.PRM_MODEL}'")
    assert prm_version.tags["prmflow.backbone_version"] == f"{tracking.POLICY_MODEL} v1"  # the base holds that content
    assert Path(prm_version.tags["prmflow.backbone_path"]) == (project / "models/base").resolve()
