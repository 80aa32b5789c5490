"""The UIs as a person would use them: a real ``prefect server`` and ``mlflow server`` on 127.0.0.1.

``prmflow serve`` registers the deployments with a schedule (every few seconds here); the
scheduled lifecycle runs (every 60 s) on the micro config; then everything is checked through the servers'
HTTP APIs (what their web pages read): the deployment and its schedule, the flow runs and their
artifacts, the MLflow runs and the registered models with aliases. A second scheduled run
with nothing changed is skipped stage by stage by DVC and must finish within 30 s.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import make_project

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url: str, body: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST" if data else "GET")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


def wait_for(fn, timeout: float, what: str, every: float = 1.0):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # server not up yet
            last = e
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def start(cmd, cwd, env, log):
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.slow
def test_servers_deployment_schedule_runs_and_registry(tmp_path):
    proj = make_project(tmp_path)
    pport, mport = free_port(), free_port()
    api = f"http://127.0.0.1:{pport}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect_home"),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{tmp_path / 'prefect.db'}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "true",
        "MLFLOW_TRACKING_URI": f"sqlite:///{proj / 'mlflow.db'}",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    env.pop("PREFECT_API_URL", None)
    logs = {n: open(tmp_path / f"{n}.log", "w") for n in ("prefect", "mlflow", "serve")}
    procs = []
    try:
        procs.append(
            start([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(pport)], proj, env, logs["prefect"])
        )
        wait_for(lambda: http(f"{api}/health"), 120, "prefect server")
        client_env = {**env, "PREFECT_API_URL": api}
        procs.append(start([str(BIN / "prmflow"), "serve", "--interval", "60"], proj, client_env, logs["serve"]))

        dep = wait_for(lambda: http(f"{api}/deployments/name/lifecycle/retrain"), 90, "deployment lifecycle/retrain")
        assert dep["schedules"] and dep["schedules"][0]["schedule"]["interval"] == 60.0
        assert dep["enforce_parameter_schema"] is True
        assert "iterations" in json.dumps(dep["parameter_openapi_schema"])  # the typed form
        for name in ("ablate/ablation", "stage/single-stage"):
            assert http(f"{api}/deployments/name/{name}")["name"] == name.split("/")[1]

        def completed():
            runs = http(
                f"{api}/flow_runs/filter",
                {
                    "flow_runs": {"deployment_id": {"any_": [dep["id"]]}, "state": {"type": {"any_": ["COMPLETED", "FAILED", "CRASHED"]}}},
                    "sort": "START_TIME_ASC",
                },
            )
            bad = [r for r in runs if r["state"]["type"] != "COMPLETED"]
            assert not bad, f"a scheduled run failed: {bad[0]['state']}; see {tmp_path / 'serve.log'}"
            return runs if len(runs) >= 2 else None

        runs = wait_for(completed, 480, "two completed scheduled lifecycle runs", every=3)
        first, second = runs[0], runs[1]
        # the second scheduled run found nothing new: every stage skipped by DVC, and it says so
        entries = http(f"{api}/logs/filter", {"logs": {"flow_run_id": {"any_": [second["id"]]}}, "limit": 200})
        text = "\n".join(entry["message"] for entry in entries)
        for name in ("curate", "warmstart", "label", "train_prm", "train_policy", "evaluate"):
            assert f"stage {name}: up to date (skipped by DVC)" in text, f"{name} re-ran in the no-change run"
        arts = http(f"{api}/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [first["id"]]}}})
        keys = {a["key"] for a in arts}
        assert {"evaluation-iter1", "label-quality-iter1", "iterations"} <= keys
        assert any(a["type"] == "progress" for a in arts)
        # the concurrency limit kept scheduled runs from overlapping
        spans = sorted((r["start_time"], r["end_time"]) for r in runs)
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))

        # a run triggered as the UI's "Run" button does (typed form values), and one from the CLI;
        # a value outside the schema is refused by the server (enforce_parameter_schema)
        with pytest.raises(urllib.error.HTTPError):
            http(f"{api}/deployments/{dep['id']}/create_flow_run", {"parameters": {"params": {"eval_samples": 0}}})
        ui_run = http(f"{api}/deployments/{dep['id']}/create_flow_run", {"parameters": {"params": {"eval_samples": 3}}})
        cli = subprocess.run(
            [str(BIN / "prefect"), "deployment", "run", "lifecycle/retrain", "--params", json.dumps({"params": {"eval_samples": 2}})],
            cwd=proj,
            env=client_env,
            capture_output=True,
            text=True,
            check=True,
        )
        cli_id = re.search(r"UUID: ([0-9a-f-]{36})", cli.stdout).group(1)

        def finished(run_id):
            r = http(f"{api}/flow_runs/{run_id}")
            assert r["state"]["type"] not in ("FAILED", "CRASHED"), r["state"]
            return r if r["state"]["type"] == "COMPLETED" else None

        assert wait_for(lambda: finished(ui_run["id"]), 300, "the UI-triggered run", every=3)["parameters"]["params"]["eval_samples"] == 3
        assert wait_for(lambda: finished(cli_id), 300, "the CLI-triggered run", every=3)["parameters"]["params"]["eval_samples"] == 2
        stop(procs.pop())  # serve

        procs.append(
            start(
                [
                    str(BIN / "mlflow"),
                    "server",
                    "--backend-store-uri",
                    env["MLFLOW_TRACKING_URI"],
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(mport),
                    "--workers",
                    "1",
                ],
                proj,
                env,
                logs["mlflow"],
            )
        )
        ml = f"http://127.0.0.1:{mport}/api/2.0/mlflow"
        exp = wait_for(lambda: http(f"{ml}/experiments/get-by-name?experiment_name=prmflow"), 120, "mlflow server")["experiment"]
        found = http(f"{ml}/runs/search", {"experiment_ids": [exp["experiment_id"]], "max_results": 200})["runs"]
        stages = {t["value"] for r in found for t in r["data"].get("tags", []) if t["key"] == "prmflow.stage"}
        assert stages == {"curate", "warmstart", "label", "train_prm", "train_policy", "evaluate"}
        policy = http(f"{ml}/registered-models/get?name=prmflow-policy")["registered_model"]
        aliases = {a["alias"] for a in policy.get("aliases", [])}
        assert {"base", "candidate"} <= aliases
        assert http(f"{ml}/registered-models/get?name=prmflow-prm")["registered_model"]["name"] == "prmflow-prm"
        # the pages themselves are served
        assert b"<html" in urllib.request.urlopen(f"http://127.0.0.1:{pport}/", timeout=30).read().lower()
        assert b"<html" in urllib.request.urlopen(f"http://127.0.0.1:{mport}/", timeout=30).read().lower()
    finally:
        for p in reversed(procs):
            stop(p)
        for f in logs.values():
            f.close()
