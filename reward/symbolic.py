"""Symbolic answer equality (``math_verify``) under a deadline that holds in any thread.

sympy cannot be interrupted from another thread, and a signal reaches only the main thread, so
each check runs in a helper process: the caller waits at most ``timeout_s`` for the reply, and
kills the helper when it is late (the next check starts a new one). Helpers start lazily (plain
numbers never come here), one per caller checking at the same moment, are reused, and end with
the process that started them (or when it forks: a child starts its own).

Protocol, one JSON line each way: ``[pred, gold]`` in; ``{"equal": bool}`` or
``{"error": "<type>: <message>"}`` out, after a first ``{"ready": true}``. The helper runs this
file as a script, so it imports ``math_verify`` and the standard library only.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import subprocess
import sys
import threading
import time

STARTUP_TIMEOUT_S = 120.0
"""Time a new helper may take to import sympy; not counted against a check's deadline."""


class SymbolicError(RuntimeError):
    """The checker raised, or its helper died: a verifier fault, not a wrong answer."""


def symbolic_equal(pred: str, gold: str) -> bool:
    """``math_verify``'s verdict, in this process and with no deadline (the helper's own check)."""
    from math_verify import parse, verify

    def wrap(s: str) -> str:  # math_verify only finds bare LaTeX inside math delimiters
        return s if "$" in s else f"${s}$"

    # Its own timeouts are off: they use SIGALRM and whole seconds; the helper's caller keeps time.
    g = parse(wrap(gold), parsing_timeout=None)
    p = parse(wrap(pred), parsing_timeout=None)
    return bool(g and p and verify(g, p, timeout_seconds=None))


class _Helper:
    """One helper process and its pipes."""

    def __init__(self):
        self.owner = os.getpid()
        # -P: the script's folder (reward/, with parse.py, process.py ...) must not shadow modules
        self.proc = subprocess.Popen([sys.executable, "-P", os.path.abspath(__file__)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._reply(STARTUP_TIMEOUT_S, "starting")

    def ask(self, pred: str, gold: str, timeout_s: float) -> bool | None:
        """The helper's verdict; ``None`` when it is not back within ``timeout_s``."""
        try:
            self.proc.stdin.write((json.dumps([pred, gold]) + "\n").encode())
            self.proc.stdin.flush()
        except OSError as e:  # BrokenPipeError: it died since the last check
            raise SymbolicError(f"symbolic helper process exited (code {self.proc.poll()}): {e}") from e
        reply = self._reply(timeout_s, "checking")
        if reply is None:
            return None
        if "error" in reply:
            raise SymbolicError(reply["error"])
        return bool(reply["equal"])

    def _reply(self, timeout_s: float, doing: str) -> dict | None:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        if not ready:
            return None if doing == "checking" else self._fail(f"not ready after {timeout_s:.0f} s")
        line = self.proc.stdout.readline()  # one whole line: the helper writes each reply at once
        return json.loads(line) if line else self._fail(f"exited (code {self.proc.wait()}) while {doing}")

    def _fail(self, why: str):
        self.kill()
        raise SymbolicError(f"symbolic helper process {why}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:  # a question still buffered for a helper that died: nobody to read it
                pass


_lock = threading.Lock()
_idle: list[_Helper] = []


def _take() -> _Helper:
    with _lock:
        if _idle and _idle[0].owner != os.getpid():  # forked: those pipes are the parent's to use
            _idle.clear()
        if _idle:
            return _idle.pop()
    return _Helper()  # started outside the lock: other callers need not wait for it


def _release(helper: _Helper) -> None:
    with _lock:
        if helper.owner == os.getpid():
            _idle.append(helper)


def check(pred: str, gold: str, timeout_s: float) -> bool | None:
    """Are ``pred`` and ``gold`` the same mathematical answer? ``None`` past ``timeout_s`` seconds.

    Raises :class:`SymbolicError` when ``math_verify`` raises or the helper dies. The deadline
    counts from the question being sent (a new helper's start is not counted).
    """
    helper = _take()
    try:
        equal = helper.ask(pred, gold, timeout_s)
    except BaseException:
        helper.kill()
        raise
    if equal is None:
        helper.kill()  # it may compute for ever; the next check starts a new one
    else:
        _release(helper)
    return equal


@atexit.register
def _stop_helpers() -> None:
    with _lock:
        mine = [h for h in _idle if h.owner == os.getpid()]
        _idle.clear()
    for h in mine:
        h.kill()


# --------------------------------------------------------------------------- the helper's side


def _exit_with(parent: int) -> None:
    """End this helper when its parent is gone (it may be mid-check, not reading stdin)."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _serve() -> None:
    import logging
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # ^C is the parent's to handle; it ends us
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # whatever sympy prints goes to stderr, not into the replies
    logging.getLogger("math_verify").setLevel(logging.ERROR)  # it warns when timeouts are None
    import math_verify  # noqa: F401  (loaded before "ready": its import is not a check's time)

    threading.Thread(target=_exit_with, args=(os.getppid(),), daemon=True).start()
    replies.write(json.dumps({"ready": True}) + "\n")
    replies.flush()
    for line in sys.stdin:
        pred, gold = json.loads(line)
        try:
            reply = {"equal": symbolic_equal(pred, gold)}
        except Exception as e:  # noqa: BLE001 - sympy/latex2sympy raise anything: the caller's ERROR
            reply = {"error": f"{type(e).__name__}: {e}"[:500]}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


if __name__ == "__main__":
    _serve()
