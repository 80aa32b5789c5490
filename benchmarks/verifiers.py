"""Which step scorer knows more than the policy? Step AUC of several scorers on the same fresh chains.

The ``train_prm`` stage judges its PRM against one training-free score: the policy's own token
confidence. This judges any number of scorers on the chains that stage judges on (the policy's
samples of the first ``prm.eval_problems`` eval problems, ``prm.best_of_n`` each, labelled by
the synthetic task's oracle), so a verifier with another backbone can be compared with both:

    python benchmarks/verifiers.py --policy models/base \\
        --scorer policy=models/base --scorer rl=models/champion \\
        --scorer prm=models/prm --scorer prm_rl=/tmp/prm_on_champion

A causal-LM folder is scored by its confidence, a PRM folder by the PRM
(:func:`prmflow.prm.scorers.load_scorer`). Prints one JSON line: step AUC per scorer, and how
many chains and steps it was measured on.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def scorer_specs(specs: list[str]) -> dict[str, str]:
    """``NAME=DIR`` arguments as ``{name: dir}``; a malformed or repeated one is refused.

    >>> scorer_specs(["policy=models/base", "prm=models/prm"])
    {'policy': 'models/base', 'prm': 'models/prm'}
    >>> scorer_specs(["models/base"])
    Traceback (most recent call last):
    ...
    ValueError: --scorer 'models/base': expected NAME=DIR
    """
    out: dict[str, str] = {}
    for s in specs:
        name, sep, path = s.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--scorer {s!r}: expected NAME=DIR")
        if name in out:
            raise ValueError(f"--scorer {s!r}: the name {name!r} is given twice")
        out[name] = path
    return out


def needed(chains, modulus: int) -> list[list[bool]]:
    """The oracle's "right and needed" flag of each step of every chain, cut as ``chains.oracle``
    is (a cut chain's partial last step is not judged)."""
    from prmflow.problems.synthetic import oracle_needed_steps

    questions = [p["question"] for p in chains.problems for _ in range(chains.n)]
    return [oracle_needed_steps(q, t, modulus)[: len(o)] for q, t, o in zip(questions, chains.texts, chains.oracle, strict=True)]


def auc_by_kind(scores: list[list[float]], right: list[list[bool]], needed: list[list[bool]]) -> dict[str, float | None]:
    """Step AUC of wrong steps against each kind of right step: ``needed`` (the target depends on
    it) and ``unneeded`` (a right step computing a distractor); ``None`` where a kind is absent.
    A scorer that reads a right but unneeded step as doubtful loses AUC on ``unneeded`` only.

    >>> auc_by_kind([[0.9, 0.4, 0.1]], [[True, True, False]], [[True, False, False]])
    {'needed': 1.0, 'unneeded': 1.0}
    >>> auc_by_kind([[0.9, 0.05, 0.1]], [[True, True, False]], [[True, False, False]])
    {'needed': 1.0, 'unneeded': 0.0}
    """
    from prmflow.labeling.estimators import good_auc

    flat = [(s, r, n) for ss, rr, nn in zip(scores, right, needed, strict=True) for s, r, n in zip(ss, rr, nn, strict=True)]
    out: dict[str, float | None] = {}
    for kind, keep in (("needed", True), ("unneeded", False)):
        rows = [(s, r) for s, r, n in flat if not r or n == keep]
        out[kind] = good_auc([[s for s, _ in rows]], [[r for _, r in rows]])
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=".", help="the workspace (params.yaml, data/curated)")
    ap.add_argument("--policy", default="models/base", help="the policy whose chains are judged")
    ap.add_argument("--scorer", action="append", default=[], metavar="NAME=DIR", help="a scorer to judge (repeat)")
    ap.add_argument("-S", "--set", dest="overrides", action="append", default=[], help="params.yaml override (DVC's -S syntax)")
    args = ap.parse_args(argv)

    try:
        specs = scorer_specs(args.scorer)
    except ValueError as e:
        ap.error(str(e))
    if not specs:
        ap.error("give at least one --scorer NAME=DIR")

    from prmflow.errors import reported

    with reported("verifiers"):
        import torch

        from prmflow import workspace
        from prmflow.config import load_params
        from prmflow.lm.models import load_causal_lm, load_tokenizer
        from prmflow.prm.evaluation import raw_scores, sample_chains, with_steps
        from prmflow.prm.metrics import step_metrics
        from prmflow.prm.scorers import load_scorer

        root = Path(args.root)
        params = load_params(root / "params.yaml", args.overrides)
        if params.data.source != "synthetic" or params.data.step_split != "line":
            ap.error("the oracle's step labels need data.source synthetic and data.step_split line")
        problems = workspace.load_split("eval", params.prm.eval_problems, root / workspace.CURATED)
        policy = load_causal_lm(args.policy, params.model, torch.device("cpu"))
        chains = sample_chains(policy, load_tokenizer(args.policy), problems, params)
        kinds = needed(chains, params.data.modulus) if params.data.task == "dag" else None
        result: dict = {"policy": args.policy, "chains": len(chains.texts)}
        for name, path in specs.items():
            scorer = load_scorer(path, step_split=params.data.step_split)
            raw = raw_scores(scorer, {}, chains, params.prm.batch_size_eval)["chains"]
            scores, labels, skipped = with_steps(raw, chains.oracle)
            result[f"{name}.step_auc"] = round(step_metrics(scores, labels)["auc"], 4)
            if kinds is not None:  # dag: wrong vs right-needed and wrong vs right-unneeded steps
                for kind, auc in auc_by_kind(scores, labels, with_steps(raw, kinds)[1]).items():
                    result[f"{name}.step_auc_{kind}"] = None if auc is None else round(auc, 4)
        result["steps"] = sum(len(x) for x in labels)
        result["chains_without_steps"] = skipped
        print(json.dumps(result))


if __name__ == "__main__":
    main()
