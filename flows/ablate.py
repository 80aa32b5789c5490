"""The ``ablate`` flow: does step-level supervision beat outcome-only RL, and at what length?

The shared stages (curate, warm start, label, PRM) run through DVC as in the lifecycle (cached
when nothing changed). Then every (arm, seed) runs RL from the warm start and evaluates the
result in a process of its own (:mod:`flows.ablate_arm`, one torch thread), ``parallel`` at a
time through Prefect's thread-pool task runner, into ``reports/ablation/runs/<arm>-s<seed>/``
(outside DVC: arms share the workspace's inputs, not its outputs). Seeds are drawn fresh for
each ablation unless given, so they are never the ones a recipe was tuned on; they are recorded.

The summary (:mod:`prmflow.evaluation.ablation`: per arm, each measure with a 95% interval over
seeds and problems) goes to ``reports/ablation/summary.json``, ``ablation.md`` and
``ablation.png``, and to one MLflow ``ablate`` run with a child run per (arm, seed).
``params.yaml`` is put back at the end (:mod:`flows.run_params`); the process arms refuse to run
with a process weight of 0.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Literal

from prefect import flow, get_run_logger, task
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import Field

from flows import run_params
from flows.lifecycle import run_stage
from flows.lock import workspace_lock
from prmflow import tracking
from prmflow.config import ConfigError, load_params
from prmflow.evaluation.ablation import ARMS, DEFAULT_ARMS, LENGTH_WEIGHT, ArmRun, arm_overrides, markdown, summarize, uses_process
from tasks import SETUP_STAGES

REPORT_DIR = "reports/ablation"


def fresh_seeds(n: int) -> list[int]:
    """``n`` RL seeds drawn from the OS's entropy: never the ones a recipe was tuned on."""
    return random.SystemRandom().sample(range(10_000, 1_000_000), n)


def plot(summary: dict, out: Path) -> Path:
    """Accuracy vs RL step per arm (mean over seeds), and final accuracy, tokens and unneeded
    steps per arm with their 95% intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(17, 4))
    for arm, row in summary.items():
        xs, ys = zip(*row["curve"]) if row["curve"] else ((), ())
        axes[0].plot(xs, ys, marker="o", label=arm)
    axes[0].set(xlabel="RL step", ylabel="greedy accuracy", title="Accuracy vs RL step\n(RL eval subset, mean over seeds)")
    axes[0].legend(fontsize=7)
    arms = list(summary)
    for ax, key, title in zip(
        axes[1:], ("final_acc", "tokens", "unneeded_step_share"), ("Final accuracy", "Tokens (greedy)", "Unneeded steps")
    ):
        vals = [summary[a].get(key) or {} for a in arms]
        means = [v.get("mean") or 0.0 for v in vals]
        err = [
            [m - (v.get("lo") if v.get("lo") is not None else m) for m, v in zip(means, vals)],
            [(v.get("hi") if v.get("hi") is not None else m) - m for m, v in zip(means, vals)],
        ]
        ax.bar(arms, means, yerr=err, capsize=3)
        ax.set(title=f"{title} (95% interval)")
        ax.tick_params(axis="x", labelrotation=30, labelsize=7)
    fig.tight_layout()
    path = out / "ablation.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def check_arms(arms: list[str], process_weight: float) -> None:
    """Refuse arms that cannot mean what their names say (before any work)."""
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise ConfigError(f"unknown arm(s) {unknown}; choose from {list(ARMS)}")
    process = [a for a in arms if uses_process(a)]
    if process and not process_weight > 0:
        raise ConfigError(f"the process arms {process} need a process weight > 0, got process_weight={process_weight}")


def arm_params(root: Path, arms: list[str], common: list[str], process_weight: float, length_weight: float) -> dict:
    """Each arm's params: ``root``'s params.yaml with the common overrides and the arm's own,
    checked (:func:`check_arms`). The common overrides must hold on their own (the shared stages
    run with them), and with each arm's own (an override may clash with an arm: a PRM that
    learns online with the oracle arm's scorer). Raises :class:`~prmflow.config.ConfigError`,
    naming the arm when the clash is the arm's."""
    load_params(Path(root) / "params.yaml", list(common))
    out = {}
    for arm in arms:
        own = arm_overrides(arm, process_weight, length_weight) if arm in ARMS else []
        try:
            out[arm] = load_params(Path(root) / "params.yaml", list(common) + own)
        except ConfigError as e:
            raise ConfigError(f"arm {arm}: {e}") from None
        check_arms([arm], process_weight)
    return out


