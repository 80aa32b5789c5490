"""``prmflow serve``: deployments of ``lifecycle``, ``ablate`` and ``stage`` served by this process.

The process registers the deployments with the Prefect API (``PREFECT_API_URL``, e.g. a
``prefect server start`` on 127.0.0.1:4200) and runs their flow runs in this workspace: scheduled
ones (``lifecycle.schedule_cron`` or ``--cron``/``--interval``) and ones triggered from the UI or
with ``prefect deployment run 'lifecycle/retrain' --params '{"params": {"iterations": 2}}'``. Parameters are
validated against the flows' typed signatures (``enforce_parameter_schema``). Each deployment
admits one run at a time (a Prefect concurrency limit: a run that collides is queued when
``lifecycle.on_conflict`` is ``wait``, cancelled when ``skip`` or ``fail``); the workspace lock
(:mod:`flows.lock`) also guards against runs started outside Prefect.
"""

from __future__ import annotations

from pathlib import Path

from flows.ablate import ablate
from flows.lifecycle import lifecycle
from flows.stage import stage
from prmflow.config import load_params


def deployments(root: str | Path = ".", cron: str | None = None, interval: float | None = None):
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

    root = str(Path(root).resolve())
    cfg = load_params(Path(root) / "params.yaml")
    cron = cron or cfg.lifecycle.schedule_cron
    strategy = ConcurrencyLimitStrategy.ENQUEUE if cfg.lifecycle.on_conflict == "wait" else ConcurrencyLimitStrategy.CANCEL_NEW
    one_at_a_time = ConcurrencyLimitConfig(limit=1, collision_strategy=strategy)
    schedule = {"cron": cron} if cron else {"interval": interval} if interval else {}
    return [
        lifecycle.to_deployment(
            name="retrain",
            parameters={"root": root},
            description="Curate new data, label, train the PRM, RL-train and gate; DVC skips what has not changed.",
            tags=["prmflow"],
            concurrency_limit=one_at_a_time,
            enforce_parameter_schema=True,
            **schedule,
        ),
        ablate.to_deployment(
            name="ablation", parameters={"root": root}, tags=["prmflow"], concurrency_limit=one_at_a_time, enforce_parameter_schema=True
        ),
        stage.to_deployment(
            name="single-stage", parameters={"root": root}, tags=["prmflow"], concurrency_limit=one_at_a_time, enforce_parameter_schema=True
        ),
    ]


def serve(root: str | Path = ".", cron: str | None = None, interval: float | None = None) -> None:
    from prefect import serve as prefect_serve

    prefect_serve(*deployments(root, cron, interval))
