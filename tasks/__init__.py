"""The pipeline's stages, one module per DVC stage: a library call plus its CLI.

Each ``tasks/<stage>.py`` has a ``run(params, ...)`` function (what DVC's ``cmd``, the Prefect
flows and the tests all execute) and a ``main()`` (``python -m tasks.<stage>``). No stage imports
another: stages hand data to each other only through :mod:`prmflow.workspace`.
"""

import prmflow  # noqa: F401  (quiet, local defaults for every stage)

SETUP_STAGES = ("curate", "warmstart")
"""Run once per lifecycle run (DVC skips them when nothing changed)."""
ITERATION_STAGES = ("label", "train_prm", "train_policy", "evaluate")
"""Run once per iteration, from the iteration's start policy."""
STAGES = SETUP_STAGES + ITERATION_STAGES
"""Every stage, in pipeline order: the one list that ``dvc.yaml``, the flows and the CLI follow."""
