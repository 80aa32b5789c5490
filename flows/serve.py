"""``prmflow serve``: deployments of ``lifecycle``, ``ablate`` and ``stage`` served by this process.

The process registers the deployments with the Prefect API (``PREFECT_API_URL``, e.g. a
``prefect server start`` on 127.0.0.1:4200) and runs their flow runs in this workspace: scheduled
ones (``lifecycle.schedule_cron`` or ``--cron``/``--interval``) and ones triggered from the UI or
with ``prefect deployment run 'lifecycle/retrain' --params '{"params": {"iterations": 2}}'``. It
must keep running for them to run; Ctrl-C stops it within seconds (:func:`stop_on_signal`).

Run forms. Each deployment's parameter schema is the flow's, made for a person
(:func:`form_schema`): a plain box per field (no ``int | None`` type toggle), params.yaml's
effective values as defaults (read when ``serve`` starts), choices as dropdowns, bounds, titles
and descriptions, and no ``root`` (the deployment sets it). The server enforces the schema
(``enforce_parameter_schema``); a form left as it is overrides nothing
(:meth:`flows.lifecycle.LifecycleParams.to_overrides`). Each deployment admits one run at a time
(a Prefect concurrency limit: a run that collides is queued when ``lifecycle.on_conflict`` is
``wait``, cancelled when ``skip`` or ``fail``); the workspace lock (:mod:`flows.lock`) also guards
against runs started outside Prefect.
"""

from __future__ import annotations

import contextlib
import copy
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from flows.ablate import ablate
from flows.lifecycle import FORM_KEYS, lifecycle
from flows.stage import stage
from prmflow.config import Params, load_params, value_at

HIDDEN = ("root",)
"""Parameters the deployment sets and the form does not show."""
TITLES = {
    "params": "Settings of this run",
    "experiment_name": "Run name",
    "arms": "Arms",
    "seeds": "Seeds",
    "rl_steps": "RL steps",
    "num_seeds": "Number of seeds",
    "parallel": "Runs at a time",
    "process_weight": "Process weight",
    "length_weight": "Length weight",
    "overrides": "Overrides",
    "name": "Stage",
}
"""Titles of the flows' own parameters (Prefect titles them by their Python names)."""
DESCRIPTIONS = {
    "retrain": "The whole lifecycle: curate new data, warm-start, label steps, train the PRM, RL-train and gate the candidate "
    "against the champion. DVC skips every stage whose inputs have not changed. Each field defaults to params.yaml; "
    "only the fields you change apply, to this run only.",
    "ablation": "Outcome-only vs process rewards (learned PRM, oracle, length term): every arm with every seed (drawn fresh) "
    "under the same RL budget, side by side, compared with 95% intervals in one table and plot (reports/ablation). Promotes nothing.",
    "single-stage": "One DVC stage (and any stale stage before it), with params.yaml overrides for this run only.",
}
_MISSING = object()


def _field(prop: dict, default: Any = _MISSING, enum: list | None = None, title: str | None = None) -> dict:
    """One form field: ``X | None`` collapsed to ``X`` (a box, not a type toggle), ``enum`` as a
    dropdown, ``default`` shown in the box (``None``: an empty box)."""
    out = dict(prop)
    branches = [b for b in out.pop("anyOf", []) if b.get("type") != "null"]
    if len(branches) == 1:
        out.update(branches[0])
    elif branches:
        out["anyOf"] = branches
    if enum is not None:
        target = out["items"] if out.get("type") == "array" else out
        target.update(type="string", enum=list(enum))
    if default is not _MISSING:
        out["default"] = default
    if out.get("default", 0) is None:
        del out["default"]
    if title:
        out["title"] = title
    return out


def form_schema(flow, defaults: dict[str, Any] | None = None, enums: dict[str, list] | None = None) -> dict:
    """The flow's parameter schema as a run form. ``defaults`` and ``enums`` are keyed by
    parameter name, or ``param.field`` for a field of a pydantic-model parameter."""
    from prefect.utilities.callables import parameter_schema

    defaults, enums = defaults or {}, enums or {}
    schema = copy.deepcopy(parameter_schema(flow).model_dump(exclude_unset=True))
    props = schema["properties"]
    for name in HIDDEN:
        props.pop(name, None)
    if "required" in schema:
        schema["required"] = [r for r in schema["required"] if r not in HIDDEN]
    for name, prop in list(props.items()):
        ref = prop.get("$ref")
        if ref:  # a model: each of its fields is a box, and the model's default holds theirs
            model = schema["definitions"][ref.rsplit("/", 1)[1]]
            model["properties"] = {
                f: _field(p, defaults.get(f"{name}.{f}", _MISSING), enums.get(f"{name}.{f}")) for f, p in model["properties"].items()
            }
            prop["default"] = {f: p["default"] for f, p in model["properties"].items() if "default" in p}
            model["description"] = prop.get("description", "")  # not the class docstring
            prop["title"] = TITLES.get(name, prop.get("title"))
        else:
            props[name] = _field(prop, defaults.get(name, _MISSING), enums.get(name), TITLES.get(name))
    return schema


