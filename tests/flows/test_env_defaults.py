"""The environment defaults ``flows`` sets: local and quiet, and patient with a busy machine."""

import os
import subprocess
import sys

PROBE = "import flows; from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS as s; print(s.value())"


def _startup_timeout(env: dict) -> str:
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def test_the_ephemeral_server_gets_120_s_to_start_unless_the_user_says_otherwise():
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"}
    assert _startup_timeout(env) == "120"  # Prefect's own default is 20
    assert _startup_timeout({**env, "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "45"}) == "45"
