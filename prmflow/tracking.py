"""MLflow tracking: one child run per stage under the lifecycle's parent run.

The tracking store defaults to ``sqlite:///mlflow.db`` in the project root (MLflow's file store
is deprecated) with artifacts in ``mlartifacts/``; ``MLFLOW_TRACKING_URI`` overrides it (e.g. a
team's tracking server). Stages run in DVC subprocesses, so the parent run id travels in the
environment (``PRMFLOW_PARENT_RUN_ID``) and is passed explicitly: MLflow's active run is thread-
and process-local.

A moved or copied checkout keeps its tracking data: MLflow stores absolute artifact paths, so
:func:`setup` notices when the project's ``mlflow.db`` was written under another folder (the
experiment's ``prmflow.root`` tag) and rewrites those paths to the new one (:func:`relocate`).
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path

from prmflow.io import pid_alive
from prmflow.lm.folders import model_digest

PARENT_ENV = "PRMFLOW_PARENT_RUN_ID"
LIFECYCLE_ENV = "PRMFLOW_LIFECYCLE_RUN"
"""The ``lifecycle`` run a stage runs under (its :func:`lifecycle_label`): stage runs are tagged
with it as ``prmflow.lifecycle_run``, which the runs view of :func:`save_runs_view` groups by."""
EXPERIMENT_ENV = "PRMFLOW_EXPERIMENT"
DEFAULT_EXPERIMENT = "prmflow"
POLICY_MODEL = "prmflow-policy"
PRM_MODEL = "prmflow-prm"

NOTE_TAG = "mlflow.note.content"
"""The description the MLflow UI shows for an experiment, a run (and edits in place)."""
KIND_TAG = "mlflow.experimentKind"
"""MLflow 3's experiment type: ``custom_model_development`` opens the runs table (model
training); without it the UI may guess ``genai_development`` and open the GenAI overview."""
EXPERIMENT_DESCRIPTION = """\
**prmflow**: RL post-training of a language model with process rewards, one reproducible lifecycle.

Each `lifecycle` run has, under it, the runs of its stages: `curate` (problems) -> `warmstart`
(the base policy, SFT) -> per iteration: `label` (automatic step labels) -> `train_prm` (process
reward model) -> `train_policy` (RL with outcome + process + length rewards) -> `evaluate`
(candidate vs champion; the gate promotes it or not). Each iteration also has a run of its own
(`<name>/iter<k>`) with the evaluation and the gate's decision.

Models: `prmflow-policy` (aliases `base`, `candidate`, `champion`) and `prmflow-prm`. Metric
names are `/`-separated (`overall/greedy_acc`, `gate/diff`, `prm/chains/step_auc`).
`prmflow run` prints a link to this experiment's runs in lifecycle order."""


_OURS: str | None = None
"""The URI :func:`setup` last set: ``mlflow.set_tracking_uri`` also exports it as
``MLFLOW_TRACKING_URI`` (for subprocesses), which must not then pass for the user's choice."""


def tracking_uri(root: str | Path | None = None) -> str:
    """``$MLFLOW_TRACKING_URI`` when the user set it, else ``sqlite:///<root>/mlflow.db``."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri and uri != _OURS:
        return uri
    root = Path(root or os.getcwd()).resolve()
    return f"sqlite:///{root / 'mlflow.db'}"


def local_db(uri: str, root: Path) -> Path | None:
    """The project's own SQLite store behind ``uri`` (``None`` for a server or another file)."""
    if not uri.startswith("sqlite:///"):
        return None
    db = Path(uri.removeprefix("sqlite:///"))
    return db if db.parent.resolve() == root else None


