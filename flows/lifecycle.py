"""The ``lifecycle`` flow: curate -> warmstart -> evaluate, each stage a DVC stage.

Prefect decides when and how (retries, logs, artifacts, UI forms); DVC decides what is stale;
MLflow records what happened (one parent run per lifecycle run, one child run per stage).
Heavy libraries (torch, transformers) are never imported here: stages run in DVC subprocesses.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from prefect import flow, get_run_logger, task
from pydantic import BaseModel, Field

from flows import dvc

STAGES = ("curate", "warmstart", "evaluate")


class LifecycleParams(BaseModel):
    """What a user can set from the Prefect UI form or ``prmflow run`` (all optional).

    Each set field becomes a DVC ``-S`` override of ``params.yaml``, so the run is a DVC
    experiment that ``dvc exp show`` lists and ``dvc exp apply`` + ``dvc repro`` reproduce.
    """

    model_name_or_path: str | None = Field(None, description="HF model id or local path (empty: tiny default)")
    data_source: str | None = Field(None, description="synthetic | gsm8k | jsonl | parquet | hf")
    data_path: str | None = Field(None, description="train file for file sources")
    num_train: int | None = Field(None, ge=0, description="curated train problems")
    warmstart_steps: int | None = Field(None, ge=0, description="SFT steps of the warm start")
    eval_samples: int | None = Field(None, ge=1, description="k for pass@k / maj@k")
    overrides: list[str] = Field(default_factory=list, description="extra DVC-style overrides, e.g. data.max_steps=6")

    def to_overrides(self) -> list[str]:
        mapping = {
            "model_name_or_path": "model.name_or_path",
            "data_source": "data.source",
            "data_path": "data.path",
            "num_train": "data.num_train",
            "warmstart_steps": "warmstart.max_steps",
            "eval_samples": "evaluate.num_samples",
        }
        out = [f"{key}={getattr(self, f)}" for f, key in mapping.items() if getattr(self, f) is not None]
        return out + list(self.overrides)


@task(retries=1, retry_delay_seconds=5, task_run_name="{stage}")
def run_stage(stage: str, root: str, parent_run_id: str | None) -> dict:
    """Reproduce one DVC stage, streaming its output into the Prefect run log."""
    logger = get_run_logger()
    env = {"PRMFLOW_PARENT_RUN_ID": parent_run_id} if parent_run_id else {}
    t0 = time.time()
    result = dvc.repro(stage, root=root, env=env, on_line=lambda line: logger.info("[%s] %s", stage, line))
    seconds = round(time.time() - t0, 1)
    state = "up to date (skipped by DVC)" if result.up_to_date else f"ran {', '.join(result.ran)}"
    logger.info("stage %s: %s in %.1fs", stage, state, seconds)
    return {"stage": stage, "ran": result.ran, "seconds": seconds}


def _eval_markdown(report: dict, k: int) -> str:
    rows = [f"| difficulty | n | greedy | pass@1 | maj@{k} | pass@{k} | tokens | steps |", "|---|---|---|---|---|---|---|---|"]
    for d, m in list(report["by_difficulty"].items()) + [("**all**", report["overall"])]:
        rows.append(
            f"| {d} | {m['n']} | {m['greedy_acc']:.3f} | {m['pass@1']:.3f} | {m[f'maj@{k}']:.3f} | "
            f"{m[f'pass@{k}']:.3f} | {m['len_tokens_mean']:.1f} | {m['len_steps_mean']:.2f} |"
        )
    return "## Evaluation of the policy\n\n" + "\n".join(rows)


@flow(name="lifecycle", log_prints=True)
def lifecycle(params: LifecycleParams = LifecycleParams(), root: str = ".", experiment_name: str | None = None) -> dict:
    """Run the whole post-training lifecycle once, reproducibly."""
    from prefect.artifacts import create_markdown_artifact

    from tasks import tracking

    logger = get_run_logger()
    root_path = Path(root).resolve()
    overrides = params.to_overrides()
    dvc.set_params(overrides, root_path)
    if overrides:
        logger.info("params.yaml overrides: %s", " ".join(overrides))

    from mlflow import MlflowClient

    exp_id = tracking.setup(root_path)
    client = MlflowClient()
    parent = client.create_run(exp_id, run_name=experiment_name or "lifecycle", tags=tracking.run_tags())
    run_id = parent.info.run_id
    status = "FAILED"
    try:
        for o in overrides:
            key, value = o.split("=", 1)
            client.log_param(run_id, f"override.{key}", value)
        results = [run_stage(stage, str(root_path), run_id) for stage in STAGES]
        report = json.loads((root_path / "metrics/eval.json").read_text())
        k = _num_samples(root_path)
        client.log_text(run_id, _eval_markdown(report, k), "eval_summary.md")
        for key, value in tracking.metric_dict(report["overall"], "eval.").items():
            client.log_metric(run_id, key, value)
        create_markdown_artifact(key="evaluation", markdown=_eval_markdown(report, k), description="Evaluation by difficulty")
        exp_name = dvc.exp_save(experiment_name or f"lifecycle-{run_id[:8]}", root_path)
        if exp_name:
            client.set_tag(run_id, "dvc.experiment", exp_name)
        status = "FINISHED"
        return {"mlflow_run_id": run_id, "stages": results, "eval": report, "dvc_experiment": exp_name}
    finally:
        client.set_terminated(run_id, status=status)


def _num_samples(root: Path) -> int:
    from tasks.config import load_params

    return load_params(root / "params.yaml").evaluate.num_samples
