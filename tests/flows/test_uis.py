"""The UIs as a person uses them: a real ``prefect server`` and ``mlflow server`` on 127.0.0.1.

One set of servers for the module (:func:`uis`): ``prmflow serve`` registers the deployments with
a schedule (every 60 s here) and the scheduled lifecycle runs on the micro config. Then, in order:

1. the servers' HTTP APIs (what their pages read): the deployment and its schedule, the flow runs
   and their artifacts, runs triggered as the UI's Run button and the CLI do, the MLflow runs and
   registered models; a second scheduled run with nothing changed skips every stage (DVC) and says so;
2. the pages themselves in headless Chromium (Playwright driving Debian's ``chromium``): the run
   form, the iterations table, the MLflow runs view ``prmflow run`` links to, the registry; the
   screenshots go to the test's project folder, or to ``$PRMFLOW_UI_SHOTS`` when set (the README's
   ``reports/ui/`` are refreshed that way; a test run never rewrites tracked files);
3. ``prmflow serve`` stops within seconds on Ctrl-C after the Prefect server is gone.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from tests.conftest import make_project

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]
STAGES = ["curate", "warmstart", "label", "train_prm", "train_policy", "evaluate"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url: str, body: dict | None = None, method: str | None = None, tries: int = 6):
    """One API call; a 503 (the server's SQLite busy under load) is retried with back-off."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method=method or ("POST" if data else "GET"))
    for attempt in range(tries):
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            if e.code != 503 or attempt == tries - 1:
                raise
            time.sleep(2**attempt)


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


@pytest.fixture(scope="module")
def uis(tmp_path_factory):
    """Prefect server + ``prmflow serve`` + MLflow server on a micro project, for the module."""
    tmp = tmp_path_factory.mktemp("uis")
    proj = make_project(tmp)
    pport, mport = free_port(), free_port()
    api = f"http://127.0.0.1:{pport}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp / "prefect_home"),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{tmp / 'prefect.db'}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "true",
        "PREFECT_UI_API_URL": api,  # the pages call the API here, not on the default port
        "MLFLOW_TRACKING_URI": f"sqlite:///{proj / 'mlflow.db'}",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    env.pop("PREFECT_API_URL", None)
    logs = {n: open(tmp / f"{n}.log", "w") for n in ("prefect", "mlflow", "serve")}
    procs = {}
    try:
        procs["prefect"] = start(
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(pport)], proj, env, logs["prefect"]
        )
        wait_for(lambda: http(f"{api}/health"), 120, "prefect server")
        client_env = {**env, "PREFECT_API_URL": api}
        procs["serve"] = start([str(BIN / "prmflow"), "serve", "--interval", "60"], proj, client_env, logs["serve"])
        mlflow_cmd = ["server", "--backend-store-uri", env["MLFLOW_TRACKING_URI"], "--host", "127.0.0.1", "--port", str(mport)]
        procs["mlflow"] = start([str(BIN / "mlflow"), *mlflow_cmd, "--workers", "1"], proj, env, logs["mlflow"])
        dep = wait_for(lambda: http(f"{api}/deployments/name/lifecycle/retrain"), 90, "deployment lifecycle/retrain")
        wait_for(lambda: http(f"{api}/deployments/name/stage/single-stage"), 60, "the last deployment")  # registered one by one
        yield SimpleNamespace(
            tmp=tmp,
            proj=proj,
            api=api,
            ui=f"http://127.0.0.1:{pport}",
            ml=f"http://127.0.0.1:{mport}",
            client_env=client_env,
            procs=procs,
            dep=dep,
        )
    finally:
        for p in reversed(list(procs.values())):
            stop(p)
        for f in logs.values():
            f.close()


