"""MLflow tracking: one child run per stage under the lifecycle's parent run.

The tracking store defaults to ``sqlite:///mlflow.db`` in the project root (MLflow's file store
is deprecated); ``MLFLOW_TRACKING_URI`` overrides it. Stages run in DVC subprocesses, so the
parent run id travels in the environment (``PRMFLOW_PARENT_RUN_ID``) and is passed explicitly:
MLflow's active run is thread- and process-local.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path

PARENT_ENV = "PRMFLOW_PARENT_RUN_ID"
EXPERIMENT_ENV = "PRMFLOW_EXPERIMENT"
DEFAULT_EXPERIMENT = "prmflow"
POLICY_MODEL = "prmflow-policy"
PRM_MODEL = "prmflow-prm"


def tracking_uri(root: str | Path | None = None) -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    root = Path(root or os.getcwd()).resolve()
    return f"sqlite:///{root / 'mlflow.db'}"


def setup(root: str | Path | None = None) -> str:
    """Point MLflow at our store and experiment; returns the experiment id."""
    import logging

    import mlflow

    # Alembic prints every migration step of a fresh SQLite store; that is noise for users.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    mlflow.set_tracking_uri(tracking_uri(root))
    exp = mlflow.set_experiment(os.environ.get(EXPERIMENT_ENV, DEFAULT_EXPERIMENT))
    return exp.experiment_id


def git_commit(cwd: str | Path | None = None) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def run_tags(stage: str | None = None) -> dict[str, str]:
    tags = {"prmflow.project": "prmflow"}
    if stage:
        tags["prmflow.stage"] = stage
    commit = git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
        tags["git_commit"] = commit
    for env, tag in (("DVC_EXP_NAME", "dvc.experiment"), ("DVC_EXP_BASELINE_REV", "dvc.baseline_rev")):
        if os.environ.get(env):
            tags[tag] = os.environ[env]
    return tags


def flatten(d: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


@contextlib.contextmanager
def stage_run(stage: str, params_section: dict | None = None) -> Iterator[object]:
    """Start the MLflow run of one stage (a child of ``$PRMFLOW_PARENT_RUN_ID`` when set)."""
    import mlflow

    setup()
    parent = os.environ.get(PARENT_ENV) or None
    with mlflow.start_run(run_name=stage, parent_run_id=parent, tags=run_tags(stage)) as run:
        if params_section:
            mlflow.log_params({k: str(v)[:500] for k, v in flatten(params_section).items()})
        yield run


def metric_dict(nested: dict, prefix: str = "") -> dict[str, float]:
    """Flatten a nested metrics report into MLflow metric names (``pass@4`` -> ``pass_at_4``).

    Non-numeric leaves are skipped; MLflow names allow only ``[A-Za-z0-9_\\-. :/]``.
    """
    out = {}
    for k, v in flatten(nested, prefix).items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        out[k.replace("@", "_at_")] = float(v)
    return out


def _pinned(*packages: str) -> list[str]:
    """``pip_requirements`` pinning the installed versions of ``packages``."""
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in packages]


def _set_aliases(name: str, info, aliases: tuple[str, ...]) -> str:
    """Point each alias at the version ``info`` registered; returns that version."""
    from mlflow import MlflowClient

    version_ = str(info.registered_model_version)
    client = MlflowClient()
    for alias in aliases:
        client.set_registered_model_alias(name, alias, version_)
    return version_


def log_policy_model(model_dir: str | Path, run_id: str, params, name: str = POLICY_MODEL, aliases: tuple[str, ...] = ()) -> str | None:
    """Log the HF model in ``model_dir`` with MLflow's transformers flavor and register it.

    Returns the registered version (a string), or ``None`` when ``PRMFLOW_LOG_MODELS=0``.
    ``pip_requirements`` is explicit (the flavor would otherwise infer torchvision), and so is
    the model card (the flavor would otherwise try to fetch one from the Hub, retrying offline).
    The flavor's path form breaks under transformers 5, so the model is loaded and passed in.
    """
    import mlflow
    from huggingface_hub import ModelCard
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if os.environ.get("PRMFLOW_LOG_MODELS", "1") == "0":
        return None
    reqs = _pinned("torch", "transformers", "tokenizers")
    card = ModelCard(f"# {name}\n\nTrained by prmflow (run {run_id}).\n")
    model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    info = mlflow.transformers.log_model(
        transformers_model={"model": model, "tokenizer": tokenizer},
        name=name.replace("prmflow-", ""),
        task="text-generation",
        pip_requirements=reqs,
        model_card=card,
        registered_model_name=name,
    )
    return _set_aliases(name, info, aliases)


def log_prm_model(model_dir: str | Path, run_id: str, name: str = PRM_MODEL, aliases: tuple[str, ...] = ()) -> str | None:
    """Log the PRM in ``model_dir`` as an MLflow pyfunc model and register it as ``name``.

    The pyfunc takes a DataFrame with ``prompt`` and ``solution`` columns and returns one list
    of step scores per row (:func:`prmflow.prm.scorers.load_scorer`). The PRM is a backbone plus a
    head, not a transformers pipeline, so the transformers flavor does not fit; the model is
    ``prmflow/prm/pyfunc.py`` (MLflow "models from code"), the directory travels as an artifact
    and ``reward/`` as code. ``None`` when ``PRMFLOW_LOG_MODELS=0``.
    """
    if os.environ.get("PRMFLOW_LOG_MODELS", "1") == "0":
        return None
    import mlflow
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    import prmflow
    import reward

    reqs = _pinned("torch", "transformers", "tokenizers", "safetensors")
    signature = ModelSignature(inputs=Schema([ColSpec("string", "prompt"), ColSpec("string", "solution")]))
    with warnings.catch_warnings():
        # An input example would make MLflow load and run the PRM while logging it.
        warnings.filterwarnings("ignore", message=".*input example was not provided.*")
        info = mlflow.pyfunc.log_model(
            name=name.replace("prmflow-", ""),
            python_model=str(Path(prmflow.__file__).parent / "prm" / "pyfunc.py"),
            artifacts={"prm": str(model_dir)},
            code_paths=[str(Path(reward.__file__).parent), str(Path(prmflow.__file__).parent)],
            pip_requirements=reqs,
            signature=signature,
            registered_model_name=name,
        )
    return _set_aliases(name, info, aliases)