def setup(root: str | Path | None = None) -> str:
    """Point MLflow at our store and experiment (created with its artifacts in
    ``<root>/mlartifacts``); relocate a moved project's paths; returns the experiment id."""
    import logging

    import mlflow
    from mlflow import MlflowClient

    # Alembic prints every migration step of a fresh SQLite store; that is noise for users.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    global _OURS
    root = Path(root or os.getcwd()).resolve()
    uri = tracking_uri(root)
    if uri == f"sqlite:///{root / 'mlflow.db'}":
        _OURS = uri  # ours, not the user's: a later setup() for another root must not inherit it
    mlflow.set_tracking_uri(uri)
    name = os.environ.get(EXPERIMENT_ENV, DEFAULT_EXPERIMENT)
    client = MlflowClient()
    exp = client.get_experiment_by_name(name)
    db = local_db(uri, root)
    if exp is None:
        location = str(root / ARTIFACTS_DIR) if db else None
        exp_id = client.create_experiment(name, artifact_location=location, tags={ROOT_TAG: str(root)} if db else None)
        tags: dict = {}
    else:
        exp_id, tags = exp.experiment_id, exp.tags
        old = tags.get(ROOT_TAG)
        if db and old and old != str(root):
            relocate(db, old, str(root))
            client.set_experiment_tag(exp_id, ROOT_TAG, str(root))
    for key, value in ((KIND_TAG, "custom_model_development"), (NOTE_TAG, EXPERIMENT_DESCRIPTION)):
        if key not in tags:  # a kind or description the user chose in the UI stays
            client.set_experiment_tag(exp_id, key, value)
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


ARTIFACTS_DIR = "mlartifacts"
ROOT_TAG = "prmflow.root"
"""Experiment tag: the project folder its artifact paths were written under."""
PATH_COLUMNS = {
    "experiments": ("artifact_location",),
    "runs": ("artifact_uri",),
    "logged_models": ("artifact_location",),
    "model_versions": ("source", "storage_location"),
}
"""Where MLflow's SQLite store keeps absolute artifact paths."""


def relocate(db: Path, old_root: str, new_root: str) -> int:
    """Rewrite artifact paths under ``old_root`` to ``new_root`` in the store ``db``; returns the
    number of values changed. Paths elsewhere (another project, a remote store) are left alone."""
    import sqlite3

    changed = 0
    with contextlib.closing(sqlite3.connect(db)) as con, con:
        tables = {r[0] for r in con.execute("select name from sqlite_master where type = 'table'")}
        for table, columns in PATH_COLUMNS.items():
            if table not in tables:
                continue
            for col in columns:
                for prefix in (old_root, "file://" + old_root):
                    new = ("file://" if prefix.startswith("file://") else "") + new_root
                    cur = con.execute(
                        f"update {table} set {col} = ? || substr({col}, ?) where substr({col}, 1, ?) = ? and "
                        f"(length({col}) = ? or substr({col}, ? + 1, 1) = '/')",
                        (new, len(prefix) + 1, len(prefix), prefix, len(prefix), len(prefix)),
                    )
                    changed += cur.rowcount
    return changed


def git_commit(cwd: str | Path | None = None) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def run_tags(stage: str | None = None) -> dict[str, str]:
    """Tags of every run: project, stage, git commit, DVC experiment, and the process that owns
    it (``prmflow.host``/``prmflow.pid``: a run whose process died is ended by :func:`end_orphans`)."""
    tags = {"prmflow.project": "prmflow", "prmflow.host": socket.gethostname(), "prmflow.pid": str(os.getpid())}
    if stage:
        tags["prmflow.stage"] = stage
    commit = git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
        tags["git_commit"] = commit
    if stage and os.environ.get(LIFECYCLE_ENV):
        tags["prmflow.lifecycle_run"] = os.environ[LIFECYCLE_ENV]
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


