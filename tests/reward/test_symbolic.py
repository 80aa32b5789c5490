"""The symbolic checker's helper process: a deadline in any thread, restarts, faults as errors."""

import os
import time

import pytest

from reward import symbolic


def test_check_answers_equal_unequal_and_past_the_deadline():
    assert symbolic.check("\\frac{1}{2}", "0.5", timeout_s=10) is True
    assert symbolic.check("\\frac{1}{3}", "0.5", timeout_s=10) is False
    t0 = time.monotonic()
    assert symbolic.check("\\Gamma(100000000)", "5", timeout_s=0.5) is None
    assert time.monotonic() - t0 < 2
    assert symbolic.check("x+1", "1+x", timeout_s=10) is True  # a new helper took the killed one's place


def test_a_helper_that_died_is_an_error_then_replaced():
    assert symbolic.check("\\frac{1}{2}", "0.5", timeout_s=10) is True
    [helper] = symbolic._idle  # the one that answered, waiting for the next check
    helper.proc.kill()
    helper.proc.wait()
    with pytest.raises(symbolic.SymbolicError, match="helper process exited"):
        symbolic.check("\\frac{1}{2}", "0.5", timeout_s=10)
    assert symbolic.check("\\frac{1}{2}", "0.5", timeout_s=10) is True


def test_helpers_are_not_shared_with_a_forked_child():
    symbolic.check("\\frac{1}{2}", "0.5", timeout_s=10)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child must start its own helper, not talk over the parent's pipes
        ok = False
        try:
            ok = symbolic.check("\\frac{1}{2}", "0.5", timeout_s=30) is True and all(h.owner == os.getpid() for h in symbolic._idle)
        finally:
            os.write(write, b"1" if ok else b"0")
            os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"1"
    os.waitpid(pid, 0)
    assert symbolic.check("\\frac{1}{3}", "0.5", timeout_s=10) is False  # the parent's helper still answers
