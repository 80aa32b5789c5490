"""One stage through DVC (and its stale upstream stages), with overrides, under the workspace lock.

Used by the ``stage`` flow (Prefect) and ``prmflow stage`` (the CLI). The overrides hold only for
the run: ``params.yaml`` is put back afterwards (:mod:`flows.run_params`); the DVC lock file
records what the stage ran with. A refused command changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from prefect import flow

from flows import dvc_cli as dvc
from flows import run_params
from flows.lock import workspace_lock
from prmflow.config import load_params
from tasks import STAGES

StageName = Literal[STAGES]  # type: ignore[valid-type]  (the one list of stages, tasks.STAGES)


def reproduce(
    name: str, overrides: list[str], root: Path, force: bool = False, on_line: Callable[[str], None] | None = None, say=print
) -> dict:
    """``dvc repro <name>`` with ``overrides``, holding the workspace lock; ``{"skipped": ...}``
    when another run holds it and ``lifecycle.on_conflict`` is ``skip``."""
    cfg = load_params(root / "params.yaml", overrides)  # fail fast, before the lock or any write
    with workspace_lock(root, f"stage {name}", cfg.lifecycle.on_conflict, cfg.lifecycle.lock_timeout_s, on_wait=say) as held:
        if not held:
            return {"skipped": True, "reason": "another run is in progress"}
        with run_params.applied(root, overrides, on_recover=say):
            res = dvc.repro(name, root=root, on_line=on_line, force=force)
    return {"stage": name, "ran": res.ran, "up_to_date": res.up_to_date}


@flow(name="stage", log_prints=True)
def stage(name: StageName, overrides: list[str] = [], root: str = ".") -> dict:  # noqa: B006
    """Run one stage through DVC with optional ``-S``-style overrides (for this run only).

    Args:
        name: the DVC stage to reproduce; stale stages before it run first
        overrides: params.yaml keys for this run only, in DVC's -S syntax, e.g. label.method=first_error
        root: the project folder (set by the deployment)
    """
    from prefect import get_run_logger

    logger = get_run_logger()
    return reproduce(name, list(overrides), Path(root).resolve(), on_line=lambda line: logger.info("[%s] %s", name, line), say=logger.info)