def end_orphans(exp_id: str) -> list[str]:
    """Mark FAILED the RUNNING runs whose process on this host is gone (a stage killed by
    SIGKILL, a power cut): they would otherwise show as running forever. Returns their ids."""
    from mlflow import MlflowClient

    client, host = MlflowClient(), socket.gethostname()
    ended = []
    for r in client.search_runs([exp_id], filter_string="attributes.status = 'RUNNING'", max_results=1000):
        tags = r.data.tags
        pid = tags.get("prmflow.pid", "")
        if tags.get("prmflow.host") == host and pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            client.set_tag(r.info.run_id, "prmflow.ended_by", f"end_orphans: process {pid} was gone")
            client.set_terminated(r.info.run_id, "FAILED")
            ended.append(r.info.run_id)
    return ended


def one_line(docstring: str | None) -> str:
    """A module docstring's first line, without reST markup (a run's description).

    >>> one_line("Stage ``curate``: read the problems.\\n\\nMore.")
    'Stage curate: read the problems.'
    """
    return (docstring or "").strip().split("\n", 1)[0].replace("``", "").replace(":mod:", "").strip()


@contextlib.contextmanager
def stage_run(stage: str, params_section: dict | None = None, description: str | None = None) -> Iterator[object]:
    """Start the MLflow run of one stage (a child of ``$PRMFLOW_PARENT_RUN_ID`` when set),
    described by ``description`` (the stage module's docstring: its first line)."""
    import mlflow

    end_orphans(setup())
    parent = os.environ.get(PARENT_ENV) or None
    tags = run_tags(stage) | ({NOTE_TAG: one_line(description)} if description else {})
    with mlflow.start_run(run_name=stage, parent_run_id=parent, tags=tags) as run:
        if params_section:
            mlflow.log_params({k: str(v)[:500] for k, v in flatten(params_section).items()})
        yield run


def metric_name(key: str) -> str:
    """The MLflow name of a metrics-file key: one scheme everywhere, ``/``-separated (MLflow's
    charts group metrics by the part before the first ``/``), ``@`` spelled out.

    >>> metric_name("by_difficulty.3.pass@4"), metric_name("prm.chains.step_auc")
    ('by_difficulty/3/pass_at_4', 'prm/chains/step_auc')
    """
    return key.replace(".", "/").replace("@", "_at_")


def metric_dict(nested: dict, prefix: str = "") -> dict[str, float]:
    """Flatten a nested metrics report into MLflow metrics (:func:`metric_name`), e.g.
    ``{"overall": {"pass@4": 0.5}}`` -> ``{"overall/pass_at_4": 0.5}``.

    Non-numeric leaves (and booleans) are skipped; so are NaN and infinities, which MLflow's
    charts cannot draw.
    """
    out = {}
    for k, v in flatten(nested).items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            continue
        out[prefix + metric_name(k)] = float(v)
    return out


def _pinned(*packages: str) -> list[str]:
    """``pip_requirements`` pinning the installed versions of ``packages``."""
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in packages]


MODEL_DESCRIPTIONS = {
    POLICY_MODEL: "The policy (a causal LM). Aliases: `base` = the warm start, `candidate` = the last RL run's policy, "
    "`champion` = the candidate the gate last promoted (none yet: the base serves).",
    PRM_MODEL: "The process reward model: scores each reasoning step of a solution (pyfunc: prompt, solution -> step scores).",
}


def describe_version(name: str, version: str, description: str | None = None, tags: dict | None = None, keep: bool = False) -> None:
    """Set a registered model version's description (``keep``: the new line first, the one it
    had after it: the registry's table shows the first line) and tags (values as text, floats
    to 4 decimals), as the registry page shows them."""
    from mlflow import MlflowClient

    client = MlflowClient()
    if description:
        after = client.get_model_version(name, version).description if keep else ""
        client.update_model_version(name, version, description=f"{description}\n{after or ''}".strip())
    for key, value in (tags or {}).items():
        client.set_model_version_tag(name, version, key, f"{value:.4f}" if isinstance(value, float) else str(value))


