"""The ``stage`` flow: reproduce one DVC stage (and its stale upstream stages) from Prefect."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from prefect import flow

from flows import dvc_cli as dvc
from flows.lifecycle import run_stage
from flows.lock import workspace_lock
from prmflow.config import load_params
from tasks import STAGES

StageName = Literal[STAGES]  # type: ignore[valid-type]  (the one list of stages, tasks.STAGES)


@flow(name="stage", log_prints=True)
def stage(name: StageName, overrides: list[str] = [], root: str = ".") -> dict:  # noqa: B006
    """Run one stage through DVC with optional ``-S``-style overrides written to params.yaml."""
    root_path = Path(root).resolve()
    cfg = load_params(root_path / "params.yaml", overrides)  # fail fast
    with workspace_lock(root_path, f"stage {name}", cfg.lifecycle.on_conflict, cfg.lifecycle.lock_timeout_s) as held:
        if not held:
            return {"skipped": True, "reason": "another run is in progress"}
        dvc.set_params(list(overrides), root_path)
        return run_stage(name, str(root_path), None)
