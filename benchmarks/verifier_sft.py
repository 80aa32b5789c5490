"""A verifier that knows more than the policy: the warm start, trained on by SFT past its target.

The warm start stops its SFT early on purpose (``warmstart.target_accuracy``: RL needs headroom).
Run on for more steps, the same SFT gives a model of the same size that solves far more of the
task: a stronger backbone for the PRM (``prm.init``) and a stronger completer for label rollouts
(``label.completer``)::

    python benchmarks/verifier_sft.py --out models/verifier --steps 2000
    python -m tasks.train_prm --policy models/base --out models/prm_verifier -S prm.init=models/verifier
    python benchmarks/verifiers.py --policy models/base --scorer policy=models/base \\
        --scorer verifier=models/verifier --scorer prm=models/prm_verifier

The SFT is the warm-start stage's own library call (``tasks.warmstart.run``) from ``--policy``,
with no stopping target, on examples drawn from ``warmstart.seed`` + 10 (not the ones the warm
start saw). It writes the model, its metrics (``sft_metrics.json``) and probe curve (``plots/``)
into ``--out`` and nothing else: no DVC output, no MLflow run, so the workspace's warm start and
its registered ``base`` stay as they are. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SEED_OFFSET = 10


def verifier_overrides(policy: str, steps: int, seed: int) -> list[str]:
    """``-S`` overrides that turn the warm-start stage into "SFT ``policy`` ``steps`` more steps".

    >>> verifier_overrides("models/base", 2000, 13)
    ['model.name_or_path=models/base', 'warmstart.enabled=true', 'warmstart.max_steps=2000', 'warmstart.target_accuracy=null', 'warmstart.seed=13']
    """
    return [
        f"model.name_or_path={policy}",
        "warmstart.enabled=true",
        f"warmstart.max_steps={steps}",
        "warmstart.target_accuracy=null",
        f"warmstart.seed={seed}",
    ]


def main(argv: list[str] | None = None) -> dict:
    from prmflow import workspace
    from prmflow.config import ConfigError, load_params
    from prmflow.lm.folders import check_model_folder

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", default=str(workspace.BASE), help="the model to train on (default: the warm start)")
    ap.add_argument("--out", required=True, help="a new folder for the verifier")
    ap.add_argument("--steps", type=int, default=2000, help="SFT steps")
    ap.add_argument("--curated", default=str(workspace.CURATED))
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("-S", "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)
    out, policy = Path(args.out), Path(args.policy)
    if args.steps < 1:
        ap.error(f"--steps must be >= 1, got {args.steps}")
    if out.exists():
        ap.error(f"--out {out}: already exists (the verifier goes to a new folder; the warm start is never overwritten)")
    if not policy.is_dir():
        ap.error(f"--policy {policy}: no model folder here")
    try:
        check_model_folder(str(policy), "--policy")  # config, weights, tokenizer: what the stage loads
        seed = load_params(args.params, args.overrides).warmstart.seed + SEED_OFFSET
        params = load_params(args.params, args.overrides + verifier_overrides(str(policy), args.steps, seed))
    except ConfigError as e:
        ap.error(str(e))

    from tasks import warmstart

    metrics = warmstart.run(params, args.curated, out_dir=out, metrics_path=out / "sft_metrics.json", plots_dir=out / "plots")
    line = {
        "policy": str(policy),
        "verifier": str(out),
        "sft_steps": metrics["sft_steps"],
        "warmstart_seed": seed,
        "probe_accuracy": metrics.get("probe_accuracy"),
        "train_loss": metrics.get("train_loss"),
        "wall_time_s": metrics.get("wall_time_s"),
    }
    print(json.dumps(line))
    return line


if __name__ == "__main__":
    main()
