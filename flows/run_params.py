"""A run's params: what the user wrote in ``params.yaml`` is never left changed.

For the time of a run, its overrides (``-S key=value``, DVC's syntax) are written into
``params.yaml`` and the flow's state into ``flow_state.yaml``, exactly as ``dvc exp run -S``
would, so that the DVC stages and ``dvc exp save`` see them. When the run ends, however it ends,
both files are put back byte for byte. The overrides and the effective params stay recorded
with the run: in its DVC experiment and in its MLflow run.

A run killed before it could put them back leaves its backup in ``.prmflow/backup/``; the next
command that changes the workspace restores it first and says so. Callers hold the workspace
lock (:mod:`flows.lock`), so no two runs ever share a backup.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from flows import dvc_cli as dvc
from prmflow.config import PARAMS_FILE, STATE_FILE, FlowState, Params, load_params, load_state, state_yaml

BACKUP_DIR = ".prmflow/backup"
FILES = (PARAMS_FILE, STATE_FILE)
ABSENT = ".absent"
"""A backup marker: the file did not exist before the run (restoring removes it)."""


def _backup(root: Path) -> None:
    folder = root / BACKUP_DIR
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in FILES:
        src = root / name
        if src.exists():
            shutil.copy2(src, tmp / name)
        else:
            (tmp / (name + ABSENT)).touch()
    os.replace(tmp, folder)  # the backup exists whole or not at all


def recover(root: str | Path) -> list[str]:
    """Put back the files a killed run left changed; returns their names (``[]``: nothing to do)."""
    root = Path(root)
    folder = root / BACKUP_DIR
    if not folder.is_dir():
        return []
    restored = []
    for name in FILES:
        saved, target = folder / name, root / name
        if saved.exists():
            if not target.exists() or target.read_bytes() != saved.read_bytes():
                restored.append(name)
            shutil.copy2(saved, target)
        elif (folder / (name + ABSENT)).exists() and target.exists():
            target.unlink()
            restored.append(name)
    shutil.rmtree(folder)
    return restored


class RunParams:
    """The workspace's params during a run: the run's overrides applied, the flow's state set."""

    def __init__(self, root: Path, overrides: list[str]):
        self.root, self.overrides = root, list(overrides)

    def params(self) -> Params:
        """The effective params now (``params.yaml`` with the run's overrides), validated."""
        return load_params(self.root / PARAMS_FILE)

    def state(self) -> FlowState:
        return load_state(self.root / STATE_FILE)

    def set_state(self, **changes) -> FlowState:
        """Write ``flow_state.yaml`` with ``changes`` (e.g. ``iteration=2``); the rest kept."""
        state = FlowState.model_validate({**self.state().model_dump(), **changes})
        (self.root / STATE_FILE).write_text(state_yaml(state))
        return state

    def override(self, overrides: list[str]) -> None:
        """Apply more overrides (validated before ``params.yaml`` is touched)."""
        dvc.set_params(overrides, self.root)

    def reset(self) -> None:
        """Back to the user's ``params.yaml`` plus this run's own overrides (e.g. between the
        arms of an ablation), and the state to its defaults."""
        shutil.copy2(self.root / BACKUP_DIR / PARAMS_FILE, self.root / PARAMS_FILE)
        dvc.set_params(self.overrides, self.root)
        (self.root / STATE_FILE).write_text(state_yaml(FlowState()))


@contextlib.contextmanager
def applied(root: str | Path, overrides: list[str], on_recover=print) -> Iterator[RunParams]:
    """Apply ``overrides`` and the default flow state for the block; put both files back after.

    ``on_recover(message)`` hears about files that a killed earlier run had left changed.
    """
    root = Path(root)
    restored = recover(root)
    if restored:
        on_recover(f"restored {', '.join(restored)} from a run that was stopped before it could (.prmflow/backup)")
    load_params(root / PARAMS_FILE, overrides)  # refuse a bad override before anything is written
    _backup(root)
    try:
        run = RunParams(root, overrides)
        run.override(overrides)
        (root / STATE_FILE).write_text(state_yaml(FlowState()))
        yield run
    finally:
        recover(root)