def describe_alias(name: str, alias: str, description: str | None = None, tags: dict | None = None) -> str | None:
    """:func:`describe_version` (keeping its description, after the new line) on the version
    ``name@alias``; returns it (``None``: no such alias, or model logging is off)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    if os.environ.get("PRMFLOW_LOG_MODELS", "1") == "0":
        return None
    try:
        version = str(MlflowClient().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None
    describe_version(name, version, description, tags, keep=True)
    return version


DIGEST_TAG = "prmflow.digest"
"""Model version tag: :func:`prmflow.lm.folders.model_digest` of the folder it was logged from."""


def registered_version(name: str, digest: str) -> str | None:
    """The newest version of registered model ``name`` logged from a folder with ``digest``."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        versions = MlflowClient().search_model_versions(f"name='{name}'")
    except MlflowException:
        return None
    same = [int(v.version) for v in versions if v.tags.get(DIGEST_TAG) == digest]
    return str(max(same)) if same else None


def register_if_changed(
    name: str, model_dir: str | Path, log, aliases: tuple[str, ...] = (), description: str | None = None, tags: dict | None = None
) -> str:
    """Register ``model_dir`` as ``name`` only when no version holds the same content.

    ``log()`` logs and registers it (returning MLflow's model info) when it changed; an
    unchanged checkpoint (the same warm start re-run, the same PRM) moves ``aliases`` to the
    version that holds it and logs nothing: at 7B every copy is ~15 GB. The run is tagged
    ``prmflow.registered.<name>`` with what happened; the version gets ``description`` (first,
    keeping what it had) and ``tags``, and the model its :data:`MODEL_DESCRIPTIONS` line.
    Returns the version."""
    import mlflow
    from mlflow import MlflowClient

    digest = model_digest(model_dir)
    version = registered_version(name, digest)
    client = MlflowClient()
    if version is None:
        version = str(log().registered_model_version)
        client.set_model_version_tag(name, version, DIGEST_TAG, digest)
        what = f"v{version} (new)"
    else:
        what = f"v{version} (unchanged: same content, not logged again)"
    for alias in aliases:
        client.set_registered_model_alias(name, alias, version)
    describe_version(name, version, description, tags, keep=True)
    if name in MODEL_DESCRIPTIONS and not client.get_registered_model(name).description:
        client.update_registered_model(name, description=MODEL_DESCRIPTIONS[name])
    mlflow.set_tag(f"prmflow.registered.{name}", what)
    return version


def log_policy_model(
    model_dir: str | Path,
    run_id: str,
    params,
    tokenizer,
    name: str = POLICY_MODEL,
    aliases: tuple[str, ...] = (),
    description: str | None = None,
    tags: dict | None = None,
) -> str | None:
    """Log the HF model in ``model_dir`` with MLflow's transformers flavor and register it, unless
    a version already holds the same content (:func:`register_if_changed`). ``tokenizer``: the
    model's, as the stages load it (:func:`prmflow.lm.models.load_tokenizer`: as saved), so that
    the MLflow copy encodes text as the model was trained to read it. ``description`` and
    ``tags`` go on the version (what the registry page shows).

    Returns the registered version (a string), or ``None`` when ``PRMFLOW_LOG_MODELS=0``.
    ``pip_requirements`` is explicit (the flavor would otherwise infer torchvision), and so is
    the model card (the flavor would otherwise try to fetch one from the Hub, retrying offline),
    and the model's ``name_or_path`` is not a Hub repo id: the flavor looks a relative path like
    ``models/base`` up on the Hub for a license file, with 5 retries (~25 s offline).
    The flavor's path form breaks under transformers 5, so the model is loaded and passed in.
    """
    if os.environ.get("PRMFLOW_LOG_MODELS", "1") == "0":
        return None

    def log():
        import mlflow
        from huggingface_hub import ModelCard
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(str(model_dir))
        model.name_or_path = f"{name} (prmflow run {run_id})"  # not a Hub repo id: no license lookup
        return mlflow.transformers.log_model(
            transformers_model={"model": model, "tokenizer": tokenizer},
            name=name.replace("prmflow-", ""),
            task="text-generation",
            pip_requirements=_pinned("torch", "transformers", "tokenizers"),
            model_card=ModelCard(f"# {name}\n\nTrained by prmflow (run {run_id}).\n"),
            registered_model_name=name,
        )

    return register_if_changed(name, model_dir, log, aliases, description, tags)


