"""The champion: the policy that RL starts from and that the gate compares candidates with.

It lives in two places kept in step by :func:`promote`: ``models/champion/`` in the workspace
(what the next iteration labels with and trains from) and the ``champion`` alias of the
registered model ``prmflow-policy`` in MLflow (what users deploy). Until a candidate is
promoted, the champion is the warm-started base. ``models/champion/champion.json`` records which
candidate it was, when, and the gate's numbers.

``models/champion`` is deliberately not a DVC output: it is the *result* of a decision across
runs, not a function of this run's inputs (as a DVC out it would make the pipeline cyclic).
The stages that start from it read a snapshot, ``models/start`` (see ``flows/lifecycle.py``).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from prmflow.io import atomic_dir
from prmflow.tracking import POLICY_MODEL
from prmflow.workspace import BASE, CHAMPION, POLICY, has_model

INFO_FILE = "champion.json"


def current(base_dir: str | Path = BASE, champion_dir: str | Path = CHAMPION) -> Path:
    """The champion's directory: ``champion_dir`` once something was promoted, else the base."""
    return Path(champion_dir) if has_model(champion_dir) else Path(base_dir)


def info(champion_dir: str | Path = CHAMPION) -> dict:
    """What ``champion.json`` says (empty when the base is still champion)."""
    p = Path(champion_dir) / INFO_FILE
    return json.loads(p.read_text()) if p.exists() else {}


def promote(candidate_dir: str | Path, champion_dir: str | Path = CHAMPION, record: dict | None = None) -> None:
    """Make the candidate the champion: an atomic copy of its files plus ``champion.json``."""
    src = Path(candidate_dir)
    if not has_model(src):
        raise FileNotFoundError(f"{src}: no model to promote (config.json missing)")
    with atomic_dir(champion_dir) as tmp:
        for f in src.iterdir():
            if f.is_file():
                shutil.copy2(f, tmp / f.name)
        (tmp / INFO_FILE).write_text(
            json.dumps({"source": str(src), "promoted_at": time.strftime("%Y-%m-%dT%H:%M:%S"), **(record or {})}, indent=2)
        )


def snapshot(src: str | Path, dest: str | Path) -> Path:
    """Copy a policy directory atomically (the starting point of an iteration)."""
    with atomic_dir(dest) as tmp:
        for f in Path(src).iterdir():
            if f.is_file() and f.name != INFO_FILE:
                shutil.copy2(f, tmp / f.name)
    return Path(dest)


class PromotionError(RuntimeError):
    """A promotion that could not be carried out whole; nothing was changed."""


def move_registry_alias(name: str = POLICY_MODEL, source_alias: str = "candidate", alias: str = "champion") -> tuple[str, str | None]:
    """Point ``alias`` at the version ``source_alias`` names; returns (that version, the version
    ``alias`` pointed at before or ``None``). Raises :class:`PromotionError` when there is no
    ``source_alias`` or MLflow refuses, having changed nothing."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        version = str(client.get_model_version_by_alias(name, source_alias).version)
    except MlflowException as e:
        raise PromotionError(f"no registered {name}@{source_alias} to promote ({e.error_code})") from e
    try:
        before = str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        before = None
    try:
        client.set_registered_model_alias(name, alias, version)
    except MlflowException as e:
        raise PromotionError(f"could not move {name}@{alias} to v{version}: {e}") from e
    return version, before


def restore_registry_alias(before: str | None, name: str = POLICY_MODEL, alias: str = "champion") -> None:
    """Undo :func:`move_registry_alias` (point ``alias`` back, or remove it if it was new)."""
    from mlflow import MlflowClient

    client = MlflowClient()
    if before is None:
        client.delete_registered_model_alias(name, alias)
    else:
        client.set_registered_model_alias(name, alias, before)


def apply_gate(rep: dict, candidate_dir=POLICY, champion_dir=CHAMPION, registry: bool = True) -> str:
    """Carry out the gate's decision: promote the candidate or not. Returns a one-line summary.

    A promotion is all or nothing: the MLflow alias ``prmflow-policy@champion`` moves first, then
    the files are copied to ``champion_dir``; if the copy fails the alias is moved back, and if
    the alias cannot move no file is touched (:class:`PromotionError`). With ``registry=False``
    (model logging off) only the files move, and the summary says the registry was not updated.
    """
    gate = rep.get("gate")
    if gate is None:
        return "gate: no candidate policy yet (RL has not run); the base stays champion"
    if not gate["promote"]:
        return f"gate: candidate NOT promoted: {gate['reason']}"
    version, before = move_registry_alias() if registry else (None, None)
    try:
        promote(candidate_dir, champion_dir, {"gate": {k: v for k, v in gate.items() if k != "champion_path"}, "registry_version": version})
    except BaseException:
        if registry:
            restore_registry_alias(before)
        raise
    where = f"; MLflow {POLICY_MODEL}@champion -> v{version}" if registry else "; MLflow registry not updated (model logging is off)"
    return f"gate: candidate PROMOTED to champion: {gate['reason']}{where}"
