"""prmflow's library, in packages named by concern (the stages in ``tasks/`` call it).

- :mod:`prmflow.config`: typed ``params.yaml``, loaded once.
- :mod:`prmflow.workspace`: the on-disk contracts of ``data/``, ``models/`` and ``metrics/``.
- :mod:`prmflow.problems`: problem sources, curation and the synthetic task with its oracle.
- :mod:`prmflow.lm`: models, tokenizers, sampling and supervised fine-tuning.
- :mod:`prmflow.labeling`: automatic step labels from rollouts, and their quality.
- :mod:`prmflow.prm`: the process reward model: encoding, heads, scorers, training, metrics.
- :mod:`prmflow.rl`: the GRPO-family loop: rewards to advantages, losses, checkpoints.
- :mod:`prmflow.evaluation`: accuracy and length metrics, the promotion gate, the champion.
- :mod:`prmflow.tracking`: MLflow runs, metrics and the model registry.

Pure reward math (answers, verifiers, process aggregation, mixing, advantages) lives in the
top-level ``reward/`` package.
"""

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
