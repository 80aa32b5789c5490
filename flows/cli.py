"""``prmflow``: the command line.

    prmflow run [-S key=value ...]          the lifecycle flow (Prefect), then a results table
    prmflow stage NAME [-S key=value ...]   one DVC stage (and stale upstream stages)
    prmflow params [-S key=value ...]       validate params.yaml (+ overrides) and print it

Overrides use DVC's ``-S`` syntax and are written to ``params.yaml`` (as ``dvc exp run -S``
does), so every run can be reproduced with ``dvc repro``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

UI_HINT = """
Open the UIs:
  Prefect:  .venv/bin/prefect server start        (then re-run with PREFECT_API_URL=http://127.0.0.1:4200/api)
  MLflow:   .venv/bin/mlflow ui --backend-store-uri sqlite:///{root}/mlflow.db   (http://127.0.0.1:5000)
  DVC:      .venv/bin/dvc exp show   |   .venv/bin/dvc metrics show   |   .venv/bin/dvc plots show
"""


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="prmflow", description="RL post-training with process rewards.")
    ap.add_argument("--root", default=".", help="project root (holds params.yaml and dvc.yaml)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run the lifecycle flow")
    run.add_argument("-S", "--set-param", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    run.add_argument("--name", default=None, help="name of the DVC experiment / MLflow run")
    st = sub.add_parser("stage", help="run one stage through DVC")
    st.add_argument("name")
    st.add_argument("-S", "--set-param", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    st.add_argument("--force", action="store_true", help="run even if DVC says it is up to date")
    pa = sub.add_parser("params", help="validate and print the effective params")
    pa.add_argument("-S", "--set-param", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    root = Path(args.root).resolve()
    from tasks.config import ConfigError, load_params

    try:
        params = load_params(root / "params.yaml", args.overrides)  # fail fast, before any work
    except ConfigError as e:
        print(f"prmflow: invalid params:\n{e}", file=sys.stderr)
        return 2

    if args.cmd == "params":
        print(json.dumps(params.model_dump(), indent=2))
        return 0

    if args.cmd == "stage":
        from flows import dvc

        dvc.set_params(args.overrides, root)
        try:
            res = dvc.repro(args.name, root=root, on_line=print, force=args.force)
        except dvc.StageFailed as e:
            print(f"prmflow: {e}", file=sys.stderr)
            return 1
        print(f"{args.name}: " + ("up to date" if res.up_to_date else f"ran {', '.join(res.ran)}"))
        return 0

    if args.cmd == "run":
        from flows.lifecycle import LifecycleParams, lifecycle

        result = lifecycle(LifecycleParams(overrides=args.overrides), root=str(root), experiment_name=args.name)
        from tasks.evaluate import format_table

        print("\nEvaluation of the warm-started policy (eval split):")
        print(format_table(result["eval"], load_params(root / "params.yaml").evaluate.num_samples))
        print(f"\nMLflow run: {result['mlflow_run_id']}   DVC experiment: {result['dvc_experiment']}")
        print(UI_HINT.format(root=root))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