def log_prm_model(
    model_dir: str | Path,
    run_id: str,
    name: str = PRM_MODEL,
    aliases: tuple[str, ...] = (),
    description: str | None = None,
    tags: dict | None = None,
) -> str | None:
    """Log the PRM in ``model_dir`` as an MLflow pyfunc model and register it as ``name``, unless a
    version already holds the same content (:func:`register_if_changed`).

    The pyfunc takes a DataFrame with ``prompt`` and ``solution`` columns and returns one list
    of step scores per row (:func:`prmflow.prm.scorers.load_scorer`). The PRM is a backbone plus a
    head, not a transformers pipeline, so the transformers flavor does not fit; the model is
    ``prmflow/prm/pyfunc.py`` (MLflow "models from code"), the directory travels as an artifact
    and ``reward/`` as code. A frozen backbone that the PRM folder only references
    (:func:`prmflow.prm.model.backbone_reference`) is not copied either: the pyfunc finds it at its
    path on this machine, and the version's ``prmflow.backbone_digest`` tag names it (with
    ``prmflow.backbone_version``: the ``prmflow-policy`` version of the same content, if any).
    ``None`` when ``PRMFLOW_LOG_MODELS=0``.
    """
    if os.environ.get("PRMFLOW_LOG_MODELS", "1") == "0":
        return None

    def log():
        import mlflow
        from mlflow.models import ModelSignature
        from mlflow.types import ColSpec, Schema

        import prmflow
        import reward

        signature = ModelSignature(inputs=Schema([ColSpec("string", "prompt"), ColSpec("string", "solution")]))
        with warnings.catch_warnings():
            # An input example would make MLflow load and run the PRM while logging it.
            warnings.filterwarnings("ignore", message=".*input example was not provided.*")
            return mlflow.pyfunc.log_model(
                name=name.replace("prmflow-", ""),
                python_model=str(Path(prmflow.__file__).parent / "prm" / "pyfunc.py"),
                artifacts={"prm": str(model_dir)},
                code_paths=[str(Path(reward.__file__).parent), str(Path(prmflow.__file__).parent)],
                pip_requirements=_pinned("torch", "transformers", "tokenizers", "safetensors"),
                signature=signature,
                registered_model_name=name,
            )

    version = register_if_changed(name, model_dir, log, aliases, description, tags)
    tag_backbone(name, version, model_dir)
    return version


def tag_backbone(name: str, version: str, model_dir: str | Path) -> None:
    """Tag a PRM version with the digest of the backbone it references (if it references one)
    and the ``prmflow-policy`` version that holds that content."""
    import json

    from mlflow import MlflowClient

    cfg_file = Path(model_dir) / "prm_config.json"
    ref = json.loads(cfg_file.read_text()).get("backbone") if cfg_file.is_file() else None
    if not ref:
        return
    client = MlflowClient()
    client.set_model_version_tag(name, version, "prmflow.backbone_digest", ref["digest"])
    client.set_model_version_tag(name, version, "prmflow.backbone_path", ref["abs_path"])
    policy_version = registered_version(POLICY_MODEL, ref["digest"])
    if policy_version:
        client.set_model_version_tag(name, version, "prmflow.backbone_version", f"{POLICY_MODEL} v{policy_version}")


