"""How many rollouts per step prefix do step labels need? Agreement with the oracle by rollout count.

Samples ``label.samples_per_problem`` solutions of the first ``--problems`` curated train problems
from ``--policy``, then one stream of ``--max-rollouts`` rollouts per step prefix of each
wrong-answer solution, at ``label.rollout_temperature``, from ``--completer`` (default: the policy
itself, as the ``label`` stage does; another model asks whether a stronger completer labels the
policy's solutions better). For each count ``R`` (4, 8, 16, ... up to the maximum) it labels
every step from the first ``R`` rollouts of its stream (common random numbers: the counts differ
only in how many draws they read) and scores the labels against the synthetic oracle:

- ``mc_hard`` (any of ``R`` succeeded) and ``first_error`` (the search over those verdicts): the
  labels ``label.rollouts: 8`` with ``label.max_rollouts: R`` gives (adaptive rollouts keep
  drawing only while every rollout so far failed, so "any success among ``R``" is their verdict);
- the same labels against the perfect completer's (``*_vs_reachable``: what is left is the
  completer's own misses), bad-step precision and recall, and the rollouts adaptive ``mc_hard``
  reads (8 first, more only while none succeeded) relative to plain ``mc_hard`` at 8;
- beside them the trivial labellers (all bad, all good) and the perfect completer's agreement
  with the oracle: the ceiling of a completer never misled by a wrong line (a real one, thrown
  off by a wrong step the answer does not need, can pass it)::

    python benchmarks/label_rollouts.py --policy models/champion --max-rollouts 128 -S label.rollout_temperature=0.7

Pick settings on one ``data.train_seed`` and measure them on another: the problems are the
curated train split's. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from prmflow.labeling.estimators import first_error_search, label_agreement, mc_hard  # noqa: E402

BASE_ROLLOUTS = 8  # label.rollouts' default: what adaptive rollouts draw first


def labels_at(streams: dict[tuple[int, int], Sequence[bool]], num_steps: Sequence[int], correct: Sequence[bool], r: int):
    """mc_hard and first_error labels of every solution from the first ``r`` rollouts of each
    prefix's stream (``streams[(solution, step)]``; right-answer solutions are all good, with no
    stream), and the rollouts adaptive mc_hard reads: ``BASE_ROLLOUTS`` per prefix, then on to
    the first success within ``r``.

    >>> streams = {(1, 0): [False, True, False, False], (1, 1): [False] * 4}
    >>> labels_at(streams, [2, 2], [True, False], 2)
    ([[True, True], [True, False]], [[True, True], [True, False]], 4)
    >>> labels_at(streams, [2, 2], [True, False], 4)[2]  # r < 8: every prefix reads r
    8
    """
    hard, fe, read = [], [], 0
    for i, (n, ok) in enumerate(zip(num_steps, correct)):
        if ok:
            hard.append([True] * n)
            fe.append([True] * n)
            continue
        verdicts = mc_hard([streams[(i, k)][:r] for k in range(n)])
        hard.append(verdicts)
        fe.append(first_error_search(n, verdicts.__getitem__).labels)
        for k in range(n):
            s = list(streams[(i, k)][:r])
            first = s.index(True) + 1 if True in s else r
            read += max(first, BASE_ROLLOUTS) if r >= BASE_ROLLOUTS else r
    return hard, fe, read


def agreement_rows(streams, num_steps, correct, oracle, reachable, counts: Sequence[int]) -> list[dict]:
    """One row per rollout count: agreement of mc_hard and first_error with the oracle, of
    mc_hard with the perfect completer, bad-step precision/recall and the relative cost."""
    plain = sum(n for n, ok in zip(num_steps, correct) if not ok) * BASE_ROLLOUTS
    rows = []
    for r in counts:
        hard, fe, read = labels_at(streams, num_steps, correct, r)
        a = label_agreement(hard, oracle)
        rows.append(
            {
                "rollouts": r,
                "mc_hard": a["step_agreement"],
                "first_error": label_agreement(fe, oracle)["step_agreement"],
                "mc_hard_vs_reachable": label_agreement(hard, reachable)["step_agreement"],
                "first_error_vs_reachable": label_agreement(fe, reachable)["step_agreement"],
                "bad_precision": a["bad_precision"],
                "bad_recall": a["bad_recall"],
                "pred_bad_rate": a["pred_bad_rate"],
                "adaptive_rollouts_vs_8": read / plain if plain and r >= BASE_ROLLOUTS else None,
            }
        )
    return rows


def _rounded(x):
    """Floats rounded to 4 places, in nested dicts and lists."""
    if isinstance(x, float):
        return round(x, 4)
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_rounded(v) for v in x]
    return x


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=".", help="the workspace (params.yaml, data/curated)")
    ap.add_argument("--policy", required=True, help="the policy whose solutions are labelled")
    ap.add_argument("--completer", help="the model the rollouts are drawn from (default: --policy)")
    ap.add_argument("--problems", type=int, default=100, help="the first N curated train problems")
    ap.add_argument("--max-rollouts", type=int, default=64, help="rollouts per step prefix (the longest stream)")
    ap.add_argument("-S", "--set", dest="overrides", action="append", default=[], help="params.yaml override (DVC's -S syntax)")
    args = ap.parse_args(argv)
    if args.problems < 1 or args.max_rollouts < 1:
        ap.error("--problems and --max-rollouts must be at least 1")

    from prmflow.errors import reported

    with reported("label_rollouts"):
        import time

        from prmflow import workspace
        from prmflow.compute.samplers import policy_sampler
        from prmflow.config import load_params
        from prmflow.labeling.sampler import completer_policy, completer_tokenizer, rollout_sampler, sample_solutions
        from prmflow.labeling.solutions import Rollouts
        from prmflow.lm.budgets import resolve_setting
        from prmflow.lm.models import load_tokenizer

        t0 = time.time()
        root = Path(args.root)
        params = load_params(root / "params.yaml", args.overrides + ([f"label.completer={args.completer}"] if args.completer else []))
        if params.data.source != "synthetic" or params.data.step_split != "line":
            ap.error("the oracle's step labels need data.source synthetic and data.step_split line")
        tokenizer = load_tokenizer(args.policy)
        completer_dir = params.label.completer
        rollout_tokenizer = completer_tokenizer(completer_dir) if completer_dir else tokenizer
        problems = workspace.load_split("train", args.problems, root / workspace.CURATED)
        params, _ = resolve_setting(params, "label.max_new_tokens", problems, tokenizer)
        cfg, fmt = params.label, params.data.solution_format()
        with policy_sampler(params.compute, args.policy, params.model) as policy:
            sols = [s for s in sample_solutions(policy, problems, params, tokenizer)[0] if s.steps]
            with completer_policy(params, policy) as completer:
                roller = rollout_sampler(completer, problems, rollout_tokenizer, cfg)
                rollouts = Rollouts(sols, roller, args.max_rollouts, fmt, seed=cfg.seed + 1)
                jobs = [(i, k) for i, s in enumerate(sols) if not s.correct for k in range(len(s.steps))]
                streams = dict(zip(jobs, rollouts.outcomes(jobs, "rollouts")))

        oracle, reachable = [s.oracle for s in sols], [s.reachable for s in sols]
        counts = [r for r in (4, 8, 16, 32, 64, 128, 256, 512) if r < args.max_rollouts] + [args.max_rollouts]
        all_bad = label_agreement([[False] * len(o) for o in oracle], oracle)["step_agreement"]
        result = {
            "policy": args.policy,
            "completer": completer_dir or args.policy,
            "train_seed": params.data.train_seed,
            "task": params.data.task,
            "rollout_temperature": roller.temperature,
            "problems": len(problems),
            "solutions": len(sols),
            "steps": sum(map(len, oracle)),
            "solve_rate": sum(s.correct for s in sols) / len(sols),
            "all_bad": all_bad,
            "all_good": 1 - all_bad,
            "perfect_completer": label_agreement(reachable, oracle)["step_agreement"],
            "rows": agreement_rows(streams, [len(s.steps) for s in sols], [s.correct for s in sols], oracle, reachable, counts),
            "seconds": time.time() - t0,
        }
        print(json.dumps(_rounded(result)))


if __name__ == "__main__":
    main()
