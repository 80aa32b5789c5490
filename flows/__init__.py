"""Prefect flows and deployments. They call ``tasks/`` through DVC and never duplicate it."""

import os as _os

for _k, _v in {
    "DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    # The ephemeral API server gets 20 s to start by default; with both cores of a 2-core
    # machine busy (an ablation, a second run) a trivial flow took 18.8-22.2 s to start, and
    # `prmflow run` failed with "Timed out while attempting to connect to ephemeral Prefect API server".
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}.items():
    _os.environ.setdefault(_k, _v)
