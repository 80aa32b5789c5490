"""Learning, side by side: TRL's ``GRPOTrainer`` and prmflow's ``train_policy`` on the same recipe.

From the same ``models/base`` and train problems, with the same prompts per step, group size,
completion budget, temperature, learning-rate schedule, outcome-only reward and no KL
(:mod:`trl_setup`), each trainer runs ``--steps`` steps per seed; greedy accuracy is measured
every ``--eval-every`` steps on the first 400 eval problems and on 700 freshly drawn ones
(:mod:`evalsets`), with the same sampler and verifier for both.

    python benchmarks/learning_vs_trl.py run --trainer trl --seeds 1 2 3 --set learning_rate=1e-4 --name trl-1e-4
    python benchmarks/learning_vs_trl.py run --trainer prmflow --seeds 1 2 3 --set learning_rate=1e-4 --name ours-1e-4
    python benchmarks/learning_vs_trl.py report --names trl-1e-4 ours-1e-4   # plot, table, MLflow run

Runs append one JSON line each to ``reports/learning_vs_trl/runs.jsonl``; ``report`` draws the
mean curve and the seed spread (min-max) of each named recipe into ``learning_curves.png`` and
logs the table and plot as an MLflow run (``learning_vs_trl``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import evalsets  # noqa: E402
import trl_setup  # noqa: E402

ROOT = trl_setup.ROOT
OUT = ROOT / "reports/learning_vs_trl"


def parse_sets(pairs: list[str]) -> dict:
    """``["learning_rate=1e-4", "warmup_steps=10"]`` -> typed :class:`trl_setup.Recipe` fields."""
    types = {f.name: f.type for f in dataclasses.fields(trl_setup.Recipe)}
    out = {}
    for pair in pairs:
        key, value = pair.split("=", 1)
        if key not in types:
            raise SystemExit(f"unknown recipe field {key!r}; fields: {sorted(types)}")
        out[key] = {"int": int, "float": float, "str": str}[types[key]](value)
    return out


class Evaluator:
    """Greedy accuracy on the eval and fresh sets; time spent here is not training time."""

    def __init__(self, params, curated: str):
        from prmflow.workspace import load_curated

        data = load_curated(curated)
        self.params = params
        self.sets = {"eval": list(data["eval"])[:400], "fresh": evalsets.fresh_problems(700, data, params.data)}

    def __call__(self, model, tokenizer, step: int) -> dict:
        return {"step": step, **{k: evalsets.accuracy(model, tokenizer, v, self.params) for k, v in self.sets.items()}}


def run_prmflow(recipe: trl_setup.Recipe, base: str, curated: str, every: int, evaluate: Evaluator) -> list[dict]:
    """``train_policy`` in chunks of ``every`` steps, resuming from its checkpoint (the resume path
    is tested to equal an uninterrupted run), evaluating between chunks."""
    from prmflow.lm.models import load_causal_lm, load_tokenizer
    from tasks.train_policy import run

    params = evaluate.params
    tok = load_tokenizer(base)
    curve = [evaluate(load_causal_lm(base, params.model), tok, 0)]
    work = Path(tempfile.mkdtemp(prefix="lvt-"))
    try:
        done = 0
        while done < recipe.steps:
            res = run(
                params,
                policy_dir=base,
                prm_dir=None,
                curated_dir=curated,
                out_dir=work / "policy",
                ckpt_dir=work / "ckpt",
                metrics_path=work / "m.json",
                plots_dir=work / "plots",
                max_steps_this_run=every,
            )
            done = res.get("stopped_at", recipe.steps)
            curve.append(evaluate(load_causal_lm(work / "ckpt", params.model), tok, done))
            print(json.dumps(curve[-1]), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return curve


def run_trl(recipe: trl_setup.Recipe, base: str, curated: str, every: int, evaluate: Evaluator) -> list[dict]:
    """TRL's GRPOTrainer with an evaluation callback every ``every`` steps."""
    import torch
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from prmflow.lm.models import load_causal_lm, load_tokenizer
    from prmflow.workspace import load_split

    params = evaluate.params
    tok = load_tokenizer(base)
    model = load_causal_lm(base, params.model)
    curve = [evaluate(model, tok, 0)]

    class Eval(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kw):
            if state.global_step % every == 0 or state.global_step == recipe.steps:
                with torch.no_grad():
                    curve.append(evaluate(model, tok, state.global_step))
                print(json.dumps(curve[-1]), flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        cfg = GRPOConfig(**trl_setup.trl_kwargs(recipe, tmp, use_cpu=not torch.cuda.is_available()))
        data = trl_setup.trl_dataset(load_split("train", None, curated), params, tok)
        GRPOTrainer(
            model=model, reward_funcs=trl_setup.trl_reward(params), args=cfg, train_dataset=data, processing_class=tok, callbacks=[Eval()]
        ).train()
    return curve


def cmd_run(args) -> None:
    import torch

    from prmflow.config import load_params

    torch.set_num_threads(args.threads)
    OUT.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        recipe = trl_setup.Recipe(steps=args.steps, seed=seed, **parse_sets(args.set))
        extra = list(args.ours) if args.trainer == "prmflow" else []
        params = load_params(ROOT / "params.yaml", trl_setup.our_overrides(recipe) + extra)
        evaluate = Evaluator(params, args.curated)
        t0 = time.time()
        runner = run_trl if args.trainer == "trl" else run_prmflow
        curve = runner(recipe, args.base, args.curated, args.eval_every, evaluate)
        row = {
            "name": args.name,
            "trainer": args.trainer,
            "seed": seed,
            "recipe": dataclasses.asdict(recipe),
            "ours": extra,
            "threads": args.threads,
            "wall_s": round(time.time() - t0, 1),
            "curve": curve,
        }
        with open(args.out, "a") as f:
            f.write(json.dumps(row) + "\n")


def load_runs(path: Path, names: list[str]) -> dict[str, list[dict]]:
    runs: dict[str, list[dict]] = {n: [] for n in names}
    for line in path.read_text().splitlines():
        r = json.loads(line)
        if r["name"] in runs:
            runs[r["name"]].append(r)
    return runs


def summary(runs: dict[str, list[dict]], split: str) -> dict[str, list[dict]]:
    """Per name and step: mean, min and max over seeds of ``split`` accuracy."""
    out = {}
    for name, rs in runs.items():
        steps = sorted(set.intersection(*(set(p["step"] for p in r["curve"]) for r in rs))) if rs else []
        rows = []
        for s in steps:
            vals = [next(p[split]["all"] for p in r["curve"] if p["step"] == s) for r in rs]
            rows.append({"step": s, "mean": round(sum(vals) / len(vals), 4), "min": min(vals), "max": max(vals), "seeds": len(vals)})
        out[name] = rows
    return out


def cmd_report(args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mlflow

    from prmflow import tracking

    runs = load_runs(Path(args.out), args.names)
    tables = {split: summary(runs, split) for split in ("eval", "fresh")}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, split in zip(axes, ("eval", "fresh")):
        for name, rows in tables[split].items():
            xs = [r["step"] for r in rows]
            ax.plot(xs, [r["mean"] for r in rows], marker="o", label=f"{name} ({rows[0]['seeds'] if rows else 0} seeds)")
            ax.fill_between(xs, [r["min"] for r in rows], [r["max"] for r in rows], alpha=0.2)
        ax.set(xlabel="RL step", title=f"greedy accuracy, {split} problems", ylabel="accuracy")
        ax.legend(fontsize=8, loc="lower right")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    png = OUT / "learning_curves.png"
    fig.savefig(png, dpi=110)
    (OUT / "summary.json").write_text(json.dumps(tables, indent=2) + "\n")
    lines = ["| recipe | split | " + " | ".join(f"step {r['step']}" for r in next(iter(tables["eval"].values()))) + " |"]
    lines.append("|---" * (len(lines[0].split("|")) - 2) + "|")
    for split, t in tables.items():
        for name, rows in t.items():
            lines.append(f"| {name} | {split} | " + " | ".join(f"{r['mean']:.3f} [{r['min']:.3f}, {r['max']:.3f}]" for r in rows) + " |")
    md = "\n".join(lines) + "\n"
    (OUT / "summary.md").write_text(md)
    print(md)
    tracking.setup(ROOT)
    with mlflow.start_run(run_name="learning_vs_trl", tags=tracking.run_tags()):
        for split, t in tables.items():
            for name, rows in t.items():
                for r in rows:
                    mlflow.log_metric(f"{split}/{name}/mean", r["mean"], step=r["step"])
        mlflow.log_artifact(str(png))
        mlflow.log_text(md, "summary.md")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--trainer", choices=["prmflow", "trl"], required=True)
    r.add_argument("--name", required=True)
    r.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    r.add_argument("--steps", type=int, default=150)
    r.add_argument("--eval-every", type=int, default=25)
    r.add_argument("--set", action="append", default=[], help="recipe field=value (trl_setup.Recipe)")
    r.add_argument("--ours", action="append", default=[], help="extra params.yaml override for train_policy only (e.g. rl.dynamic_sampling=true)")
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--base", default=str(ROOT / "models/base"))
    r.add_argument("--curated", default=str(ROOT / "data/curated"))
    r.add_argument("--out", default=str(OUT / "runs.jsonl"))
    p = sub.add_parser("report")
    p.add_argument("--names", nargs="+", required=True)
    p.add_argument("--out", default=str(OUT / "runs.jsonl"))
    args = ap.parse_args(argv)
    cmd_run(args) if args.cmd == "run" else cmd_report(args)


if __name__ == "__main__":
    main()
