"""One benchmark table (``make bench``), printed and logged as an MLflow run.

Usage (from the project root)::

    python benchmarks/run_all.py                      # everything; `dvc repro` first if a stage's metrics are missing
    python benchmarks/run_all.py --only stages,label  # read the metrics files only (seconds)
    python benchmarks/run_all.py --rl-steps 6 --threads 1

Sections (``--only``; each row: value, reference, ratio):

- ``stages``: wall time and peak RSS of every stage of the last lifecycle run, read from
  ``metrics/<stage>.json`` (``wall_time_s``, ``peak_rss_mb``: :func:`prmflow.resources.usage`),
  beside the times issue 10 measured before the speed work (:data:`ISSUE10_S`).
- ``rl``: samples/s of ``train_policy`` vs TRL's ``GRPOTrainer`` on identical work
  (``benchmarks/grpo_vs_trl.py``; needs ``pip install -e .[bench]``), mean completion lengths.
- ``label``: rollouts and agreement per labelling method, from ``metrics/label.json``.
- ``sampler``: tokens/s of the fast sampler vs HF ``generate`` on ``models/base``
  (``benchmarks/sampler.py``).

The run goes to the MLflow experiment ``prmflow-bench`` in the project's store (``mlflow.db``):
every number as a metric (``stages/warmstart/wall_s``, ``rl/ratio``, ...), the table as
``bench.md``, so a regression shows in the UI.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

SECTIONS = ("stages", "rl", "label", "sampler")
EXPERIMENT = "prmflow-bench"
ISSUE10_S = {"curate": 6, "warmstart": 383, "label": 111, "train_prm": 75, "train_policy": 273, "evaluate": 48}
"""Stage wall times (s) issue 10 measured with ``make run`` on a fresh clone (2 cores), before the speed work."""
LABEL_METHODS = ("mc_hard", "mc_soft", "first_error")


@dataclass
class Row:
    """One table row, and the numbers behind it (MLflow metrics, named ``<section>/<key>``)."""

    section: str
    item: str
    value: str
    reference: str = ""
    ratio: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)


def stage_rows(metrics_dir: str | Path) -> list[Row]:
    """Wall time and peak RSS per stage, from ``<metrics_dir>/<stage>.json``, and their total.
    A missing file or key fails naming it."""
    from prmflow.workspace import METRICS
    from tasks import STAGES

    rows, total = [], 0.0
    for stage in STAGES:
        path = Path(metrics_dir) / Path(METRICS[stage]).name
        if not path.exists():
            raise FileNotFoundError(f"{path}: no metrics of stage {stage!r}; run `dvc repro {stage}` (or drop --no-repro)")
        m = json.loads(path.read_text())
        missing = [k for k in ("wall_time_s", "peak_rss_mb") if k not in m]
        if missing:
            raise KeyError(f"{path}: no {', '.join(missing)} (written by prmflow.resources.usage); re-run stage {stage!r}")
        wall, rss = float(m["wall_time_s"]), float(m["peak_rss_mb"])
        total += wall
        ref = ISSUE10_S[stage]
        rows.append(
            Row("stages", stage, f"{wall:.1f} s, {rss:.0f} MB peak RSS", f"{ref} s (issue 10)", ref / wall if wall else None, {"wall_s": wall, "peak_rss_mb": rss})
        )
    ref = sum(ISSUE10_S.values())
    rows.append(Row("stages", "total", f"{total:.1f} s", f"{ref} s (issue 10)", ref / total if total else None, {"wall_s": total}))
    return rows


def label_rows(m: dict) -> list[Row]:
    """Per labelling method in ``metrics/label.json``: rollouts (and per labelled step), agreement
    with the oracle (steps, first-error position) and, for ``first_error``, its rollouts and
    first-error agreement against ``mc_hard`` on the solutions both labelled."""
    rows = []
    for name in LABEL_METHODS:
        if f"{name}.rollouts" not in m:
            continue
        nums = {"rollouts": m[f"{name}.rollouts"], "rollouts_per_step": m[f"{name}.rollouts_per_step"], "solutions": m[f"{name}.solutions"]}
        value = f"{nums['rollouts']:g} rollouts on {nums['solutions']:g} solutions ({nums['rollouts_per_step']:.2f}/step)"
        oracle = {k: m[f"{name}.{k}"] for k in ("step_agreement", "first_error_acc") if f"{name}.{k}" in m}
        nums.update(oracle)
        if oracle:
            value += f"; vs oracle: steps {oracle['step_agreement']:.3f}, first error {oracle['first_error_acc']:.3f}"
        reference, ratio = "", None
        pair = "agree.mc_hard.first_error"
        if name == "first_error" and "first_error.rollout_ratio_vs_mc" in m and f"{pair}.first_error_acc" in m:
            ratio = m["first_error.rollout_ratio_vs_mc"]
            nums.update(rollout_ratio_vs_mc=ratio, first_error_agreement_vs_mc=m[f"{pair}.first_error_acc"])
            reference = f"mc_hard on the same {m[f'{pair}.solutions']:g} solutions: same first error {m[f'{pair}.first_error_acc']:.3f}, rollouts x{ratio:.3f}"
        rows.append(Row("label", name, value, reference, ratio, nums))
    if not rows:
        raise KeyError("metrics/label.json: no <method>.rollouts key; re-run stage 'label'")
    return rows


def rl_rows(res: dict) -> list[Row]:
    """From :func:`grpo_vs_trl.main`'s result: samples/s and mean completion length of each side."""
    ours, trl = res["prmflow"], res["trl"]
    return [
        Row(
            "rl",
            "samples/s (mean completion tokens)",
            f"{ours['samples_per_s']:.1f} ({ours['mean_completion_tokens']:.1f} tok)",
            f"TRL {trl['samples_per_s']:.1f} ({trl['mean_completion_tokens']:.1f} tok)",
            res["ratio"],
            {
                "samples_per_s": ours["samples_per_s"],
                "trl_samples_per_s": trl["samples_per_s"],
                "mean_tokens": ours["mean_completion_tokens"],
                "trl_mean_tokens": trl["mean_completion_tokens"],
                "ratio": res["ratio"],
            },
        )
    ]


