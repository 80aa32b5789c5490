"""Wall time of the ``label`` and ``train_prm`` stages on the current workspace's config.

Usage (from the project root, after ``curate`` and ``warmstart``, e.g. ``dvc repro warmstart``)::

    python benchmarks/label_prm.py                       # params.yaml as is
    python benchmarks/label_prm.py -S label.rollouts=4   # DVC-style overrides for this run only
    python benchmarks/label_prm.py --skip-label          # time train_prm on the existing labels

Each stage runs as a subprocess (``python -m tasks.<stage>``), exactly as ``dvc repro`` runs it,
so the times include start-up and imports. It writes the stages' usual outputs
(``data/labels``, ``models/prm``, ``metrics/``, ``plots/``) and logs to MLflow like a real run;
set ``PRMFLOW_LOG_MODELS=0`` to skip model registration. Prints one line per stage and a JSON
summary with the stages' own reported times.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run_stage(module: str, params_file: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", module, "--params", params_file], cwd=os.getcwd(), check=True)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    import yaml

    from prmflow.config import apply_overrides, read_params_file, validate_params

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("-S", "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--skip-label", action="store_true")
    args = ap.parse_args(argv)

    raw = apply_overrides(read_params_file(args.params), args.overrides)
    validate_params(raw, args.params)  # fail before any work
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", dir=".", prefix=".bench-params-", delete=False) as f:
        yaml.safe_dump(raw, f)
    times: dict[str, float] = {}
    try:
        for stage in ("label", "train_prm"):
            if stage == "label" and args.skip_label:
                continue
            times[stage] = round(run_stage(f"tasks.{stage}", f.name), 2)
            print(f"bench: {stage}: {times[stage]:.1f} s wall", flush=True)
    finally:
        os.unlink(f.name)
    report = {"wall_s": times, "cpu_threads": os.environ.get("OMP_NUM_THREADS", "default")}
    for stage, path, keys in (
        ("label", "metrics/label.json", ("wall_time_s", "sampling.solutions.time_s", "sampling.rollouts.time_s", "num_steps")),
        ("train_prm", "metrics/prm.json", ("wall_time_s", "train_runtime_s", "sampling_time_s", "prm_eval_time_s", "train_steps")),
    ):
        if stage in times and Path(path).exists():
            m = json.loads(Path(path).read_text())
            report[stage] = {k: m[k] for k in keys if k in m}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
