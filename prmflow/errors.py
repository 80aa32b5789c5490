"""The errors a user can fix, and how a stage reports them: one line naming the file and the
cause, never a traceback (``python -m tasks.<stage>`` exits with status 1)."""

from __future__ import annotations

import contextlib
import errno
import sys
from collections.abc import Iterator

from prmflow.config import ConfigError
from prmflow.problems.sources import DataError

DISK_ERRORS = {errno.ENOSPC: "the disk is full", errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied"}
if hasattr(errno, "EDQUOT"):
    DISK_ERRORS[errno.EDQUOT] = "the disk quota is exceeded"


def describe(e: BaseException) -> str | None:
    """The one-line message for an error the user can fix; ``None`` for anything else (a bug:
    the traceback is the useful report then)."""
    if isinstance(e, (ConfigError, DataError)):
        return str(e)
    if isinstance(e, FileNotFoundError):
        return f"{e.filename}: not found" if e.filename else str(e)
    if isinstance(e, OSError) and e.errno in DISK_ERRORS:
        return f"cannot write {e.filename or 'an output'}: {DISK_ERRORS[e.errno]} ({e.strerror})"
    return None


@contextlib.contextmanager
def reported(stage: str) -> Iterator[None]:
    """Run a stage's CLI body; a user-fixable error exits with ``<stage>: <message>``."""
    try:
        yield
    except Exception as e:
        msg = describe(e)
        if msg is None:
            raise
        sys.exit(f"{stage}: {msg}")