def sampler_rows(res: list[dict]) -> list[Row]:
    """From :func:`sampler.main`'s rows: fast sampler tokens/s vs HF ``generate``."""
    return [
        Row(
            "sampler",
            f"{r['shape']} {r['mode']} tokens/s",
            f"{r['fast']:.0f}",
            f"generate {r['generate']:.0f}",
            r.get("speedup"),
            {"fast_tok_s": r["fast"], "generate_tok_s": r["generate"], "speedup": r.get("speedup", 0.0)},
        )
        for r in res
    ]


def table(rows: list[Row]) -> str:
    """The markdown table: section, item, value, reference, ratio (value vs reference, higher is better)."""
    lines = ["| section | item | value | reference | ratio |", "|---|---|---|---|---|"]
    for r in rows:
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else ""
        lines.append(f"| {r.section} | {r.item} | {r.value} | {r.reference} | {ratio} |")
    return "\n".join(lines) + "\n"


def metric_dict(rows: list[Row]) -> dict[str, float]:
    """MLflow metrics ``<section>/<item>/<key>`` (the item before any parenthesis, characters
    other than letters, digits, ``.``, ``-`` as ``_``)."""
    out = {}
    for r in rows:
        item = re.sub(r"[^A-Za-z0-9.\-]+", "_", r.item.split(" (")[0])
        out.update({f"{r.section}/{item}/{k}": float(v) for k, v in r.metrics.items()})
    return out


def log_run(rows: list[Row], text: str, args: argparse.Namespace) -> str:
    """Log the table and its numbers as one run of :data:`EXPERIMENT`; returns the run id."""
    import mlflow

    from prmflow import tracking

    os.environ[tracking.EXPERIMENT_ENV] = EXPERIMENT
    tracking.setup(ROOT)
    with mlflow.start_run(run_name="bench", tags=tracking.run_tags(), description="make bench: " + ", ".join(args.only)) as run:
        mlflow.log_params({"sections": ",".join(args.only), "rl_steps": args.rl_steps, "threads": args.threads})
        mlflow.log_metrics(metric_dict(rows))
        mlflow.log_text(text, "bench.md")
        return run.info.run_id


def repro_if_missing(metrics_dir: Path) -> None:
    """``dvc repro`` (the default lifecycle) when a stage's metrics file is missing."""
    from prmflow.workspace import METRICS

    if all((metrics_dir / Path(p).name).exists() for p in METRICS.values()):
        return
    bin_dir = Path(sys.executable).parent  # the stages' `python -m` must be this environment's
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    dvc = bin_dir / "dvc" if (bin_dir / "dvc").exists() else "dvc"
    print("bench: stage metrics missing: dvc repro", flush=True)
    subprocess.run([str(dvc), "repro"], cwd=ROOT, env=env, check=True)


def main(argv: list[str] | None = None) -> list[Row]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"comma list of {', '.join(SECTIONS)}")
    ap.add_argument("--metrics", default=str(ROOT / "metrics"))
    ap.add_argument("--no-repro", action="store_true", help="fail instead of running `dvc repro` when metrics are missing")
    ap.add_argument("--rl-steps", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the in-process benchmarks (rl, sampler)")
    ap.add_argument("--no-mlflow", action="store_true")
    args = ap.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(args.only) - set(SECTIONS))
    if unknown:
        ap.error(f"--only: unknown section(s) {unknown}; choose from {list(SECTIONS)}")
    metrics_dir = Path(args.metrics)
    if not args.no_repro:
        repro_if_missing(metrics_dir)

    rows: list[Row] = []
    if "stages" in args.only:
        rows += stage_rows(metrics_dir)
    if "rl" in args.only:
        import grpo_vs_trl

        rows += rl_rows(grpo_vs_trl.main(["--steps", str(args.rl_steps), "--threads", str(args.threads)]))
    if "label" in args.only:
        path = metrics_dir / "label.json"
        if not path.exists():
            raise FileNotFoundError(f"{path}: no label metrics; run `dvc repro label`")
        rows += label_rows(json.loads(path.read_text()))
    if "sampler" in args.only:
        import sampler

        argv_s = ["--model", str(ROOT / "models/base"), "--threads", str(args.threads), "--repeats", "1", "--label-sizes", "1024"]
        rows += sampler_rows(sampler.main(argv_s + ["--modes", "sample"]))
    text = table(rows)
    print("\n" + text, end="")
    if not args.no_mlflow:
        print(f"bench: logged to MLflow experiment {EXPERIMENT!r}, run {log_run(rows, text, args)}")
    return rows


if __name__ == "__main__":
    main()
