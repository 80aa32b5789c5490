"""One ablation table from the runs of several ablations over the same seeds and warm start.

    python benchmarks/ablation_merge.py --out reports/ablation/followup \\
        RUNS_DIR [RUNS_DIR[:SUFFIX] ...]

Each RUNS_DIR holds ``<arm>-s<seed>/result.json`` (``prmflow ablate`` writes them to
``reports/ablation/runs/``; ``python -m flows.ablate_arm`` to its ``--out``). A ``:SUFFIX``
renames that folder's arms (``oracle_step_min`` -> ``oracle_step_min_w0.1``), so that a re-run
of an arm with other settings (``--process-weight``) sits beside the original. The table is
:func:`prmflow.evaluation.ablation.summarize`'s, with ``outcome_only`` as the baseline: every
difference is paired by seed and problem, which holds only when the folders share seeds, warm
start and eval problems (checked: same seeds per arm as the baseline, same problem count).
Writes ``<out>.json`` and ``<out>.md``; with ``--mlflow ROOT`` also logs the table as an
``ablate-merge`` run of ROOT's MLflow experiment (a child run per arm and seed, as ``prmflow
ablate`` logs its own), so follow-ups run one by one sit beside the ablation in the UI.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prmflow.evaluation.ablation import BASELINE, ArmRun, markdown, summarize  # noqa: E402


def load_runs(spec: str) -> list[ArmRun]:
    folder, _, suffix = spec.partition(":")
    start = Path(folder) / "start" / "result.json"  # the warm start's PRM AUC is every run's start
    start_auc = json.loads(start.read_text()).get("prm_auc", {}).get("end") if start.exists() else None
    runs = []
    for path in sorted(Path(folder).glob("*-s*/result.json")):
        run = ArmRun.from_dict(json.loads(path.read_text()))
        run.arm += suffix
        if start_auc is not None:
            run.prm_auc["start"] = start_auc
        runs.append(run)
    if not runs:
        raise SystemExit(f"ablation_merge: no <arm>-s<seed>/result.json under {folder}")
    return runs


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="RUNS_DIR[:SUFFIX]")
    ap.add_argument("--out", required=True, help="output path without extension")
    ap.add_argument("--mlflow", metavar="ROOT", help="also log to the MLflow store of this project folder")
    args = ap.parse_args(argv)
    runs = [r for spec in args.runs for r in load_runs(spec)]
    base_seeds = sorted(r.seed for r in runs if r.arm == BASELINE)
    if not base_seeds:
        raise SystemExit(f"ablation_merge: no {BASELINE} runs: nothing to pair the arms with")
    for arm in sorted({r.arm for r in runs}):
        seeds = sorted(r.seed for r in runs if r.arm == arm)
        if seeds != base_seeds:
            raise SystemExit(f"ablation_merge: {arm} ran seeds {seeds}, {BASELINE} {base_seeds}: not paired")
    if len({len(r.correct) for r in runs}) != 1:
        raise SystemExit("ablation_merge: the runs were evaluated on different numbers of problems")
    summary = summarize(runs)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{out}.json").write_text(json.dumps({"seeds": base_seeds, "sources": args.runs, "summary": summary}, indent=2) + "\n")
    text = f"Seeds {base_seeds}; runs from {', '.join(args.runs)}. Cells: mean [95% interval over seeds and problems].\n\n" + markdown(
        summary
    )
    Path(f"{out}.md").write_text(text)
    print(text)
    if args.mlflow:
        print(f"ablation_merge: MLflow run {log_to_mlflow(args.mlflow, runs, summary, base_seeds, args.runs, out)} in {args.mlflow}")


def log_to_mlflow(root: str, runs: list[ArmRun], summary: dict, seeds: list[int], sources: list[str], out: Path) -> str:
    """The merged table as an ``ablate-merge`` run of ``root``'s experiment, with a child run per
    (arm, seed); returns its run id."""
    from mlflow import MlflowClient

    from flows.ablate import log_arm_run
    from prmflow import tracking

    exp_id = tracking.setup(root)
    client = MlflowClient()
    top = client.create_run(exp_id, run_name="ablate-merge", tags=tracking.run_tags())
    run_id = top.info.run_id
    client.log_param(run_id, "seeds", json.dumps(seeds))
    client.log_param(run_id, "arms", json.dumps(sorted(summary)))
    client.log_param(run_id, "sources", json.dumps(sources)[:6000])
    for r in runs:
        log_arm_run(client, exp_id, run_id, r)
    for arm, row in summary.items():
        client.log_metric(run_id, f"{arm}/final_acc", row["final_acc"]["mean"] or 0.0)
    client.log_artifact(run_id, str(Path(f"{out}.md")))
    client.log_artifact(run_id, str(Path(f"{out}.json")))
    client.set_terminated(run_id, "FINISHED")
    return run_id


if __name__ == "__main__":
    main()
