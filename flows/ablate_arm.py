"""One ablation run, in a process of its own: ``python -m flows.ablate_arm --arm A --seed S ...``.

RL from the warm start (``models/base``) with params.yaml + the ablation's overrides + the arm's
(:data:`prmflow.evaluation.ablation.ARMS`) + ``rl.seed``, through the same library call as the
``train_policy`` stage but into the run's own folder (outside DVC, so that arms run side by
side); then the final policy's greedy results per eval problem, and the PRM's step AUC on the
policy's own samples (oracle labels; synthetic data only). ``--start`` evaluates the warm start
itself instead (the start of every arm). Writes ``<out>/result.json`` (an
:class:`~prmflow.evaluation.ablation.ArmRun`). One torch thread: the flow runs several at once.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import time
from pathlib import Path

import torch

from prmflow import workspace
from prmflow.compute.samplers import policy_sampler
from prmflow.config import Params, load_params
from prmflow.errors import reported
from prmflow.evaluation.ablation import ARMS, LENGTH_WEIGHT, ArmRun, arm_overrides
from prmflow.evaluation.policy import Evaluation, run_policy
from prmflow.io import atomic_write_json
from prmflow.prm.metrics import step_metrics
from prmflow.prm.oracle import OracleScorer
from prmflow.prm.scorers import load_scorer
from tasks import exit_done, train_policy


def read_curve(path: Path) -> list[tuple[int, float]]:
    """(RL step, greedy eval accuracy) rows of train_policy's learning curve CSV."""
    rows = csv.DictReader(io.StringIO(path.read_text()))
    return [(int(r["step"]), float(r["eval_greedy_acc"])) for r in rows if r.get("eval_greedy_acc")]


def own_sample_auc(ev: Evaluation, prm_dir: Path, params: Params) -> float | None:
    """Step AUC of the PRM in ``prm_dir`` on the evaluated policy's own sampled solutions, against
    the synthetic oracle's step labels (``None``: no PRM, no oracle, or one class only)."""
    if params.data.source != "synthetic" or not workspace.has_model(prm_dir):
        return None
    scorer = load_scorer(prm_dir, step_split=params.data.step_split)
    prompts, texts, done = [], [], []
    for prompt, samples, finished in zip(ev.prompts, ev.sample_texts, ev.sample_done()):
        prompts += [prompt] * len(samples)
        texts += samples
        done += finished
    scores = scorer.score(prompts, texts, finished=done)
    oracle = OracleScorer({q: p["question"] for q, p in zip(ev.prompts, ev.problems)}, params.data.modulus, params.data.step_split)
    labels = [[x == 1.0 for x in row] for row in oracle.score(prompts, texts, finished=done)]
    return step_metrics(scores, labels)["auc"]


def evaluate(policy_dir: Path, root: Path, params: Params) -> tuple[Evaluation, float | None]:
    """The policy's greedy and sampled solutions on the eval problems, and the PRM's AUC on them."""
    problems = workspace.load_split("eval", params.evaluate.num_problems, root / workspace.CURATED)
    with policy_sampler(params.compute, policy_dir, params.model) as policy:
        ev = run_policy(policy, problems, params.evaluate, params.model, fmt=params.data.solution_format())
    return ev, own_sample_auc(ev, root / workspace.PRM, params)


def run_arm(
    root: Path,
    arm: str | None,
    seed: int,
    overrides: list[str],
    out: Path,
    process_weight: float = 0.5,
    length_weight: float = LENGTH_WEIGHT,
) -> ArmRun:
    """Train (unless ``arm`` is ``None``: the warm start itself) and evaluate; write and return the run."""
    root, out, t0 = Path(root).resolve(), Path(out), time.time()
    own = arm_overrides(arm, process_weight, length_weight) if arm else []
    params = load_params(root / "params.yaml", list(overrides) + own + [f"rl.seed={seed}"])
    base = root / workspace.BASE
    curve: list[tuple[int, float]] = []
    policy = base
    if arm is not None:
        train_policy.run(
            params,
            policy_dir=base,
            prm_dir=root / workspace.PRM,
            curated_dir=root / workspace.CURATED,
            out_dir=out / "policy",
            ckpt_dir=out / "ckpt",
            metrics_path=out / "train_policy.json",
            plots_dir=out / "plots",
        )
        curve, policy = read_curve(out / "plots" / "learning_curve.csv"), out / "policy"
    ev, auc = evaluate(policy, root, params)
    result = ArmRun(
        arm=arm or "start",
        seed=seed,
        curve=curve,
        correct=ev.greedy_correct(),
        tokens=list(ev.greedy_tokens),
        steps=ev.greedy_steps(),
        unneeded=ev.greedy_unneeded_steps() or [],
        difficulty=[int(p.get("difficulty") or 0) for p in ev.problems],
        prm_auc={} if auc is None else {"end": auc},
        wall_s=round(time.time() - t0, 1),
    )
    atomic_write_json(out / "result.json", result.to_dict())
    return result


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=".")
    which = ap.add_mutually_exclusive_group(required=True)
    which.add_argument("--arm", choices=list(ARMS))
    which.add_argument("--start", action="store_true", help="evaluate the warm start (no RL)")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--process-weight", type=float, default=0.5, help="rl.weights.process of the process arms")
    ap.add_argument(
        "--length-weight",
        type=float,
        default=LENGTH_WEIGHT,
        help="weight of the length arms' group length term (rl.weights.length_group or length_group_right)",
    )
    ap.add_argument("-S", "--set", dest="overrides", action="append", default=[], help="params.yaml override (DVC's -S syntax)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    with reported("ablate_arm"):
        arm = None if args.start else args.arm
        r = run_arm(Path(args.root), arm, args.seed, args.overrides, Path(args.out), args.process_weight, args.length_weight)
    print(json.dumps({"arm": r.arm, "seed": r.seed, "final_acc": sum(r.correct) / max(1, len(r.correct)), "wall_s": r.wall_s}))


if __name__ == "__main__":
    main()
    exit_done()
