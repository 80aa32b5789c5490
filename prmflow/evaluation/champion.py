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


def move_registry_alias(name: str = "prmflow-policy", source_alias: str = "candidate", alias: str = "champion") -> str | None:
    """Point ``alias`` at the version that ``source_alias`` names; returns it (``None``: no such alias)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        version = client.get_model_version_by_alias(name, source_alias).version
    except MlflowException:
        return None
    client.set_registered_model_alias(name, alias, version)
    return str(version)


def apply_gate(rep: dict, candidate_dir=POLICY, champion_dir=CHAMPION, registry: bool = True) -> str:
    """Carry out the gate's decision: promote the candidate (workspace + MLflow alias) or not.

    Returns a one-line summary. Nothing happens without a gate (no candidate).
    """
    gate = rep.get("gate")
    if gate is None:
        return "gate: no candidate policy yet (RL has not run); the base stays champion"
    if not gate["promote"]:
        return f"gate: candidate NOT promoted: {gate['reason']}"
    promote(candidate_dir, champion_dir, {"gate": {k: v for k, v in gate.items() if k != "champion_path"}})
    version = move_registry_alias() if registry else None
    where = f"; MLflow prmflow-policy@champion -> v{version}" if version else ""
    return f"gate: candidate PROMOTED to champion: {gate['reason']}{where}"
