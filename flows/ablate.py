"""The ``ablate`` flow: outcome-only vs hybrid rewards, same seeds and budget, several seeds.

Every (arm, seed) run is ``params.yaml`` + the arm's overrides + ``rl.seed``, reproduced through
DVC (curate, warm start, label and PRM are shared and cached; train_policy and evaluate re-run)
and saved as a DVC experiment ``ablate-<arm>-s<seed>``; each has an MLflow run (stages as child
runs) under one ``ablate`` run that holds the comparison table and plot. The gate records its
decision but promotes nothing (``evaluate.promote=false``). ``params.yaml`` is put back at the
end (:mod:`flows.run_params`); the hybrid arms refuse to run with a process weight of 0.
"""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Annotated, Literal

from prefect import flow, get_run_logger
from pydantic import Field

from flows import dvc_cli as dvc
from flows import run_params
from flows.lifecycle import run_stage
from flows.lock import workspace_lock
from prmflow import tracking, workspace
from prmflow.config import load_params
from prmflow.evaluation.ablation import ARMS, BASELINE, ArmRun, markdown, summarize
from tasks import SETUP_STAGES

REPORT_DIR = "reports/ablation"


def read_curve(path: Path) -> list[tuple[int, float]]:
    rows = csv.DictReader(io.StringIO(path.read_text()))
    return [(int(r["step"]), float(r["eval_greedy_acc"])) for r in rows if r.get("eval_greedy_acc")]


def plot(summary: dict, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for arm, row in summary.items():
        xs, ys = zip(*row["curve"]) if row["curve"] else ((), ())
        axes[0].plot(xs, ys, marker="o", label=arm)
    axes[0].set(xlabel="RL step", ylabel="greedy eval accuracy (mean over seeds)", title="Accuracy vs RL step")
    axes[0].legend(fontsize=8)
    arms = list(summary)
    axes[1].bar(arms, [summary[a]["mean_tokens"] for a in arms])
    axes[1].set(ylabel="mean tokens (greedy)", title="Reasoning length")
    axes[1].tick_params(axis="x", labelrotation=20, labelsize=8)
    fig.tight_layout()
    path = out / "ablation.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def check_arms(arms: list[str], cfg) -> None:
    """Refuse arms that cannot mean what their names say (before any work)."""
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise ValueError(f"unknown arm(s) {unknown}; choose from {list(ARMS)}")
    if any(a != BASELINE for a in arms) and cfg.rl.weight("process") <= 0:
        raise ValueError(
            f"the hybrid arms need rl.weights.process > 0, but params.yaml + overrides give {cfg.rl.weight('process')}; "
            "set it with -S rl.weights.process=0.5"
        )


Arm = Literal[tuple(ARMS)]  # type: ignore[valid-type]  (the arms of prmflow.evaluation.ablation.ARMS)


@flow(name="ablate", log_prints=True)
def ablate(
    arms: list[Arm] = list(ARMS),
    seeds: Annotated[list[int], Field(min_length=1)] = [7, 8, 9],
    rl_steps: Annotated[int, Field(ge=1)] | None = None,
    overrides: list[str] = [],
    root: str = ".",
) -> dict:
    """Run every arm with every seed under the same budget and compare them.

    Args:
        arms: reward set-ups to compare; outcome_only is the baseline, the hybrid ones add the PRM
        seeds: RL seeds; every arm runs once with each
        rl_steps: RL steps of every arm (empty: params.yaml's rl.steps)
        overrides: params.yaml keys for every arm, in DVC's -S syntax, e.g. rl.weights.process=0.3
        root: the project folder (set by the deployment)
    """
    from mlflow import MlflowClient

    root_path = Path(root).resolve()
    common = list(overrides) + ([f"rl.steps={rl_steps}"] if rl_steps is not None else []) + ["evaluate.promote=false"]
    check_arms(arms, load_params(root_path / "params.yaml", common))  # fail fast
    with workspace_lock(root_path, "ablate", "fail"), run_params.applied(root_path, common) as rp:
        exp_id = tracking.setup(root_path)
        client = MlflowClient()
        top = client.create_run(exp_id, run_name="ablate", tags=tracking.run_tags())
        status = "FAILED"
        try:
            for s in SETUP_STAGES + ("label", "train_prm"):
                run_stage(s, str(root_path), top.info.run_id)
            runs = [_arm(rp, client, exp_id, top.info.run_id, arm, seed) for seed in seeds for arm in arms]
            result = _report(runs, root_path, client, top.info.run_id)
            status = "FINISHED"
            return result
        finally:
            client.set_terminated(top.info.run_id, status)


def _arm(rp: run_params.RunParams, client, exp_id: str, parent: str, arm: str, seed: int) -> ArmRun:
    """One (arm, seed): train_policy + evaluate with the arm's overrides, a DVC experiment."""
    root, name = rp.root, f"ablate-{arm}-s{seed}"
    rp.reset()
    rp.override(ARMS[arm] + [f"rl.seed={seed}"])
    tags = {**tracking.run_tags(), "mlflow.parentRunId": parent, "prmflow.arm": arm, "prmflow.seed": str(seed)}
    child = client.create_run(exp_id, run_name=name, tags=tags)
    t0, status = time.time(), "FAILED"
    try:
        for s in ("train_policy", "evaluate"):
            run_stage(s, str(root), child.info.run_id)
        report = workspace.read_metrics("evaluate", root)
        run = ArmRun(arm, seed, read_curve(root / "plots/train_policy/learning_curve.csv"), report)
        client.log_metric(child.info.run_id, "final_greedy_acc", report["overall"]["greedy_acc"])
        client.log_metric(child.info.run_id, "mean_tokens", report["overall"]["len_tokens_mean"])
        client.log_metric(child.info.run_id, "wall_time_s", round(time.time() - t0, 1))
        dvc.exp_save(name, root)
        status = "FINISHED"
        return run
    finally:
        client.set_terminated(child.info.run_id, status)


def _report(runs: list[ArmRun], root: Path, client, run_id: str) -> dict:
    from prefect.artifacts import create_markdown_artifact

    summary = summarize(runs)
    out = root / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    md = "## Ablation: outcome-only vs hybrid rewards\n\n" + markdown(summary)
    (out / "ablation.md").write_text(md)
    (out / "ablation.json").write_text(json.dumps({"summary": summary, "runs": [r.__dict__ for r in runs]}, indent=2, default=str))
    png = plot(summary, out)
    client.log_text(run_id, md, "ablation.md")
    client.log_artifact(run_id, str(png))
    create_markdown_artifact(key="ablation", markdown=md, description="outcome-only vs hybrid arms")
    get_run_logger().info("\n%s", md)
    return {"summary": summary, "mlflow_run_id": run_id, "report_dir": str(out)}