Arm = Literal[tuple(ARMS)]  # type: ignore[valid-type]  (the arms of prmflow.evaluation.ablation.ARMS)


def at_most(parallel: int, submits: list) -> list:
    """Call each of ``submits`` (a Prefect ``task.submit``), keeping at most ``parallel`` in
    flight; their results in order. The first failure stops the rest (and is raised)."""
    from prefect.futures import as_completed

    results: dict[int, object] = {}
    flying: dict = {}
    todo = list(enumerate(submits))
    while todo or flying:
        while todo and len(flying) < parallel:
            i, submit = todo.pop(0)
            flying[submit()] = i
        done = next(as_completed(list(flying)))
        results[flying.pop(done)] = done.result()
    return [results[i] for i in range(len(submits))]


@task(task_run_name="{name}")
def run_one(
    name: str, root: str, arm: str | None, seed: int, overrides: list[str], out: str, process_weight: float, length_weight: float
) -> dict:
    """One (arm, seed) in its own process (:mod:`flows.ablate_arm`); its output goes to the log."""
    cmd = [
        sys.executable,
        "-m",
        "flows.ablate_arm",
        "--root",
        root,
        "--seed",
        str(seed),
        "--out",
        out,
        "--process-weight",
        str(process_weight),
        "--length-weight",
        str(length_weight),
    ]
    cmd += ["--arm", arm] if arm else ["--start"]
    for o in overrides:
        cmd += ["-S", o]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    log = Path(out) / "run.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"ablation run {name} failed (exit {proc.returncode}); see {log}:\n" + "\n".join(tail))
    return json.loads((Path(out) / "result.json").read_text())


@flow(name="ablate", log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=16))
def ablate(
    arms: list[Arm] = list(DEFAULT_ARMS),
    seeds: list[int] | None = None,
    num_seeds: Annotated[int, Field(ge=1)] = 5,
    rl_steps: Annotated[int, Field(ge=1)] | None = None,
    parallel: Annotated[int, Field(ge=1, le=16)] = 2,
    process_weight: Annotated[float, Field(gt=0, le=10)] = 0.5,
    length_weight: Annotated[float, Field(gt=0, le=10)] = LENGTH_WEIGHT,
    overrides: list[str] = [],
    root: str = ".",
) -> dict:
    """Run every arm with every seed under the same budget and compare them, with intervals.

    Args:
        arms: reward set-ups to compare; outcome_only is the baseline
        seeds: RL seeds (empty: num_seeds drawn fresh, so never the ones a recipe was tuned on)
        num_seeds: how many seeds to draw when none are given
        rl_steps: RL steps of every arm (empty: params.yaml's rl.steps)
        parallel: runs at a time, one torch thread each (about one per CPU core)
        process_weight: rl.weights.process of the arms that train on step scores
        length_weight: weight of the length arms' group length term (rl.weights.length_group or length_group_right)
        overrides: params.yaml keys for every arm, in DVC's -S syntax, e.g. rl.weights.process=0.3
        root: the project folder (set by the deployment)
    """
    from mlflow import MlflowClient

    root_path = Path(root).resolve()
    seeds = list(seeds) if seeds else fresh_seeds(num_seeds)
    common = list(overrides) + ([f"rl.steps={rl_steps}"] if rl_steps is not None else []) + ["evaluate.promote=false"]
    arm_params(root_path, arms, common, process_weight, length_weight)  # fail fast, before any stage
    logger = get_run_logger()
    logger.info("ablation: arms %s, seeds %s, %d at a time", arms, seeds, parallel)
    with workspace_lock(root_path, "ablate", "fail"), run_params.applied(root_path, common):
        exp_id = tracking.setup(root_path)
        client = MlflowClient()
        top = client.create_run(exp_id, run_name="ablate", tags=tracking.run_tags())
        client.log_param(top.info.run_id, "seeds", json.dumps(seeds))
        client.log_param(top.info.run_id, "arms", json.dumps(arms))
        settings = {"overrides": common, "process_weight": process_weight, "length_weight": length_weight}
        for k, v in settings.items():
            client.log_param(top.info.run_id, k, json.dumps(v))
        status = "FAILED"
        try:
            for s in SETUP_STAGES + ("label", "train_prm"):
                run_stage(s, str(root_path), top.info.run_id)
            out = root_path / REPORT_DIR / "runs"
            jobs = [("start", None, seeds[0])] + [(f"{a}-s{s}", a, s) for s in seeds for a in arms]
            results = at_most(
                parallel,
                [
                    lambda j=j: run_one.submit(j[0], str(root_path), j[1], j[2], common, str(out / j[0]), process_weight, length_weight)
                    for j in jobs
                ],
            )
            results = [ArmRun.from_dict(r) for r in results]
            start, runs = results[0], results[1:]
            for r in runs:  # every arm starts from the same warm start
                if "end" in start.prm_auc:
                    r.prm_auc["start"] = start.prm_auc["end"]
                log_arm_run(client, exp_id, top.info.run_id, r)
            result = _report(runs, start, seeds, arms, settings, root_path, client, top.info.run_id)
            status = "FINISHED"
            return result
        finally:
            client.set_terminated(top.info.run_id, status)


