"""A label stage's agreement with the oracle, with a 95% interval over problems, pooled over runs.

Steps of one problem's solutions are correlated (a wrong early step makes every later one
wrong), so an interval from the step count alone is too narrow. This resamples *problems*: each
run's ``data/labels`` rows (``labels`` against ``oracle_labels``, the stage's chosen method)
are summed per problem, and the pooled agreement is recomputed on 2,000 bootstrap draws of the
problems. Given ``RUN:BASE`` pairs (two labellings of the same solutions, e.g. adaptive rollouts
and the defaults), it also gives the paired difference ``RUN - BASE``::

    python benchmarks/label_intervals.py ws5505/data/labels:ws5505-defaults/data/labels ws6606/data/labels:...

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def problem_counts(rows: Iterable[dict], tag: str = "") -> dict[str, list[int]]:
    """Per problem (``tag`` + the row id before its ``/sample``): ``[steps agreeing with the
    oracle, steps]``.

    >>> rows = [{"id": "p1/0", "labels": [True, False], "oracle_labels": [True, True]},
    ...         {"id": "p1/1", "labels": [False], "oracle_labels": [False]}]
    >>> problem_counts(rows, "a:")
    {'a:p1': [2, 3]}
    """
    out: dict[str, list[int]] = {}
    for r in rows:
        if len(r["labels"]) != len(r["oracle_labels"]):
            raise ValueError(f"row {r['id']}: {len(r['labels'])} labels vs {len(r['oracle_labels'])} oracle labels")
        c = out.setdefault(tag + r["id"].rsplit("/", 1)[0], [0, 0])
        c[0] += sum(a == b for a, b in zip(r["labels"], r["oracle_labels"]))
        c[1] += len(r["labels"])
    return out


def bootstrap(counts: dict[str, tuple[int, int, int]], draws: int = 2000, seed: int = 0) -> dict:
    """``counts[problem] = (agree, steps, agree_base)``: the pooled agreement ``sum(agree) /
    sum(steps)`` and the paired difference from the base, each with a 95% percentile interval
    over ``draws`` resamples of the problems.

    >>> b = bootstrap({"p": (3, 4, 2), "q": (1, 4, 1)}, draws=200)
    >>> b["agreement"], b["difference"], b["problems"]
    (0.5, 0.125, 2)
    """
    keys = list(counts)
    rng = random.Random(seed)

    def stats(ks: list[str]) -> tuple[float, float]:
        steps = sum(counts[k][1] for k in ks)
        return sum(counts[k][0] for k in ks) / steps, sum(counts[k][0] - counts[k][2] for k in ks) / steps

    agree, diff = stats(keys)
    samples = [stats([rng.choice(keys) for _ in keys]) for _ in range(draws)]

    def interval(values: list[float]) -> list[float]:
        v = sorted(values)
        return [v[int(0.025 * draws)], v[min(int(0.975 * draws), draws - 1)]]

    return {
        "agreement": agree,
        "agreement_ci": interval([a for a, _ in samples]),
        "difference": diff,
        "difference_ci": interval([d for _, d in samples]),
        "problems": len(keys),
        "steps": sum(c[1] for c in counts.values()),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "runs", nargs="+", metavar="LABELS[:BASE_LABELS]", help="data/labels folders (a pair: the same solutions labelled twice)"
    )
    ap.add_argument("--draws", type=int, default=2000)
    args = ap.parse_args(argv)

    from prmflow.errors import reported

    with reported("label_intervals"):
        import datasets

        def load(path: str, tag: str) -> dict[str, list[int]]:
            return problem_counts(datasets.load_from_disk(path, keep_in_memory=True), tag)

        counts: dict[str, tuple[int, int, int]] = {}
        for i, spec in enumerate(args.runs):
            run, _, base = spec.partition(":")
            try:
                mine = load(run, f"{i}:")
                theirs = load(base, f"{i}:") if base else mine
            except ValueError as e:  # a ragged row: a bad input, said in one line
                ap.error(f"{spec}: {e}")
            if mine.keys() != theirs.keys() or any(mine[k][1] != theirs[k][1] for k in mine):
                ap.error(f"{run} and {base}: not the same solutions (problems or step counts differ)")
            counts.update({k: (a, n, theirs[k][0]) for k, (a, n) in mine.items()})
        result = bootstrap(counts, args.draws)
        print(json.dumps({k: [round(x, 4) for x in v] if isinstance(v, list) else round(v, 4) for k, v in result.items()}))


if __name__ == "__main__":
    main()
