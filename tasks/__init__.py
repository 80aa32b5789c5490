"""Pipeline stages (one module each: a library function plus a thin CLI) and their helpers."""

import os as _os

# Keep everything local and quiet, whoever imports us (DVC stage, Prefect task, test).
for _k, _v in {
    "DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    _os.environ.setdefault(_k, _v)
