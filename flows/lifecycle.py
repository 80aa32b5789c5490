"""The ``lifecycle`` flow: curate -> warmstart -> [label -> train_prm -> train_policy -> evaluate] x N.

Prefect decides when and how (retries, logs, artifacts, UI forms, schedules); DVC decides what is
stale; MLflow records what happened: one ``lifecycle`` run, under it one run per iteration, under
each one run per stage. Heavy libraries (torch, transformers) are never imported here: stages run
in DVC subprocesses.

Params. A run's overrides are applied to ``params.yaml`` and its state (iteration, start
policy, earlier labels) written to ``flow_state.yaml`` only for the time of the run; both are put
back afterwards (:mod:`flows.run_params`). Each iteration that ran anything is saved as a DVC
experiment, which holds the overrides and state it ran with.

Iterations. Iteration 1 starts from the warm-started base. Iteration k+1 starts from iteration
k's champion: the flow snapshots ``models/champion`` to ``models/start`` and sets
``iteration=k+1`` and ``start_policy=models/start`` in ``flow_state.yaml``, so DVC re-runs
label onwards.

Honest reports. An iteration where DVC skipped everything (nothing changed) is reported as such
("nothing changed since <run>"): no metrics are logged as if freshly measured, and no promotion
is claimed.

One run at a time: the whole flow holds the workspace lock (:mod:`flows.lock`); a second run
waits, skips or fails per ``lifecycle.on_conflict``.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from prefect import flow, get_run_logger, task
from pydantic import BaseModel, Field

from flows import dvc_cli as dvc
from flows import run_params
from flows.lock import workspace_lock
from prmflow import tracking, workspace
from prmflow.config import DataSource, OnConflict, Params, load_params, value_at
from prmflow.evaluation import champion
from prmflow.evaluation.tables import ARTIFACT_NOTE, eval_markdown, iteration_row, iterations_markdown, iterations_table
from prmflow.io import atomic_dir
from prmflow.lm.folders import check_model_source
from tasks import ITERATION_STAGES, SETUP_STAGES, STAGES  # noqa: F401  (STAGES: re-exported for callers)

START_SNAPSHOT = workspace.START
LABEL_HISTORY = workspace.LABEL_HISTORY


def keep_labels(root: Path, iteration: int) -> None:
    """Copy this iteration's labels to ``data/label_history/iter<k>`` (atomically, replacing)."""
    import shutil

    src = root / workspace.LABELS
    if src.is_dir():
        with atomic_dir(root / LABEL_HISTORY / f"iter{iteration}") as tmp:
            shutil.copytree(src, tmp, dirs_exist_ok=True)


FORM_KEYS = {
    "model_name_or_path": "model.name_or_path",
    "data_source": "data.source",
    "data_path": "data.path",
    "num_train": "data.num_train",
    "warmstart_steps": "warmstart.max_steps",
    "eval_samples": "evaluate.num_samples",
    "label_method": "label.method",
    "rl_steps": "rl.steps",
    "weight_outcome": "rl.weights.outcome",
    "weight_process": "rl.weights.process",
    "weight_length": "rl.weights.length",
    "process_mode": "rl.process_mode",
    "iterations": "lifecycle.iterations",
    "on_conflict": "lifecycle.on_conflict",
}
"""Each :class:`LifecycleParams` field and the ``params.yaml`` key it sets."""


