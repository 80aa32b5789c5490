"""``prmflow``: the command line.

    prmflow run [-S key=value ...]          the lifecycle flow (Prefect), then a results table
    prmflow stage NAME [-S key=value ...]   one DVC stage (and stale upstream stages)
    prmflow ablate [--seeds 7 8 9]          outcome-only vs process-reward arms over fresh seeds, with intervals
    prmflow serve [--cron "0 3 * * *"]      serve deployments (lifecycle, ablate, stage) to Prefect
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

from prmflow.config import ConfigError, load_params
from prmflow.evaluation.ablation import ARMS, DEFAULT_ARMS, LENGTH_WEIGHT

UI_HINT = """
Open the UIs:
  Prefect:  .venv/bin/prefect server start        (then re-run with PREFECT_API_URL=http://127.0.0.1:4200/api)
  MLflow:   .venv/bin/mlflow ui --backend-store-uri sqlite:///{root}/mlflow.db   then open this run's stages, in order:
            {runs_url}
  DVC:      .venv/bin/dvc exp show   |   .venv/bin/dvc metrics show   |   .venv/bin/dvc plots show
"""


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="prmflow", description="RL post-training with process rewards.")
    ap.add_argument("--root", default=".", help="project root (holds params.yaml and dvc.yaml)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run the lifecycle flow")
    run.add_argument("-S", "--set-param", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    run.add_argument("--name", default=None, help="name of the DVC experiment / MLflow run")
    run.add_argument("--iterations", type=int, default=None, help="label -> PRM -> RL -> evaluate rounds (lifecycle.iterations)")
    st = sub.add_parser("stage", help="run one stage through DVC")
    st.add_argument("name")
    st.add_argument("-S", "--set-param", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    st.add_argument("--force", action="store_true", help="run even if DVC says it is up to date")
    ab = sub.add_parser("ablate", help="outcome-only vs process-reward arms over seeds (Prefect flow)")
    ab.add_argument("--arms", nargs="+", default=None, choices=list(ARMS), help=f"default: {' '.join(DEFAULT_ARMS)}")
    ab.add_argument("--seeds", nargs="+", type=int, default=None, help="default: --num-seeds drawn fresh")
    ab.add_argument("--num-seeds", type=int, default=5)
    ab.add_argument("--parallel", type=int, default=2, help="runs at a time (one torch thread each)")
    ab.add_argument("--rl-steps", type=int, default=None)
    ab.add_argument("--process-weight", type=float, default=0.5, help="rl.weights.process of the process arms")
    ab.add_argument(
        "--length-weight",
        type=float,
        default=LENGTH_WEIGHT,
        help="weight of the length arms' group length term (rl.weights.length_group or length_group_right)",
    )
    ab.add_argument("-S", "--set-param", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    sv = sub.add_parser("serve", help="serve the deployments (lifecycle, ablate, stage) to a Prefect server")
    sv.add_argument("--cron", default=None, help="schedule of lifecycle/retrain (default: lifecycle.schedule_cron)")
    sv.add_argument("--interval", type=float, default=None, help="schedule every N seconds instead of cron")
    pa = sub.add_parser("params", help="validate and print the effective params")
    pa.add_argument("-S", "--set-param", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    root = Path(args.root).resolve()
    try:
        params = load_params(root / "params.yaml", getattr(args, "overrides", []))  # fail fast, before any work
        if args.cmd == "ablate":  # and with each arm's own settings
            from flows.ablate import arm_params

            arm_params(root, args.arms or list(DEFAULT_ARMS), args.overrides, args.process_weight, args.length_weight)
    except ConfigError as e:
        print(f"prmflow: invalid params:\n{e}", file=sys.stderr)
        return 2

    if args.cmd == "params":
        print(json.dumps(params.model_dump(), indent=2))
        return 0

    if args.cmd == "stage":
        from flows import dvc_cli as dvc
        from flows.lock import RunInProgress
        from flows.stage import reproduce

        try:
            res = reproduce(
                args.name, args.overrides, root, force=args.force, on_line=print, say=lambda m: print(f"prmflow: {m}", file=sys.stderr)
            )
        except dvc.StageFailed as e:
            print(f"prmflow: {e}", file=sys.stderr)
            return 1
        except RunInProgress as e:
            print(f"prmflow: {e}", file=sys.stderr)
            return 3
        if res.get("skipped"):
            print(f"prmflow: skipped: {res['reason']}")
            return 0
        print(f"{args.name}: " + ("up to date" if res["up_to_date"] else f"ran {', '.join(res['ran'])}"))
        return 0

    if args.cmd == "ablate":
        from flows.ablate import ablate

        res = ablate(
            arms=args.arms or list(DEFAULT_ARMS),
            seeds=args.seeds,
            num_seeds=args.num_seeds,
            rl_steps=args.rl_steps,
            parallel=args.parallel,
            process_weight=args.process_weight,
            length_weight=args.length_weight,
            overrides=args.overrides,
            root=str(root),
        )
        print((Path(res["report_dir"]) / "ablation.md").read_text())
        print(f"report: {res['report_dir']}   MLflow run: {res['mlflow_run_id']}")
        return 0

    if args.cmd == "serve":
        from flows.serve import serve

        if not os.environ.get("PREFECT_API_URL"):
            print("prmflow serve: set PREFECT_API_URL (e.g. http://127.0.0.1:4200/api after `prefect server start`)", file=sys.stderr)
            return 2
        serve(root, args.cron, args.interval)
        return 0

    if args.cmd == "run":
        from flows.lifecycle import LifecycleParams, lifecycle
        from flows.lock import RunInProgress

        try:
            result = lifecycle(
                LifecycleParams(overrides=args.overrides, iterations=args.iterations), root=str(root), experiment_name=args.name
            )
        except RunInProgress as e:
            print(f"prmflow: {e}", file=sys.stderr)
            return 3
        if result.get("skipped"):
            print(f"prmflow: skipped: {result['reason']}")
            return 0
        from prmflow.evaluation.tables import format_table, iterations_markdown

        k = load_params(root / "params.yaml").evaluate.num_samples
        print(f"\nEvaluation of the {result['eval'].get('policy', 'policy')} (eval split, last iteration):")
        print(format_table(result["eval"], k))
        if len(result["table"]) > 1:
            print("\n" + iterations_markdown(result["table"]))
        print(f"\nMLflow run: {result['mlflow_run_id']}   DVC experiment: {result['dvc_experiment']}")
        from prmflow.tracking import ui_url

        print(UI_HINT.format(root=root, runs_url=ui_url(result["mlflow_runs_view"])))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