def last_stage_run(stage: str, exclude_parent: str | None = None) -> str:
    """Which finished run last ran ``stage`` (``"run <id> of <time>"``; ``"none recorded"``)."""
    import time

    from mlflow import MlflowClient

    exp = MlflowClient().get_experiment_by_name(os.environ.get(EXPERIMENT_ENV, DEFAULT_EXPERIMENT))
    if exp is None:
        return "none recorded"
    runs = MlflowClient().search_runs(
        [exp.experiment_id],
        filter_string=f"tags.`prmflow.stage` = '{stage}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=5,
    )
    runs = [r for r in runs if r.data.tags.get("mlflow.parentRunId") != exclude_parent]
    if not runs:
        return "none recorded"
    r = runs[0]
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.info.start_time / 1000))
    return f"{stage} run {r.info.run_id[:8]} of {when}"


VIEW_METRICS = ("wall_time_s", "probe_accuracy", "prm/chains/step_auc", "eval_greedy_acc_end", "overall/greedy_acc", "gate/diff")
"""Metric columns of :func:`save_runs_view`: each stage run shows its own headline number."""
VIEW_TAG = "mlflow.sharedViewState."
"""Prefix of the experiment tags the MLflow UI reads a saved runs-table view from (its "Share" button)."""


def lifecycle_label(run) -> str:
    """How a lifecycle run is named where its stage runs are grouped: ``<name> <start> (<id>)``."""
    import time

    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(run.info.start_time / 1000))
    name = run.info.run_name.replace("'", "")  # the label is quoted in a search filter
    return f"{name} {when} ({run.info.run_id[:8]})"


def save_runs_view(exp_id: str, lifecycle_run_id: str, label: str) -> str:
    """Save a view of the runs table that lists the stage runs of one lifecycle run (tagged
    ``prmflow.lifecycle_run = label``) in lifecycle order, with :data:`VIEW_METRICS` as columns;
    returns the UI path that opens it (in MLflow's "Model training" mode).

    The MLflow UI has no per-experiment default for sort, columns or expanded rows (it keeps
    them per browser, newest run first, child runs folded under their parent), but it opens a
    view shared through an experiment tag, which is this. Grouped by the tag, the stage runs
    show as one unfolded group instead of under their parents. A lifecycle run where every stage
    was up to date ran none: its view shows the last lifecycle run's stage runs that did run."""
    import json

    from mlflow import MlflowClient

    client = MlflowClient()
    if not client.search_runs([exp_id], f"tags.`prmflow.lifecycle_run` = '{label}'", max_results=1):
        latest = client.search_runs(
            [exp_id], "tags.`prmflow.lifecycle_run` LIKE '%'", order_by=["attributes.start_time DESC"], max_results=1
        )
        label = latest[0].data.tags["prmflow.lifecycle_run"] if latest else label
    columns = [f"metrics.`{m}`" for m in VIEW_METRICS]
    state = {
        "searchFilter": f"tags.`prmflow.lifecycle_run` = '{label}'",
        "orderByKey": "attributes.start_time",
        "orderByAsc": True,
        "startTime": "ALL",
        "lifecycleFilter": "Active",
        "selectedColumns": columns,
        "columnOrder": columns,
        "columnWidths": {c: 160 for c in columns},  # wide enough for the names
        "groupBy": {"aggregateFunction": "average", "groupByKeys": [{"mode": "tag", "groupByData": "prmflow.lifecycle_run"}]},
    }
    client.set_experiment_tag(exp_id, VIEW_TAG + lifecycle_run_id, json.dumps(state))
    return f"#/experiments/{exp_id}/runs?viewStateShareKey={lifecycle_run_id}&workflowType=machine_learning"


def ui_url(path: str = "") -> str:
    """``path`` in the MLflow UI: on the tracking server when ``MLFLOW_TRACKING_URI`` is one,
    else on ``mlflow ui``'s default address."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    base = uri.rstrip("/") + "/" if uri.startswith(("http://", "https://")) else "http://127.0.0.1:5000/"
    return base + path
