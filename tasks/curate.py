"""Stage ``curate``: read the train and eval problems, clean them, and save ``data/curated``.

The rules and their order are in :mod:`prmflow.problems.curation`; every record dropped is
counted in ``metrics/curate.json`` and every rejected one is in ``data/rejects/rejects.jsonl``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from prmflow import tracking, workspace
from prmflow.config import Params, load_params
from prmflow.errors import reported
from prmflow.io import atomic_write_json, write_jsonl
from prmflow.problems.curation import COUNT_KEYS, curate_splits, difficulty_histogram
from prmflow.resources import usage
from tasks import exit_done

__all__ = ["COUNT_KEYS", "run", "main"]


def run(params: Params, out_dir=workspace.CURATED, rejects_dir=workspace.REJECTS, metrics_path=workspace.METRICS["curate"]) -> dict:
    """Curate ``params.data`` into ``out_dir`` (train, eval) and ``rejects_dir``; return the metrics."""
    t0 = time.time()
    splits, counts, rejects = curate_splits(params.data)
    workspace.save_curated(splits, out_dir)
    write_jsonl(Path(rejects_dir) / "rejects.jsonl", rejects)
    metrics = {
        "source": params.data.source,
        **{s: {**counts[s], "difficulty": difficulty_histogram(recs)} for s, recs in splits.items()},
        **({"incoming": counts["incoming"]} if "incoming" in counts else {}),
        **usage(t0),
    }
    atomic_write_json(metrics_path, metrics)
    return metrics


def summary(metrics: dict, params: Params) -> str:
    t, e = metrics["train"], metrics["eval"]
    d = params.data
    rejected = t["rejected"] + e["rejected"] + metrics.get("incoming", {}).get("rejected", 0)
    line = (
        f"curate: {metrics['source']}: train {t['kept']}/{d.num_train}, eval {e['kept']}/{d.num_eval}; "
        f"rejected {rejected}, duplicates {t['duplicates'] + e['duplicates']}, "
        f"contaminated {t['contaminated']}, filtered by difficulty {t['filtered_difficulty'] + e['filtered_difficulty']}"
    )
    line += f" (see {workspace.REJECTS}/rejects.jsonl)" if rejected else ""
    ignored = metrics.get("incoming", {}).get("ignored", [])
    return line + (f"; not read from {d.incoming_dir} (not .jsonl/.json/.parquet): {', '.join(ignored)}" if ignored else "")


def main(argv: list[str] | None = None) -> None:
    with reported("curate"):
        ap = argparse.ArgumentParser(
            prog="python -m tasks.curate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        ap.add_argument("--params", default="params.yaml")
        args = ap.parse_args(argv)
        params = load_params(args.params)
        with tracking.stage_run("curate", params.data.model_dump(), __doc__):
            import mlflow

            metrics = run(params)
            mlflow.log_metrics(tracking.metric_dict(metrics))
            if Path(workspace.REJECTS, "rejects.jsonl").stat().st_size:
                mlflow.log_artifact(str(Path(workspace.REJECTS) / "rejects.jsonl"))
        print(summary(metrics, params))


if __name__ == "__main__":
    main()
    exit_done()
