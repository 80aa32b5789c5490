"""DVC from Python: set params (``-S`` syntax), reproduce one stage, save an experiment.

DVC's Python API needs the working directory inside the repo and is not thread-safe, so stages
run as ``dvc`` subprocesses with ``cwd=`` (Prefect may run tasks in worker threads). DVC holds a
workspace lock: callers run one stage at a time.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from prmflow.config import apply_overrides, parse_override, read_params_file, validate_params

_SKIP_RE = re.compile(r"Stage '([^']+)' didn't change, skipping")
_RUN_RE = re.compile(r"Running stage '([^']+)'")


ALWAYS_RUN = ("inputs",)
"""Stages marked ``always_changed`` in dvc.yaml: they run every time (a quick fingerprint of
external inputs) and are not reported as work done; what they find shows in the stages after them."""


class StageFailed(RuntimeError):
    """A DVC stage exited non-zero; the message carries the tail of its output."""


@dataclass
class StageResult:
    stage: str
    ran: list[str] = field(default_factory=list)
    """Stages DVC actually executed (the target and any stale upstream stage)."""
    skipped: list[str] = field(default_factory=list)
    output: list[str] = field(default_factory=list)

    @property
    def up_to_date(self) -> bool:
        return not self.ran


def dvc_executable() -> str:
    """The ``dvc`` next to the running interpreter (the project venv), else the one on PATH."""
    here = Path(sys.executable).parent / "dvc"
    return str(here) if here.exists() else "dvc"


def set_params(overrides: list[str], root: str | Path = ".", params_file: str = "params.yaml") -> None:
    """Apply DVC-style overrides to ``params.yaml`` in place, keeping its comments.

    The result is validated against the typed config first, so a bad override fails before the
    file is touched.
    """
    if not overrides:
        return
    from dvc.utils.serialize import modify_yaml

    path = Path(root) / params_file
    current = read_params_file(path)
    validate_params(apply_overrides(current, overrides), str(path))

    def unchanged(text: str) -> bool:
        keys, value = parse_override(text)
        node = current
        for k in keys:
            if not isinstance(node, dict) or k not in node:
                return value is None and isinstance(node, dict)  # absent == null
            node = node[k]
        return node == value

    overrides = [o for o in overrides if not unchanged(o)]
    if not overrides:  # leave the file byte for byte as it is (no reformatting, no git diff)
        return
    with modify_yaml(path) as data:
        for text in overrides:
            keys, value = parse_override(text)
            node = data
            for k in keys[:-1]:
                if node.get(k) is None:
                    node[k] = {}
                node = node[k]
            node[keys[-1]] = value


def _quiet_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DO_NOT_TRACK", "true")
    env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    env.setdefault("PYTHONUNBUFFERED", "1")
    # Stages are launched by `dvc`, which may not be the venv's; make sure they find our python.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra or {})
    return env


def _stream(cmd: list[str], cwd: Path, env: dict, on_line: Callable[[str], None] | None) -> tuple[int, list[str]]:
    """Run ``cmd``, calling ``on_line`` for each output line (tqdm's ``\\r`` updates included)."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines: list[str] = []
    buf = b""
    assert proc.stdout is not None
    while True:
        chunk = proc.stdout.read1(4096) if hasattr(proc.stdout, "read1") else proc.stdout.read(4096)
        if not chunk:
            break
        buf += chunk
        parts = re.split(rb"[\r\n]", buf)
        buf = parts.pop()
        for raw in parts:
            line = raw.decode(errors="replace").rstrip()
            if line:
                lines.append(line)
                if on_line:
                    on_line(line)
    if buf.strip():
        lines.append(buf.decode(errors="replace").rstrip())
        if on_line:
            on_line(lines[-1])
    return proc.wait(), lines


def repro(
    stage: str, root: str | Path = ".", env: dict[str, str] | None = None, on_line: Callable[[str], None] | None = None, force: bool = False
) -> StageResult:
    """``dvc repro <stage>``: runs it (and stale upstream stages) or reports it up to date."""
    cmd = [dvc_executable(), "repro", stage]
    if force:
        cmd += ["--force", "--single-item"]
    rc, lines = _stream(cmd, Path(root), _quiet_env(env), on_line)
    result = StageResult(stage=stage, output=lines)
    for line in lines:
        if m := _RUN_RE.search(line):
            if m.group(1) not in ALWAYS_RUN:
                result.ran.append(m.group(1))
        elif m := _SKIP_RE.search(line):
            result.skipped.append(m.group(1))
    if rc != 0:
        tail = "\n".join(lines[-25:])
        raise StageFailed(f"dvc repro {stage} failed (exit {rc}):\n{tail}")
    return result


def exp_save(name: str, root: str | Path = ".") -> str | None:
    """Save the workspace as a DVC experiment (``dvc exp save -n name``); ``None`` if impossible.

    Needs a git repo with a commit; a checkout without one (e.g. a tarball) still runs the
    pipeline, it just records no experiment.
    """
    root = Path(root)
    if subprocess.run(["git", "rev-parse", "--verify", "HEAD"], cwd=root, capture_output=True).returncode:
        return None
    proc = subprocess.run(
        [dvc_executable(), "exp", "save", "--force", "-n", name], cwd=root, env=_quiet_env(), capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise RuntimeError(f"dvc exp save failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return name
