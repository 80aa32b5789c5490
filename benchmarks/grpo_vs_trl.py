"""RL throughput: prmflow's ``train_policy`` vs TRL's ``GRPOTrainer`` on identical work.

Same model (``--base``), train problems, prompts per step, group size, completion budget,
temperature, outcome-only reward, no KL, one update per batch, and on CPU the same precision
(bf16 autocast of the update: TRL's default, ours ``rl.cpu_bf16``; ``--no-bf16``: fp32 on both) and
attention kernel, with TRL's gradient checkpointing off (it recomputes what ours keeps)
(:mod:`trl_setup` translates one recipe for both and a test keeps the translations in step). Both run in this process, one after
the other, on the same device with the same torch threads, and both are timed over the training
loop only: from the end of the first step to the end of the last (:class:`trl_setup.Clock`), so
construction, loading, the first step's lazy set-up and saving are never counted. The mean
completion length of each side is printed beside its samples/s (shorter completions are cheaper:
a speed-up that comes from them is not the trainer's).

    pip install -e .[bench]           # TRL
    python benchmarks/grpo_vs_trl.py --steps 12 --threads 1
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import trl_setup  # noqa: E402

ROOT = trl_setup.ROOT


def run_ours(recipe: trl_setup.Recipe, base: str, curated: str, tmp: Path) -> trl_setup.Clock:
    from prmflow.config import load_params
    from tasks.train_policy import run

    params = load_params(ROOT / "params.yaml", trl_setup.our_overrides(recipe))
    clock = trl_setup.Clock()
    run(
        params,
        policy_dir=base,
        prm_dir=None,
        curated_dir=curated,
        out_dir=tmp / "ours",
        ckpt_dir=tmp / "ours_ckpt",
        metrics_path=tmp / "ours.json",
        plots_dir=tmp / "ours_plots",
        log_fn=lambda row, step: clock.step_end(row.get("train/mean_tokens")),
    )
    return clock


def run_trl(recipe: trl_setup.Recipe, base: str, curated: str, tmp: Path, use_cpu: bool) -> trl_setup.Clock:
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from prmflow.config import load_params
    from prmflow.lm.models import load_causal_lm, load_tokenizer
    from prmflow.workspace import load_split

    params = load_params(ROOT / "params.yaml", trl_setup.our_overrides(recipe))
    clock = trl_setup.Clock()

    class Timer(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "completions/mean_length" in logs:
                clock.step_end(float(logs["completions/mean_length"]))

    tok = load_tokenizer(base)
    model = load_causal_lm(base, params.model)  # on CPU with ours' attention kernel (model.cpu_attention)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=trl_setup.trl_reward(params),
        args=GRPOConfig(**trl_setup.trl_kwargs(recipe, str(tmp / "trl"), use_cpu=use_cpu)),
        train_dataset=trl_setup.trl_dataset(load_split("train", None, curated), params, tok),
        processing_class=tok,
        callbacks=[Timer()],
    )
    trainer.train()
    return clock


def main(argv: list[str] | None = None) -> dict:
    import torch

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True, help="CPU: bf16 autocast on both sides")
    ap.add_argument("--base", default=str(ROOT / "models/base"))
    ap.add_argument("--curated", default=str(ROOT / "data/curated"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    recipe = trl_setup.Recipe(steps=args.steps, bf16=args.bf16)
    with tempfile.TemporaryDirectory() as tmp:
        ours = run_ours(recipe, args.base, args.curated, Path(tmp))
        theirs = run_trl(recipe, args.base, args.curated, Path(tmp), use_cpu=not torch.cuda.is_available())
    per_step = recipe.prompts_per_step * recipe.group_size
    rows = {}
    for name, clock in (("prmflow", ours), ("trl", theirs)):
        s = clock.seconds_per_step()
        rows[name] = {
            "s_per_step": round(s, 3),
            "samples_per_s": round(per_step / s, 1),
            "mean_completion_tokens": round(sum(clock.lengths) / len(clock.lengths), 1),
        }
    rows["ratio"] = round(rows["prmflow"]["samples_per_s"] / rows["trl"]["samples_per_s"], 2)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    precision = ("bf16 autocast" if recipe.bf16 else "fp32") + f", {recipe.attention} attention" if device == "cpu" else "bf16"
    print(
        f"RL throughput, {recipe.prompts_per_step} prompts x {recipe.group_size}, {args.steps} steps, {device} ({precision}), {args.threads} thread(s)"
    )
    for name in ("prmflow", "trl"):
        r = rows[name]
        print(
            f"  {name:8s} {r['samples_per_s']:7.1f} samples/s  ({r['s_per_step']:.3f} s/step, mean completion {r['mean_completion_tokens']:.1f} tokens)"
        )
    print(f"  prmflow / trl: {rows['ratio']:.2f}x")
    print(json.dumps(rows))
    return rows


if __name__ == "__main__":
    main()