class LifecycleParams(BaseModel):
    """What a user can set from the Prefect run form or ``prmflow run``.

    A field left empty (``None``) or equal to ``params.yaml`` changes nothing; each other one
    becomes a DVC ``-S`` override for this run (:meth:`to_overrides`), so the run is a DVC
    experiment that ``dvc exp show`` lists and ``dvc exp apply`` + ``dvc repro`` reproduce. The
    served form shows params.yaml's values as defaults (:mod:`flows.serve`).
    """

    model_name_or_path: str | None = Field(
        None,
        title="Model",
        description="Hugging Face model id or local path of the policy (empty: the tiny built-in Llama, unless params.yaml names one)",
    )
    data_source: DataSource | None = Field(None, title="Data source", description="where the problems come from")
    data_path: str | None = Field(None, title="Train file", description="JSONL or parquet file of the gsm8k, jsonl and parquet sources")
    num_train: int | None = Field(None, ge=0, title="Train problems", description="curated train problems")
    warmstart_steps: int | None = Field(None, ge=0, title="Warm-start SFT steps", description="upper bound on the warm start's SFT steps")
    eval_samples: int | None = Field(None, ge=1, le=64, title="Samples per eval problem (k)", description="k of pass@k and maj@k")
    label_method: str | None = Field(None, title="Step labels", description="how steps are labelled for the PRM")
    rl_steps: int | None = Field(None, ge=0, title="RL steps", description="RL steps per iteration")
    weight_outcome: float | None = Field(None, ge=0, title="Reward weight: outcome", description="weight of the answer verifier's reward")
    weight_process: float | None = Field(
        None, ge=0, title="Reward weight: process", description="weight of the PRM's reward (0: the outcome-only baseline)"
    )
    weight_length: float | None = Field(None, ge=0, title="Reward weight: length", description="weight of the overlong penalty")
    process_mode: str | None = Field(
        None, title="Process credit", description="how PRM scores enter the advantages: per solution (sequence) or per step"
    )
    iterations: int | None = Field(None, ge=1, le=20, title="Iterations", description="label -> PRM -> RL -> evaluate rounds")
    on_conflict: OnConflict | None = Field(None, title="If another run is in progress", description="wait for it, skip this run, or fail")
    overrides: list[str] = Field(
        default_factory=list, title="More overrides", description="any params.yaml key for this run, DVC -S syntax: data.max_steps=6"
    )

    def to_overrides(self, current: Params) -> list[str]:
        """``key=value`` for each field that is set and differs from ``current`` (params.yaml),
        then :attr:`overrides`. An untouched form overrides nothing."""
        out = []
        for field, key in FORM_KEYS.items():
            value = getattr(self, field)
            if value is None or value == "" or value == value_at(current, key):
                continue
            out.append(f"{key}={value}")
        return out + list(self.overrides)


_PERCENT = re.compile(r"^\s*(?:([\w /-]+?):\s+)?(\d{1,3})%\|")


@task(retries=1, retry_delay_seconds=5, task_run_name="{stage}")
def run_stage(stage: str, root: str, parent_run_id: str | None, lifecycle: str | None = None) -> dict:
    """Reproduce one DVC stage, streaming its output into the Prefect run log.

    tqdm bars of the stage (sampling, rollouts, training) also drive a Prefect progress
    artifact, so a long labelling run shows how far it is in the UI.
    """
    from prefect.artifacts import create_progress_artifact, update_progress_artifact

    logger = get_run_logger()
    env = {tracking.PARENT_ENV: parent_run_id} if parent_run_id else {}
    if lifecycle:  # the lifecycle run's label: its stage runs are grouped by it
        env[tracking.LIFECYCLE_ENV] = lifecycle
    t0 = time.time()
    progress = {"id": None, "last": -1.0, "t": 0.0}

    def on_line(line: str) -> None:
        m = _PERCENT.match(line)
        if m:
            pct = float(m.group(2))
            now = time.time()
            if progress["id"] is None:
                progress["id"] = create_progress_artifact(
                    progress=pct, key=f"{stage.replace('_', '-')}-progress", description=f"{stage}: {m.group(1) or 'progress'}"
                )
            elif pct != progress["last"] and (now - progress["t"] > 2 or pct == 100):
                update_progress_artifact(progress["id"], pct, description=f"{stage}: {m.group(1) or 'progress'}")
            progress["last"], progress["t"] = pct, now
            if pct not in (0.0, 100.0) and now - progress.get("logged", 0.0) < 10:
                return  # keep the log readable: bar updates at most every 10 s
            progress["logged"] = now
        logger.info("[%s] %s", stage, line)

    result = dvc.repro(stage, root=root, env=env, on_line=on_line)
    seconds = round(time.time() - t0, 1)
    state = "up to date (skipped by DVC)" if result.up_to_date else f"ran {', '.join(result.ran)}"
    logger.info("stage %s: %s in %.1fs", stage, state, seconds)
    return {"stage": stage, "ran": result.ran, "seconds": seconds}


