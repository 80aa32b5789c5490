"""The TRL comparison runs the same recipe on both trainers: the two translations agree."""

import importlib.util
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("trl_setup", ROOT / "benchmarks/trl_setup.py")
trl_setup = importlib.util.module_from_spec(spec)
sys.modules["trl_setup"] = trl_setup
spec.loader.exec_module(trl_setup)

RECIPES = [
    trl_setup.Recipe(),
    trl_setup.Recipe(
        steps=40,
        prompts_per_step=8,
        group_size=4,
        max_new_tokens=48,
        temperature=0.8,
        learning_rate=3e-5,
        lr_schedule="cosine",
        warmup_steps=5,
        clip_eps_high=0.3,
        adam_beta2=0.99,
        seed=3,
        bf16=False,
        attention="sdpa",
    ),
    trl_setup.Recipe(lr_schedule="linear", warmup_steps=10),
]


@pytest.mark.parametrize("r", RECIPES)
def test_both_trainers_get_the_same_recipe(r):
    from prmflow.config import load_params

    t = trl_setup.trl_kwargs(r, "/tmp/x")
    params = load_params(ROOT / "params.yaml", trl_setup.our_overrides(r))
    rl = params.rl
    assert t["per_device_train_batch_size"] == rl.prompts_per_step * rl.group_size and t["num_generations"] == rl.group_size
    assert (t["max_completion_length"], t["temperature"], t["top_p"], t["top_k"]) == (rl.max_new_tokens, rl.temperature, 1.0, 0)
    assert (t["learning_rate"], t["warmup_steps"], t["max_steps"]) == (rl.learning_rate, rl.lr_warmup_steps, rl.steps)
    assert (t["epsilon"], t["epsilon_high"], t["max_grad_norm"]) == (rl.clip_eps_low, rl.clip_eps_high, rl.max_grad_norm)
    assert t["adam_beta2"] == rl.adam_betas[1] and rl.adam_betas[0] == 0.9 and t["weight_decay"] == 0.0
    assert t["beta"] == 0.0 and rl.kl_coef == 0.0 and t["num_iterations"] == rl.updates_per_step == 1
    assert t["loss_type"] == "dapo" and rl.loss_agg == "token_mean" and t["scale_rewards"] == "group" and rl.advantage == "grpo"
    assert rl.weights == {"outcome": 1.0, "process": 0.0, "length": 0.0} and not rl.dynamic_sampling
    assert t["seed"] == rl.seed
    assert t["bf16"] == rl.cpu_bf16 == r.bf16 and params.model.cpu_attention == r.attention  # same precision and kernel on CPU
    assert t["gradient_checkpointing"] is False  # TRL's default recomputes activations: not the same work


@pytest.mark.parametrize("r", RECIPES)
def test_learning_rate_schedules_agree_step_for_step(r):
    import torch
    from transformers import get_scheduler

    from prmflow.config import load_params
    from prmflow.rl.trainer import learning_rate

    rl = load_params(ROOT / "params.yaml", trl_setup.our_overrides(r)).rl
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=r.learning_rate)
    sched = get_scheduler(
        trl_setup.trl_kwargs(r, "/tmp/x")["lr_scheduler_type"], opt, num_warmup_steps=r.warmup_steps, num_training_steps=r.steps
    )
    for step in range(r.steps):
        assert math.isclose(learning_rate(step, rl), opt.param_groups[0]["lr"], rel_tol=1e-9, abs_tol=1e-15), step
        opt.step()
        sched.step()


def test_trl_accepts_the_arguments():
    from trl import GRPOConfig

    cfg = GRPOConfig(**trl_setup.trl_kwargs(trl_setup.Recipe(), "/tmp/trl-cfg-check"))
    assert cfg.num_generations == 8 and cfg.per_device_train_batch_size == 128 and cfg.beta == 0.0
