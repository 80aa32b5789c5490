"""tasks.exit_done: a stage's process ends with status 0 after its exit handlers ran and its
output was flushed; an error still exits the usual way (nonzero, with the message)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_exit_done_runs_handlers_and_flushes(tmp_path):
    marker = tmp_path / "handler-ran"
    code = (
        "import atexit, sys\n"
        "from tasks import exit_done\n"
        f"atexit.register(lambda: open({str(marker)!r}, 'w').write('yes'))\n"
        "print('stdout line', end='')\n"
        "sys.stderr.write('stderr line')\n"
        "exit_done()\n"
        "print('never')\n"
    )
    res = _python(code, tmp_path)
    assert res.returncode == 0
    assert res.stdout == "stdout line" and res.stderr == "stderr line"
    assert marker.read_text() == "yes"


def test_a_failing_stage_still_fails(tmp_path):
    """The CLI's error path is untouched: a missing params file exits nonzero with its message."""
    res = subprocess.run(
        [sys.executable, "-m", "tasks.curate", "--params", str(tmp_path / "missing.yaml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode != 0 and "missing.yaml" in res.stderr
