"""The same GRPO work for TRL's ``GRPOTrainer`` and prmflow's ``train_policy``: one recipe, two trainers.

Both get the same model (``models/base``), the same train problems and prompts, prompts per step,
group size, completion budget, temperature (top-p 1, no top-k), learning rate and schedule, clip
range, gradient clipping, outcome-only reward (:func:`reward.outcome.outcome_rewards`, the one
verifier), no KL and one update per batch. :func:`trl_kwargs` and :func:`our_overrides` are the
only two places the recipe is translated; ``tests/benchmarks/test_trl_setup.py`` checks they agree
field by field, so the comparison cannot silently drift. Both are timed and evaluated the same
way (:class:`Clock`; :mod:`evalsets` for accuracy).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@dataclass(frozen=True)
class Recipe:
    """One GRPO recipe, in the terms both trainers share."""

    steps: int = 100
    prompts_per_step: int = 16
    group_size: int = 8
    max_new_tokens: int = 80
    temperature: float = 1.0
    learning_rate: float = 1e-4
    lr_schedule: str = "constant"  # constant | linear | cosine (TRL: lr_scheduler_type)
    warmup_steps: int = 0
    clip_eps_low: float = 0.2
    clip_eps_high: float = 0.28
    max_grad_norm: float = 1.0
    adam_beta2: float = 0.999
    seed: int = 7
    bf16: bool = True  # CPU: bf16 autocast of the update (TRL's GRPOConfig default, ours rl.cpu_bf16)
    attention: str = "eager"  # CPU attention kernel of the trained model, on both sides


def trl_kwargs(r: Recipe, out_dir: str, use_cpu: bool = True) -> dict:
    """``GRPOConfig`` arguments for ``r``: no KL, one update per batch, DAPO token-level loss."""
    schedule = {"constant": "constant_with_warmup" if r.warmup_steps else "constant", "linear": "linear", "cosine": "cosine"}[r.lr_schedule]
    return dict(
        output_dir=out_dir,
        per_device_train_batch_size=r.prompts_per_step * r.group_size,  # completions per step
        num_generations=r.group_size,
        max_completion_length=r.max_new_tokens,
        temperature=r.temperature,
        top_p=1.0,
        top_k=0,
        learning_rate=r.learning_rate,
        lr_scheduler_type=schedule,
        warmup_steps=r.warmup_steps,
        adam_beta2=r.adam_beta2,
        beta=0.0,
        epsilon=r.clip_eps_low,
        epsilon_high=r.clip_eps_high,
        loss_type="dapo",  # token mean over the batch: ours is rl.loss_agg=token_mean
        scale_rewards="group",  # GRPO's std normalisation: ours is rl.advantage=grpo
        max_grad_norm=r.max_grad_norm,
        max_steps=r.steps,
        num_iterations=1,
        gradient_accumulation_steps=1,
        weight_decay=0.0,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=use_cpu,
        seed=r.seed,
        bf16=r.bf16,
        gradient_checkpointing=False,  # TRL's default recomputes activations; ours keeps them
        disable_tqdm=True,
    )


def our_overrides(r: Recipe) -> list[str]:
    """``params.yaml`` overrides that make ``train_policy`` run ``r``."""
    return [
        f"rl.steps={r.steps}",
        f"rl.prompts_per_step={r.prompts_per_step}",
        f"rl.group_size={r.group_size}",
        f"rl.max_new_tokens={r.max_new_tokens}",
        f"rl.temperature={r.temperature}",
        f"rl.learning_rate={r.learning_rate}",
        f"rl.lr_schedule={r.lr_schedule}",
        f"rl.lr_warmup_steps={r.warmup_steps}",
        "rl.min_lr_ratio=0.0",  # TRL's linear/cosine decay to 0
        f"rl.clip_eps_low={r.clip_eps_low}",
        f"rl.clip_eps_high={r.clip_eps_high}",
        f"rl.max_grad_norm={r.max_grad_norm}",
        f"rl.adam_betas=[0.9, {r.adam_beta2}]",
        f"rl.seed={r.seed}",
        f"rl.cpu_bf16={str(r.bf16).lower()}",
        f"model.cpu_attention={r.attention}",
        "rl.weights={outcome: 1.0, process: 0.0, length: 0.0}",
        "rl.kl_coef=0.0",
        "rl.updates_per_step=1",
        "rl.loss_agg=token_mean",
        "rl.advantage=grpo",
        "rl.dynamic_sampling=false",
        "rl.eval_every=0",
        "rl.checkpoint_every=1000000",
    ]


@dataclass
class Clock:
    """Per-step wall times of a training loop (after construction, before saving): the time
    from one step's end to the next's, so set-up, evaluation and saving are never counted."""

    ends: list[float] = field(default_factory=list)
    lengths: list[float] = field(default_factory=list)
    paused: float = 0.0

    def step_end(self, mean_tokens: float | None = None) -> None:
        self.ends.append(time.perf_counter() - self.paused)
        if mean_tokens is not None:
            self.lengths.append(mean_tokens)

    def pause(self):
        """A context that does not count (an evaluation inside the loop)."""
        clock = self

        class _Pause:
            def __enter__(self):
                self.t0 = time.perf_counter()

            def __exit__(self, *exc):
                clock.paused += time.perf_counter() - self.t0

        return _Pause()

    def seconds_per_step(self) -> float:
        """Mean over steps 2..n (the first one pays for lazy initialisation in both trainers)."""
        if len(self.ends) < 2:
            return float("nan")
        return (self.ends[-1] - self.ends[0]) / (len(self.ends) - 1)


def trl_dataset(train: list[dict], params, tokenizer):
    """The train problems as TRL's prompt dataset (``answer`` reaches the reward function), in
    the prompt format train_policy uses."""
    import datasets

    from prmflow.lm.prompts import format_prompt

    rows = [{"prompt": format_prompt(p["question"], params.model, tokenizer), "answer": p["final_answer"]} for p in train]
    return datasets.Dataset.from_list(rows)


def trl_reward(params):
    """The outcome reward for TRL, through the same verifier and answer rules train_policy uses."""
    from reward.outcome import outcome_rewards

    rules = params.data.solution_format().answer_rules

    def outcome(prompts, completions, answer, **_) -> list[float]:
        return outcome_rewards(completions, answer, answer_rules=rules)

    return outcome