@flow(name="lifecycle", log_prints=True)
def lifecycle(params: LifecycleParams = LifecycleParams(), root: str = ".", experiment_name: str | None = None) -> dict:
    """Run the post-training lifecycle: curate, warm start, then N label/PRM/RL/evaluate rounds.

    Args:
        params: what this run changes; a value equal to params.yaml's changes nothing
        root: the project folder (set by the deployment)
        experiment_name: name of the MLflow run and of the DVC experiments (empty: lifecycle)
    """
    logger = get_run_logger()
    root_path = Path(root).resolve()
    overrides = params.to_overrides(load_params(root_path / "params.yaml"))
    cfg = load_params(root_path / "params.yaml", overrides)  # fail fast on a bad form value
    check_model_source(cfg.model)  # a model folder without a tokenizer fails here, not in a stage
    lock_name = f"lifecycle {experiment_name or ''}".strip()
    with workspace_lock(root_path, lock_name, cfg.lifecycle.on_conflict, cfg.lifecycle.lock_timeout_s, on_wait=logger.info) as held:
        if not held:
            logger.warning("another run is in progress; skipping this one (lifecycle.on_conflict=skip)")
            return {"skipped": True, "reason": "another run is in progress"}
        return _run(params, overrides, root_path, experiment_name)


def _run(params: LifecycleParams, overrides: list[str], root: Path, experiment_name: str | None) -> dict:
    from mlflow import MlflowClient
    from prefect.artifacts import create_table_artifact

    logger = get_run_logger()
    with run_params.applied(root, overrides, on_recover=logger.warning) as rp:
        if overrides:
            logger.info("params for this run (params.yaml is put back afterwards): %s", " ".join(overrides))
        cfg = rp.params()
        exp_id = tracking.setup(root)  # first: the client below must talk to this project's store
        client = MlflowClient()
        name = experiment_name or "lifecycle"
        note = (
            f"Lifecycle: curate, warm start, then {cfg.lifecycle.iterations} x (label, train PRM, RL, evaluate + gate); "
            f"overrides: {' '.join(overrides) or 'none'}"
        )
        top = client.create_run(exp_id, run_name=name, tags=tracking.run_tags() | {tracking.NOTE_TAG: note})
        status, t_start, label = "FAILED", time.time(), tracking.lifecycle_label(top)
        try:
            record_params(client, top.info.run_id, overrides, cfg)
            results = [run_stage(s, str(root), top.info.run_id, label) for s in SETUP_STAGES]
            iterations, rows = [], []
            for it in range(1, cfg.lifecycle.iterations + 1):
                res, it_info, row = _iteration(it, rp, cfg, client, exp_id, top.info.run_id, name, label)
                _describe_iteration(client, it_info, rp.state().start_policy)
                results += res
                iterations.append(it_info)
                rows.append(row)
            client.log_text(top.info.run_id, iterations_markdown(rows), "iterations.md")
            client.log_dict(top.info.run_id, rows, "iterations.json")
            create_table_artifact(key="iterations", table=iterations_table(rows), description=ARTIFACT_NOTE)
            client.log_metric(top.info.run_id, "wall_time_s", round(time.time() - t_start, 1))
            status = "FINISHED"
            return {
                "mlflow_run_id": top.info.run_id,
                "mlflow_runs_view": tracking.save_runs_view(exp_id, top.info.run_id, label),
                "stages": results,
                "eval": workspace.read_metrics("evaluate", root),
                "iterations": iterations,
                "table": rows,
                "dvc_experiment": next((i["dvc_experiment"] for i in reversed(iterations) if i["dvc_experiment"]), None),
            }
        finally:
            client.set_terminated(top.info.run_id, status=status)


def record_params(client, run_id: str, overrides: list[str], cfg) -> None:
    """The run's overrides (as params) and its effective params (an artifact) in MLflow."""
    for o in overrides:
        key, value = o.split("=", 1)
        client.log_param(run_id, f"override.{key}", value[:500])
    client.log_dict(run_id, cfg.model_dump(), "params/effective_params.json")
    client.log_text(run_id, "\n".join(overrides) + ("\n" if overrides else ""), "params/overrides.txt")


