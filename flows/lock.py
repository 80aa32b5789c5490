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
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

LOCK_FILE = ".prmflow.lock"
WAIT_NOTE_EVERY_S = 60.0


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


def _to_stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@contextlib.contextmanager
def workspace_lock(
    root: str | Path,
    name: str,
    on_conflict: Literal["wait", "skip", "fail"] = "wait",
    timeout_s: float = 3600,
    poll_s: float = 1.0,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[bool]:
    """Hold the workspace lock for the block; yields ``True`` when held.

    ``wait``: poll until the other run finishes (``RunInProgress`` after ``timeout_s``), telling
    ``on_wait`` (default: stderr) whom it waits for, then again every minute;
    ``skip``: yield ``False`` at once, the caller skips its work;
    ``fail``: raise ``RunInProgress`` at once.
    """
    path = Path(root) / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout_s
        said = -math.inf
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
                if time.monotonic() - said >= WAIT_NOTE_EVERY_S:
                    left = deadline - time.monotonic()
                    (on_wait or _to_stderr)(f"waiting for the workspace: {msg} (lifecycle.on_conflict=wait; giving up in {left:.0f}s)")
                    said = time.monotonic()
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
