"""``train_policy`` under ``torchrun`` (2 processes, gloo on CPU): the weights of 1 process with
the same global batch, and resume from a checkpoint still works."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from prmflow import workspace as ws
from prmflow.compute import distributed
from prmflow.config import Params
from tests.tasks.test_train_prm import fake_label_rows

ROOT = Path(__file__).resolve().parents[3]
WORKER = Path(__file__).with_name("ddp_train.py")


def test_ranks_take_whole_shards_that_together_are_all_prompts():
    for ranks, size in ((1, None), (2, None), (2, 1), (2, 2), (4, 1)):
        shards = [s for me in range(ranks) for s in distributed.my_shards(8, size, ranks, me)]
        assert sorted(i for s in shards for i in s) == list(range(8))
        assert len({len(s) for s in shards}) == 1
    with pytest.raises(ValueError, match=r"rl\.prompts_per_step: 3"):
        distributed.my_shards(3, None, 2, 0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(root: Path, procs: int, steps_this_run: int | None = None, stage: str = "train_policy") -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    args = [str(WORKER), stage, str(root)] + ([str(steps_this_run)] if steps_this_run else [])
    if procs > 1:
        args = ["-m", "torch.distributed.run", "--nproc_per_node", str(procs), "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), *args]
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return time.perf_counter() - t0


def _weights(path: Path, file: str = "model.safetensors") -> dict:
    from safetensors.torch import load_file

    return load_file(str(path / file))


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def _workspace(root: Path, **sections) -> None:
    from prmflow.lm.models import build_tiny_model, build_tokenizer
    from prmflow.problems.synthetic import generate_problems

    overrides = {
        "model": {"tiny": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64}, "device": "cpu"},
        "rl": {"steps": 3, "prompts_per_step": 4, "group_size": 2, "max_new_tokens": 48, "eval_every": 0, "checkpoint_every": 1, "weights": {"process": 0.0, "length": 1.0}, "length_budget": 4, "dynamic_sampling": False, "learning_rate": 3e-4, "lr_warmup_steps": 0, "cpu_bf16": False},  # fp32: the gradient math to 1e-6 (bf16 rounds each rank's partial gradient: ~3e-5)
        "compute": {"rl_shard_prompts": 1},
        **sections,
    }
    params = Params.model_validate(overrides)
    tok = build_tokenizer()
    build_tiny_model(tok, params.model, seed=0).save_pretrained(root / "models/base")
    tok.save_pretrained(root / "models/base")
    problems = [dict(r, id=f"s-{i}", source="synthetic") for i, r in enumerate(generate_problems(12, 1, 2, 3))]
    ws.save_curated({"train": problems[:8], "eval": problems[8:]}, root / "data/curated")
    ws.save_labels(fake_label_rows(6), root / "data/labels")
    (root / "params.yaml").write_text(yaml.safe_dump(params.model_dump(), sort_keys=False))


@pytest.mark.slow
def test_two_processes_train_the_weights_of_one_and_resume(tmp_path, capsys):
    runs = {name: tmp_path / name for name in ("one", "two", "two_resumed")}
    for root in runs.values():
        root.mkdir()
        _workspace(root)
    t1 = _launch(runs["one"], 1)
    t2 = _launch(runs["two"], 2)
    _launch(runs["two_resumed"], 2, steps_this_run=2)  # stopped after 2 of 3 steps, checkpointed
    assert not (runs["two_resumed"] / ws.POLICY).exists()
    _launch(runs["two_resumed"], 2)  # resumes at step 2

    base = _weights(runs["one"] / ws.BASE)
    one, two, resumed = (_weights(r / ws.POLICY) for r in runs.values())
    moved, ddp, resume = _max_diff(one, base), _max_diff(one, two), _max_diff(two, resumed)
    with capsys.disabled():
        print(f"\nDDP: wall 1 proc {t1:.1f} s, 2 procs {t2:.1f} s; max |w1 - w2| {ddp:.2e}, resumed {resume:.2e}, moved {moved:.2e}")
    assert moved > 1e-4  # training changed the weights
    assert ddp < 1e-6 and resume < 1e-6  # without the global-batch loss scaling: ~7e-4
    m1, m2 = (yaml.safe_load((r / ws.METRICS["train_policy"]).read_text()) for r in (runs["one"], runs["two"]))
    assert m1["final_reward_sequence"] == pytest.approx(m2["final_reward_sequence"])
    assert torch.tensor(m1["final_train_mean_tokens"]) == pytest.approx(m2["final_train_mean_tokens"])


@pytest.mark.slow
def test_train_prm_on_two_processes_trains_the_head_of_one(tmp_path, capsys):
    from prmflow.prm.model import HEAD_WEIGHTS

    prm = {"max_steps": 4, "batch_size": 4, "best_of_n": 2, "eval_problems": 2, "max_new_tokens": None, "eval_fraction": 0.34}
    runs = {name: tmp_path / name for name in ("one", "two")}
    for root in runs.values():
        root.mkdir()
        _workspace(root, prm=prm)
    t1, t2 = (_launch(root, procs, stage="train_prm") for root, procs in zip(runs.values(), (1, 2)))
    one, two = (_weights(r / ws.PRM, HEAD_WEIGHTS) for r in runs.values())
    diff = _max_diff(one, two)
    with capsys.disabled():
        print(f"\nPRM DDP: wall 1 proc {t1:.1f} s, 2 procs {t2:.1f} s; max |head1 - head2| {diff:.2e}")
    assert diff < 1e-6  # without the global step count (num_items_in_batch): ~2e-5
    assert (runs["two"] / ws.METRICS["train_prm"]).exists()