def completed_runs(uis, n: int, timeout: float = 480):
    """The deployment's first ``n`` finished runs (all COMPLETED), oldest first."""

    def done():
        runs = http(
            f"{uis.api}/flow_runs/filter",
            {
                "flow_runs": {"deployment_id": {"any_": [uis.dep["id"]]}, "state": {"type": {"any_": ["COMPLETED", "FAILED", "CRASHED"]}}},
                "sort": "START_TIME_ASC",
            },
        )
        bad = [r for r in runs if r["state"]["type"] != "COMPLETED"]
        assert not bad, f"a scheduled run failed: {bad[0]['state']}; see {uis.tmp / 'serve.log'}"
        return runs if len(runs) >= n else None

    return wait_for(done, timeout, f"{n} completed lifecycle runs", every=3)


@pytest.mark.slow
def test_servers_deployment_schedule_runs_and_registry(uis):
    api, dep = uis.api, uis.dep
    assert dep["schedules"] and dep["schedules"][0]["schedule"]["interval"] == 60.0
    assert dep["enforce_parameter_schema"] is True
    assert "iterations" in json.dumps(dep["parameter_openapi_schema"])  # the typed form
    for name in ("ablate/ablation", "stage/single-stage"):
        assert http(f"{api}/deployments/name/{name}")["name"] == name.split("/")[1]

    runs = completed_runs(uis, 2)
    first, second = runs[0], runs[1]
    # the second scheduled run found nothing new: every stage skipped by DVC, and it says so

    def all_stage_logs():
        # A run's logs reach the API from a background worker, after its state may already say
        # COMPLETED (under load the last stage's lines came seconds later), and 200 per page.
        entries, page = [], None
        while page is None or len(page) == 200:
            body = {"logs": {"flow_run_id": {"any_": [second["id"]]}}, "sort": "TIMESTAMP_ASC", "limit": 200, "offset": len(entries)}
            page = http(f"{api}/logs/filter", body)
            entries += page
        text = "\n".join(entry["message"] for entry in entries)
        return text if all(f"stage {name}: " in text for name in STAGES) else None

    text = wait_for(all_stage_logs, 90, "the no-change run's log line of every stage", every=3)
    for name in STAGES:
        assert f"stage {name}: up to date (skipped by DVC)" in text, f"{name} re-ran in the no-change run"
    arts = http(f"{api}/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [first["id"]]}}})
    keys = {a["key"] for a in arts}
    assert {"evaluation-iter1", "label-quality-iter1", "iterations"} <= keys
    assert any(a["type"] == "progress" for a in arts)
    # the concurrency limit kept scheduled runs from overlapping
    spans = sorted((r["start_time"], r["end_time"]) for r in runs)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    schedule = dep["schedules"][0]["id"]  # no more scheduled runs from here on
    http(f"{api}/deployments/{dep['id']}/schedules/{schedule}", {"active": False}, method="PATCH")

    # a run triggered as the UI's "Run" button does (typed form values), and one from the CLI;
    # a value outside the schema is refused by the server (enforce_parameter_schema)
    with pytest.raises(urllib.error.HTTPError):
        http(f"{api}/deployments/{dep['id']}/create_flow_run", {"parameters": {"params": {"eval_samples": 0}}})
    ui_run = http(f"{api}/deployments/{dep['id']}/create_flow_run", {"parameters": {"params": {"eval_samples": 3}}})
    cli = subprocess.run(
        [str(BIN / "prefect"), "deployment", "run", "lifecycle/retrain", "--params", json.dumps({"params": {"eval_samples": 2}})],
        cwd=uis.proj,
        env=uis.client_env,
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

    ml = f"{uis.ml}/api/2.0/mlflow"
    exp = wait_for(lambda: http(f"{ml}/experiments/get-by-name?experiment_name=prmflow"), 120, "mlflow server")["experiment"]
    found = http(f"{ml}/runs/search", {"experiment_ids": [exp["experiment_id"]], "max_results": 200})["runs"]
    stages = {t["value"] for r in found for t in r["data"].get("tags", []) if t["key"] == "prmflow.stage"}
    assert stages == set(STAGES)
    policy = http(f"{ml}/registered-models/get?name=prmflow-policy")["registered_model"]
    aliases = {a["alias"] for a in policy.get("aliases", [])}
    assert {"base", "candidate"} <= aliases
    assert http(f"{ml}/registered-models/get?name=prmflow-prm")["registered_model"]["name"] == "prmflow-prm"


def chromium() -> str:
    """Debian's Chromium (``.ci/run`` installs it); a clear skip without it, except in CI."""
    path = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
    try:
        import playwright  # noqa: F401
    except ImportError:
        path = None
    if path is None:
        why = "the browser checks need Chromium and Playwright (apt-get install chromium; pip install -e '.[test]')"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    return path


def form_fields(page) -> dict[str, list]:
    """The run form's fields: title (without "(Optional)") -> [kind, the value it shows]; kind
    ``choice`` for a dropdown, ``box`` for a text or number box, ``group`` for a model's fields."""
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('.schema-form-property')].map(p => {
            const title = p.querySelector('.schema-form-property__label')?.textContent.replace('(Optional)', '').trim();
            const field = p.querySelector(':scope > .p-label__body > fieldset > *');
            const choice = field?.classList.contains('p-select') ? field.querySelector('.p-select-button__value, select') : null;
            if (choice) return [title, ['choice', choice.value ?? choice.textContent.trim()]];
            const box = field?.querySelector('input, textarea');
            return [title, box && !field.classList.contains('schema-form-property-object') ? ['box', box.value] : ['group', null]];
        }))"""
    )


NUMBER_BOXES = {"RL steps", "Train problems", "Samples per eval problem (k)", "Reward weight: process"}


def as_number(field: list | None) -> list | None:
    """[kind, value] with the value read as a number where it is one."""
    try:
        return [field[0], float(field[1])]
    except (TypeError, ValueError):
        return field


@pytest.mark.slow
def test_the_pages_a_person_sees_in_a_browser(uis):
    from playwright.sync_api import sync_playwright

    exe = chromium()
    completed_runs(uis, 1)
    shots = Path(os.environ.get("PRMFLOW_UI_SHOTS") or uis.proj / "ui-shots")
    shots.mkdir(parents=True, exist_ok=True)
    params = yaml.safe_load((uis.proj / "params.yaml").read_text())
    ml = f"{uis.ml}/api/2.0/mlflow"
    exp = http(f"{ml}/experiments/get-by-name?experiment_name=prmflow")["experiment"]
    curate = http(f"{ml}/runs/search", {"experiment_ids": [exp["experiment_id"]], "filter": "tags.`prmflow.stage` = 'curate'"})["runs"][0]
    lifecycle_run = next(t["value"] for t in curate["data"]["tags"] if t["key"] == "mlflow.parentRunId")
    assert any(t["key"] == f"mlflow.sharedViewState.{lifecycle_run}" for t in exp["tags"])  # the view prmflow run links to

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        page = browser.new_page(viewport={"width": 1400, "height": 2300})
        page.set_default_timeout(90_000)
        # MLflow's assistant panel opens itself on a first visit and covers a third of the page
        page.add_init_script(
            "localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1', 'true');"
            "localStorage.setItem('mlflow.assistant.panelOpen_v1', 'false');"
        )

        # Prefect: the run form of lifecycle/retrain shows what the run will use (params.yaml)
        page.goto(f"{uis.ui}/deployments/deployment/{uis.dep['id']}/run")
        page.get_by_text("RL steps").first.wait_for()
        page.wait_for_timeout(1000)
        shown = form_fields(page)
        expected = {
            "RL steps": ["box", str(params["rl"]["steps"])],
            "Train problems": ["box", str(params["data"]["num_train"])],
            "Samples per eval problem (k)": ["box", str(params["evaluate"]["num_samples"])],
            "Reward weight: process": ["box", str(params["rl"]["weights"]["process"])],
            "Data source": ["choice", params["data"]["source"]],
            "Step labels": ["choice", params["label"]["method"]],
            "Process credit": ["choice", params["rl"]["process_mode"]],
            "If another run is in progress": ["choice", params["lifecycle"]["on_conflict"]],
        }
        # a number box shows the browser's form of the number (0.0 shows as "0"): compare numbers
        as_shown = {k: as_number(v) if k in NUMBER_BOXES else v for k, v in shown.items()}
        expected = {k: as_number(v) if k in NUMBER_BOXES else v for k, v in expected.items()}
        assert {k: as_shown.get(k) for k in expected} == expected, shown
        assert not {"root", "Project folder"} & set(shown)  # set by the deployment, not shown
        page.screenshot(path=shots / "prefect-run-form.png")

        # Prefect: the iterations table, rounded
        page.set_viewport_size({"width": 1400, "height": 900})
        latest = http(f"{uis.api}/artifacts/filter", {"artifacts": {"key": {"any_": ["iterations"]}}, "sort": "CREATED_DESC", "limit": 1})
        page.goto(f"{uis.ui}/artifacts/artifact/{latest[0]['id']}")
        page.get_by_text("label bal. acc").first.wait_for()
        text = page.inner_text("body")
        assert "PRM AUC" in text and not re.search(r"\d\.\d{5,}", text), text
        page.screenshot(path=shots / "prefect-iterations-table.png")

        # MLflow: the link prmflow run prints: the stage runs in lifecycle order, metric columns
        page.set_viewport_size({"width": 1600, "height": 800})
        view = f"#/experiments/{exp['experiment_id']}/runs?viewStateShareKey={lifecycle_run}&workflowType=machine_learning"
        page.goto(f"{uis.ml}/{view}")
        page.locator("a[href*='/runs/']", has_text="evaluate").first.wait_for()
        page.wait_for_timeout(1500)
        names = page.eval_on_selector_all("a[href*='/runs/']", "links => links.map(a => a.innerText.trim())")
        assert names[: len(STAGES)] == STAGES, names
        headers = page.eval_on_selector_all("[role=columnheader]", "hs => hs.map(h => h.innerText.trim())")
        assert {"wall_time_s", "overall/greedy_acc"} <= set(headers), headers
        assert "RL post-training of a language model with process rewards" in page.inner_text("body")  # the description
        page.screenshot(path=shots / "mlflow-runs.png")

        # MLflow: the experiment opens on its runs (in Model training mode)
        page.goto(f"{uis.ml}/#/experiments/{exp['experiment_id']}?workflowType=machine_learning")
        page.wait_for_url(re.compile(r".*/runs\b.*"))

        # MLflow: the registry shows every alias and the gate's decision on the candidate
        page.goto(f"{uis.ml}/#/models/prmflow-policy?workflowType=machine_learning")
        page.get_by_text("@ candidate").first.wait_for()
        page.wait_for_timeout(1000)
        text = page.inner_text("body").replace("\xa0", " ")
        aliases = {a["alias"] for a in http(f"{ml}/registered-models/get?name=prmflow-policy")["registered_model"]["aliases"]}
        assert all(f"@ {a}" in text for a in aliases), (aliases, text)
        assert "gate.decision" in text and "Warm-started base policy" in text
        page.screenshot(path=shots / "mlflow-registry.png")
        browser.close()


@pytest.mark.slow
def test_serve_stops_on_ctrl_c_after_the_prefect_server_is_gone(uis):
    serve = uis.procs["serve"]
    assert serve.poll() is None, (uis.tmp / "serve.log").read_text()[-2000:]
    stop(uis.procs.pop("prefect"))
    time.sleep(3)  # serve notices: its polls and websocket fail and it starts retrying
    t0 = time.time()
    os.kill(serve.pid, signal.SIGINT)  # Ctrl-C
    serve.wait(15)
    assert time.time() - t0 < 6, f"serve took {time.time() - t0:.1f}s to stop"
    assert "prmflow serve: stopping" in (uis.tmp / "serve.log").read_text()