def log_arm_run(client, exp_id: str, parent: str, r: ArmRun) -> None:
    """One (arm, seed) run as a child MLflow run of ``parent``: final accuracy, tokens, PRM AUC, learning curve."""
    tags = {**tracking.run_tags(), "mlflow.parentRunId": parent, "prmflow.arm": r.arm, "prmflow.seed": str(r.seed)}
    child = client.create_run(exp_id, run_name=f"ablate-{r.arm}-s{r.seed}", tags=tags)
    metrics = {
        "final_greedy_acc": sum(r.correct) / max(1, len(r.correct)),
        "mean_tokens": sum(r.tokens) / max(1, len(r.tokens)),
        "wall_time_s": r.wall_s,
        **{f"prm_auc_{k}": v for k, v in r.prm_auc.items()},
    }
    for k, v in metrics.items():
        client.log_metric(child.info.run_id, k, float(v))
    for step, acc in r.curve:
        client.log_metric(child.info.run_id, "eval/greedy_acc", acc, step=step)
    client.set_terminated(child.info.run_id, "FINISHED")


def _report(runs: list[ArmRun], start: ArmRun, seeds: list[int], arms: list[str], settings: dict, root: Path, client, run_id: str) -> dict:
    """Write the summary (``reports/ablation``), log it to MLflow and Prefect. ``settings``: the
    overrides every arm ran with and the arms' process and length weights, recorded beside the
    numbers so that a summary says what it measured."""
    from prefect.artifacts import create_markdown_artifact

    summary = summarize(runs)
    out = root / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    start_acc = sum(start.correct) / max(1, len(start.correct))
    md = (
        "## Ablation: outcome-only vs process rewards\n\n"
        f"Seeds {seeds} (drawn for this ablation unless given); warm start: greedy accuracy {start_acc:.3f} on "
        f"{len(start.correct)} eval problems. Overrides of every arm: {', '.join(settings['overrides'])}; process weight "
        f"{settings['process_weight']:g}, length weight {settings['length_weight']:g}. "
        "Cells: mean [95% interval over seeds and problems].\n\n" + markdown(summary)
    )
    (out / "ablation.md").write_text(md)
    doc = {"seeds": seeds, "arms": arms, **settings, "start": {"greedy_acc": start_acc, "prm_auc": start.prm_auc}, "summary": summary}
    (out / "summary.json").write_text(json.dumps(doc, indent=2, default=str))
    png = plot(summary, out)
    client.log_text(run_id, md, "ablation.md")
    client.log_artifact(run_id, str(out / "summary.json"))
    client.log_artifact(run_id, str(png))
    for arm, row in summary.items():
        client.log_metric(run_id, f"{arm}/final_acc", row["final_acc"]["mean"] or 0.0)
    create_markdown_artifact(key="ablation", markdown=md, description="outcome-only vs process-reward arms")
    get_run_logger().info("\n%s", md)
    return {"summary": summary, "seeds": seeds, "mlflow_run_id": run_id, "report_dir": str(out)}
