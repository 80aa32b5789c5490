import subprocess
import sys
import textwrap
import time

import pytest

from flows.lock import RunInProgress, workspace_lock

HOLDER = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {root!r})
    from flows.lock import workspace_lock
    with workspace_lock({ws!r}, "nightly"):
        print("held", flush=True)
        time.sleep({hold})
    """
)


def hold_in_other_process(tmp_path, hold: float):
    from tests.conftest import ROOT

    code = HOLDER.format(root=str(ROOT), ws=str(tmp_path), hold=hold)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_run_is_refused_with_a_clear_message(tmp_path):
    proc = hold_in_other_process(tmp_path, 30)
    try:
        with pytest.raises(RunInProgress, match=r"another run is in progress: nightly \(pid \d+, since"):
            with workspace_lock(tmp_path, "manual", on_conflict="fail"):
                pass
        with workspace_lock(tmp_path, "manual", on_conflict="skip") as held:
            assert held is False
    finally:
        proc.kill()
        proc.wait()
    # the OS released the dead holder's lock
    with workspace_lock(tmp_path, "manual", on_conflict="fail") as held:
        assert held is True


def test_waiting_run_proceeds_when_the_first_finishes(tmp_path):
    proc = hold_in_other_process(tmp_path, 1.5)
    t0 = time.monotonic()
    with workspace_lock(tmp_path, "manual", on_conflict="wait", poll_s=0.1) as held:
        assert held is True
        assert time.monotonic() - t0 > 0.5
    proc.wait()


def test_wait_gives_up_after_timeout(tmp_path):
    proc = hold_in_other_process(tmp_path, 30)
    try:
        with pytest.raises(RunInProgress, match="gave up"):
            with workspace_lock(tmp_path, "manual", timeout_s=0.3, poll_s=0.1):
                pass
    finally:
        proc.kill()
        proc.wait()


def test_wait_says_whom_it_waits_for(tmp_path):
    proc = hold_in_other_process(tmp_path, 1.5)
    heard = []
    try:
        with workspace_lock(tmp_path, "manual", on_conflict="wait", timeout_s=30, poll_s=0.1, on_wait=heard.append) as held:
            assert held is True
    finally:
        proc.kill()
        proc.wait()
    assert len(heard) == 1 and heard[0].startswith("waiting for the workspace: another run is in progress: nightly (pid ")
