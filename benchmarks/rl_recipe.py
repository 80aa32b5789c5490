"""One RL run of ``train_policy`` (outcome-only unless told otherwise) with its learning curve on
the eval split AND on freshly drawn problems no run ever saw (an unused generator seed).

The run goes through the stage's own code (``tasks.train_policy.run``) in chunks of
``--eval-every`` steps, resuming from its checkpoint each time (the resume path is tested to
equal an uninterrupted run), and evaluates the checkpoint between chunks. One JSON line per run
is appended to ``--out``.

    python benchmarks/rl_recipe.py --name lr1e-4 -S rl.learning_rate=1e-4 -S rl.steps=100
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evalsets import ROOT, accuracy, fresh_problems  # noqa: E402


def main() -> None:
    import torch

    from prmflow.config import load_params
    from prmflow.lm.models import load_causal_lm, load_tokenizer
    from prmflow.workspace import load_curated
    from tasks.train_policy import run

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", required=True)
    ap.add_argument("--base", default=str(ROOT / "models/base"))
    ap.add_argument("--curated", default=str(ROOT / "data/curated"))
    ap.add_argument("--eval-every", type=int, default=20)
    ap.add_argument("--eval-problems", type=int, default=400)
    ap.add_argument("--fresh", type=int, default=700)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="rl_runs.jsonl")
    ap.add_argument("-S", dest="overrides", action="append", default=[])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    params = load_params(
        ROOT / "params.yaml", ["rl.weights.process=0.0", "rl.eval_every=0", "rl.checkpoint_every=1000000", *args.overrides]
    )
    curated = load_curated(args.curated)
    sets = {"eval": list(curated["eval"])[: args.eval_problems], "fresh": fresh_problems(args.fresh, curated, params.data)}
    work = Path(tempfile.mkdtemp(prefix=f"rl-{args.name}-"))
    tok = load_tokenizer(args.base)
    curve, t_train = [], 0.0
    base = load_causal_lm(args.base, params.model)
    curve.append({"step": 0, **{k: accuracy(base, tok, v, params) for k, v in sets.items()}})
    print(json.dumps(curve[-1]), flush=True)
    done = 0
    while done < params.rl.steps:
        t0 = time.time()
        res = run(
            params,
            policy_dir=args.base,
            prm_dir=None,
            curated_dir=args.curated,
            out_dir=work / "policy",
            ckpt_dir=work / "ckpt",
            metrics_path=work / "m.json",
            plots_dir=work / "plots",
            max_steps_this_run=args.eval_every,
        )
        t_train += time.time() - t0
        done = res.get("stopped_at", params.rl.steps)
        model = load_causal_lm(work / "ckpt", params.model)
        curve.append({"step": done, **{k: accuracy(model, tok, v, params) for k, v in sets.items()}, "train_s": round(t_train, 1)})
        print(json.dumps(curve[-1]), flush=True)
    row = {"name": args.name, "overrides": args.overrides, "threads": args.threads, "train_s": round(t_train, 1), "curve": curve}
    with open(args.out, "a") as f:
        f.write(json.dumps(row) + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
