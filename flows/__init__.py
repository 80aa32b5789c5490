"""Prefect flows and deployments. They call ``tasks/`` through DVC and never duplicate it."""

import os as _os

for _k, _v in {
    "DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}.items():
    _os.environ.setdefault(_k, _v)