def _start_iteration(it: int, rp: run_params.RunParams, cfg) -> None:
    """Iteration k+1 starts from iteration k's champion (snapshot in ``models/start``), with the
    labels of iterations 1..k kept for the PRM when ``lifecycle.accumulate_labels``."""
    root = rp.root
    if it == 1:
        rp.set_state(iteration=1, start_policy=workspace.BASE, label_history=None)
        return
    champion.snapshot(champion.current(root / workspace.BASE, root / workspace.CHAMPION), root / START_SNAPSHOT)
    history = None
    if cfg.lifecycle.accumulate_labels:
        keep_labels(root, it - 1)
        history = LABEL_HISTORY
    rp.set_state(iteration=it, start_policy=START_SNAPSHOT, label_history=history)


def _iteration(it: int, rp: run_params.RunParams, cfg, client, exp_id: str, parent: str, name: str, label: str) -> tuple[list, dict, dict]:
    """Label, PRM, RL and evaluation from the iteration's start policy; an MLflow run that
    reports what happened, and a DVC experiment when anything ran."""
    from prefect.artifacts import create_markdown_artifact

    root = rp.root
    _start_iteration(it, rp, cfg)
    tags = {**tracking.run_tags(), "mlflow.parentRunId": parent, "prmflow.iteration": str(it)}
    run = client.create_run(exp_id, run_name=f"{name}/iter{it}", tags=tags)
    status = "FAILED"
    try:
        results = [run_stage(s, str(root), run.info.run_id, label) for s in ITERATION_STAGES]
        evaluated = any("evaluate" in r["ran"] for r in results)
        if evaluated:
            report = workspace.read_metrics("evaluate", root)
            md = eval_markdown(report, cfg.evaluate.num_samples)
            # the names the evaluate stage's run logs them under, so one column shows both
            for key, value in tracking.metric_dict({"overall": report["overall"], "gate": report.get("gate", {})}).items():
                client.log_metric(run.info.run_id, key, value)
            _label_artifact(root, it)
            row = iteration_row(it, root)
        else:  # nothing new was measured or decided: say so, and claim nothing
            since = tracking.last_stage_run("evaluate", exclude_parent=run.info.run_id)
            md = f"## Iteration {it}: nothing changed\n\nEvery stage was up to date; nothing was re-measured or promoted (last evaluation: {since})."
            client.set_tag(run.info.run_id, "prmflow.skipped", "nothing changed")
            row = {"iteration": it, "status": f"nothing changed since {since}"}
        client.log_text(run.info.run_id, md, "eval_summary.md")
        create_markdown_artifact(key=f"evaluation-iter{it}", markdown=md, description=f"Evaluation and gate, iteration {it}")
        exp_name = dvc.exp_save(f"{name}-{parent[:6]}-it{it}", root) if any(r["ran"] for r in results) else None
        if exp_name:
            client.set_tag(run.info.run_id, "dvc.experiment", exp_name)
        status = "FINISHED"
        info = {"iteration": it, "mlflow_run_id": run.info.run_id, "dvc_experiment": exp_name, "evaluated": evaluated}
        if evaluated:
            info["gate"] = report.get("gate")
        return results, info, row
    finally:
        client.set_terminated(run.info.run_id, status=status)


def _describe_iteration(client, info: dict, start_policy: str) -> None:
    """The iteration run's description: where it started, and what the gate decided."""
    gate = info.get("gate")
    if gate:
        verdict = f"gate: {'promoted to champion' if gate['promote'] else 'not promoted'} ({gate['reason']})"
    else:
        verdict = "nothing re-measured (every stage was up to date)" if not info["evaluated"] else "no gate"
    note = f"Iteration {info['iteration']} from {start_policy}: label, train PRM, RL, evaluate; {verdict}"
    client.set_tag(info["mlflow_run_id"], tracking.NOTE_TAG, note)


def _label_artifact(root: Path, it: int) -> None:
    from prefect.artifacts import create_markdown_artifact

    from prmflow.labeling.report import comparison_table

    metrics = workspace.read_metrics("label", root)
    if not metrics:
        return
    create_markdown_artifact(
        key=f"label-quality-iter{it}",
        markdown="## Step labels against the oracle\n\n" + comparison_table(metrics),
        description="Agreement of each labelling method with the oracle, and its cost",
    )
