"""One lifecycle at a time per workspace.

DVC holds its own lock only while a single command runs; between two stages another flow run
could change ``params.yaml`` or the registry under us. So a whole flow run holds an exclusive
``flock`` on ``.prmflow.lock`` in the project root. The holder writes who it is, so the second
run's message says which run is in progress and since when. The OS releases the lock if the
holder dies, so a crashed run never blocks the next one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

LOCK_FILE = ".prmflow.lock"


class RunInProgress(RuntimeError):
    """Another lifecycle run holds the workspace."""


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "unknown run"
    if not info:
        return "unknown run"
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("since", 0)))
    return f"{info.get('name', 'a run')} (pid {info.get('pid')}, since {started})"


@contextlib.contextmanager
def workspace_lock(
    root: str | Path, name: str, on_conflict: Literal["wait", "skip", "fail"] = "wait", timeout_s: float = 3600, poll_s: float = 1.0
) -> Iterator[bool]:
    """Hold the workspace lock for the block; yields ``True`` when held.

    ``wait``: poll until the other run finishes (``RunInProgress`` after ``timeout_s``);
    ``skip``: yield ``False`` at once, the caller skips its work;
    ``fail``: raise ``RunInProgress`` at once.
    """
    path = Path(root) / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                msg = f"another run is in progress: {_holder(path)}"
                if on_conflict == "skip":
                    yield False
                    return
                if on_conflict == "fail" or time.monotonic() >= deadline:
                    raise RunInProgress(msg + ("" if on_conflict == "fail" else f"; gave up after {timeout_s:.0f}s")) from None
                time.sleep(poll_s)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"name": name, "pid": os.getpid(), "since": time.time()}).encode(), 0)
        try:
            yield True
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
