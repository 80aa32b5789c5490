"""Throughput of our GRPO trainer against TRL's ``GRPOTrainer``: same policy, reward, group, batch.

    .venv/bin/pip install "trl>=0.20"          # or: pip install -e ".[bench]"
    .venv/bin/dvc repro warmstart              # models/base and data/curated (once)
    .venv/bin/python benchmarks/grpo_vs_trl.py [--steps 10] [--threads 2]

Both train the warm-started policy in ``models/base`` for ``--steps`` RL steps of
``rl.prompts_per_step`` prompts x ``rl.group_size`` completions (params.yaml), at most
``rl.max_new_tokens`` new tokens, temperature ``rl.temperature``, with the outcome reward only
(``reward.outcome.outcome_rewards``), no KL, one optimizer step per batch, AdamW at
``rl.learning_rate``. Prints completions (samples) per second of each and the ratio. Outputs go
to a temporary directory; the workspace is not changed. Model loading is not timed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def ours(params, steps: int, tmp: Path) -> float:
    from tasks.train_policy import run as train_policy

    p = params.model_copy(deep=True)
    p.rl.steps = steps
    p.rl.eval_every = 0
    p.rl.weights = {**p.rl.weights, "process": 0.0}
    p.rl.checkpoint_every = 10**6
    t0 = time.perf_counter()
    train_policy(
        p,
        policy_dir=ROOT / "models/base",
        prm_dir=None,
        curated_dir=ROOT / "data/curated",
        out_dir=tmp / "ours",
        ckpt_dir=tmp / "ours_ckpt",
        metrics_path=tmp / "ours.json",
        plots_dir=tmp / "ours_plots",
    )
    return time.perf_counter() - t0


def trl(params, steps: int, tmp: Path) -> float:
    import datasets
    from trl import GRPOConfig, GRPOTrainer

    from prmflow.lm.models import load_causal_lm, load_tokenizer
    from prmflow.lm.prompts import format_prompt
    from prmflow.workspace import load_curated
    from reward.outcome import outcome_rewards

    rl = params.rl
    train = load_curated(ROOT / "data/curated")["train"]
    n = steps * rl.prompts_per_step
    tok = load_tokenizer(ROOT / "models/base")
    rows = [
        {"prompt": format_prompt(r["question"], params.model, tok), "answer": r["final_answer"]}
        for r in train.select(range(min(n, len(train))))
    ]
    ds = datasets.Dataset.from_list(rows)

    def reward(prompts, completions, answer, **_):
        return outcome_rewards(completions, answer, answer_rules=params.data.answer_rules)

    model = load_causal_lm(ROOT / "models/base", params.model)
    cfg = GRPOConfig(
        output_dir=str(tmp / "trl"),
        per_device_train_batch_size=rl.prompts_per_step * rl.group_size,
        num_generations=rl.group_size,
        max_completion_length=rl.max_new_tokens,
        temperature=rl.temperature,
        learning_rate=rl.learning_rate,
        beta=0.0,
        epsilon=rl.clip_eps_low,
        epsilon_high=rl.clip_eps_high,
        max_grad_norm=rl.max_grad_norm,
        max_steps=steps,
        num_iterations=1,
        gradient_accumulation_steps=1,
        logging_steps=max(1, steps),
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=rl.seed,
        lr_scheduler_type="constant",
        warmup_steps=0,
    )
    trainer = GRPOTrainer(model=model, reward_funcs=reward, args=cfg, train_dataset=ds, processing_class=tok)
    t0 = time.perf_counter()
    trainer.train()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    args = ap.parse_args()
    import torch

    from prmflow.config import load_params

    if args.threads:
        torch.set_num_threads(args.threads)
    if not (ROOT / "models/base/config.json").exists():
        sys.exit("benchmarks/grpo_vs_trl.py: models/base missing; run `.venv/bin/dvc repro warmstart` first")
    params = load_params(args.params)
    samples = args.steps * params.rl.prompts_per_step * params.rl.group_size
    with tempfile.TemporaryDirectory() as d:
        t_trl = trl(params, args.steps, Path(d))
        t_ours = ours(params, args.steps, Path(d))
    print(
        f"\n{args.steps} steps x {params.rl.prompts_per_step} prompts x {params.rl.group_size} completions = {samples} samples, torch threads {torch.get_num_threads()}"
    )
    print(f"TRL GRPOTrainer : {t_trl:7.1f} s  {samples / t_trl:7.1f} samples/s")
    print(f"prmflow         : {t_ours:7.1f} s  {samples / t_ours:7.1f} samples/s")
    print(f"ratio (prmflow / TRL): {t_trl / t_ours:.2f}x")


if __name__ == "__main__":
    main()