def lifecycle_form(cfg: Params) -> dict:
    """``lifecycle``'s form: every field shows its effective value from params.yaml."""
    from prmflow.labeling.methods import LABEL_METHODS
    from reward.hybrid import process_modes

    defaults = {f"params.{field}": value_at(cfg, key) for field, key in FORM_KEYS.items()} | {"params.overrides": []}
    enums = {"params.label_method": sorted(LABEL_METHODS), "params.process_mode": process_modes()}
    form = form_schema(lifecycle, defaults, enums)
    for field, prop in form["definitions"]["LifecycleParams"]["properties"].items():
        if field in FORM_KEYS:
            prop["description"] = f"{prop.get('description', '')} (params.yaml: {FORM_KEYS[field]})"
    return form


def deployments(root: str | Path = ".", cron: str | None = None, interval: float | None = None):
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.utilities.callables import ParameterSchema

    root = str(Path(root).resolve())
    cfg = load_params(Path(root) / "params.yaml")
    cron = cron or cfg.lifecycle.schedule_cron
    strategy = ConcurrencyLimitStrategy.ENQUEUE if cfg.lifecycle.on_conflict == "wait" else ConcurrencyLimitStrategy.CANCEL_NEW
    one_at_a_time = ConcurrencyLimitConfig(limit=1, collision_strategy=strategy)
    schedule = {"cron": cron} if cron else {"interval": interval} if interval else {}
    common = {"parameters": {"root": root}, "tags": ["prmflow"], "concurrency_limit": one_at_a_time, "enforce_parameter_schema": True}
    served = [
        (lifecycle.to_deployment(name="retrain", description=DESCRIPTIONS["retrain"], **common, **schedule), lifecycle_form(cfg)),
        (
            ablate.to_deployment(name="ablation", description=DESCRIPTIONS["ablation"], **common),
            form_schema(ablate, {"rl_steps": cfg.rl.steps}),
        ),
        (stage.to_deployment(name="single-stage", description=DESCRIPTIONS["single-stage"], **common), form_schema(stage)),
    ]
    for deployment, form in served:
        # to_deployment() takes the schema from the signature and has no argument to replace it
        deployment._parameter_openapi_schema = ParameterSchema(**form)
    return [d for d, _ in served]


GRACE_S = 3.0
"""After Ctrl-C (or SIGTERM), how long Prefect may shut down cleanly before the process exits anyway."""


@contextlib.contextmanager
def stop_on_signal(grace_s: float = GRACE_S):
    """Ctrl-C / SIGTERM stop the process within ``grace_s`` seconds, whatever state it is in.

    The first signal starts Prefect's own shutdown (a ``KeyboardInterrupt``); when that does
    not finish in time (with the API gone, Prefect retries its last calls for minutes and
    ignores further Ctrl-C), the flow runs this process started are sent SIGTERM, which lets
    them put params.yaml back, and the process exits. A second signal exits at once.
    """
    stopping = threading.Event()

    def force_exit() -> None:
        print("prmflow serve: stopped", file=sys.stderr, flush=True)
        _terminate_children()
        os._exit(130)

    def handler(signum, frame):
        if stopping.is_set():
            force_exit()
        stopping.set()
        print(f"prmflow serve: stopping (within {grace_s:.0f} s; Ctrl-C again to stop now)", file=sys.stderr, flush=True)
        timer = threading.Timer(grace_s, force_exit)
        timer.daemon = True
        timer.start()
        raise KeyboardInterrupt

    # asyncio.run() (Prefect's runner) keeps a SIGINT handler that is not the default one
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _terminate_children() -> None:
    try:
        import psutil
    except ImportError:
        return
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            child.terminate()


def serve(root: str | Path = ".", cron: str | None = None, interval: float | None = None) -> None:
    from prefect import serve as prefect_serve

    served = deployments(root, cron, interval)
    print(
        f"prmflow serve: serving {', '.join(f'{d.flow_name}/{d.name}' for d in served)} to {os.environ.get('PREFECT_API_URL')}\n"
        "Keep this process running: scheduled runs and runs started from the UI (Run) or with `prefect deployment run` "
        f"execute here, in {Path(root).resolve()}. Ctrl-C stops it.",
        flush=True,
    )
    with stop_on_signal():
        prefect_serve(*served)
