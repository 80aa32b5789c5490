"""Step labels that cannot be wrong: a policy's own solutions labelled by the synthetic task's oracle.

What a PRM learns from perfect labels is the ceiling of what cleaner labels can buy it. This
writes them as stepwise supervision (TRL's PRM format, what ``prm.extra_data`` reads), so the
PRM trains on them through its own stage:

    python benchmarks/oracle_labels.py --policy models/base --out data/oracle_labels.jsonl
    python -m tasks.train_prm --policy models/base -S prm.extra_data=data/oracle_labels.jsonl \\
        -S prm.use_own_labels=false -S prm.soft_labels=false

Problems are curated *train* problems after the first ``label.num_problems`` (those the
``label`` stage labels), so the two never share a problem; solutions are sampled as the
``label`` stage samples them (``label.temperature``, ``label.max_new_tokens``). A solution cut
at the budget keeps its finished steps; one without a step is left out and counted. The PRM is
evaluated on the eval split, which no train problem is in (``curate`` checks).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def oracle_records(
    questions: list[str], prompts: list[str], texts: list[str], finished: list[bool], n: int, modulus: int
) -> tuple[list[dict], int]:
    """Stepwise records (``prompt``, ``completions``, ``labels``) of ``n`` solutions per
    question (``texts`` question-major), labelled by the oracle; and how many had no step.

    >>> oracle_records(["a=5;b=a+1;b=?"], ["a=5;b=a+1;b=?\\n"], ["b=5+1=6\\n#### 6", "b=5+1=7\\n#### 7"], [True, True], 2, 100)
    ([{'prompt': 'a=5;b=a+1;b=?\\n', 'completions': ['b=5+1=6'], 'labels': [True]}, {'prompt': 'a=5;b=a+1;b=?\\n', 'completions': ['b=5+1=7'], 'labels': [False]}], 0)
    """
    from prmflow.problems.synthetic import oracle_step_labels
    from reward.parse import join_steps, split_steps

    records, no_steps = [], 0
    for i, (text, done) in enumerate(zip(texts, finished)):
        steps = split_steps(text, "line", done)
        if not steps:
            no_steps += 1
            continue
        labels = oracle_step_labels(questions[i // n], join_steps(steps), modulus)
        records.append({"prompt": prompts[i // n], "completions": steps, "labels": labels})
    return records, no_steps


def main(argv: list[str] | None = None) -> dict:
    from prmflow import workspace
    from prmflow.config import load_params
    from prmflow.lm.models import load_causal_lm, load_tokenizer, resolve_device
    from prmflow.lm.prompts import format_prompt
    from prmflow.lm.sampling import sample

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", default=str(workspace.BASE), help="the policy whose solutions are labelled")
    ap.add_argument("--out", required=True, help="JSONL file to write (prm.extra_data)")
    ap.add_argument("--num-problems", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=4, help="solutions per problem")
    ap.add_argument("--curated", default=str(workspace.CURATED))
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("-S", "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)

    params = load_params(args.params, args.overrides)
    if params.data.source != "synthetic" or params.data.step_split != "line":
        raise SystemExit(
            "oracle_labels: the oracle reads the synthetic task's one-step-per-line solutions (data.source: synthetic, data.step_split: line)"
        )
    cfg = params.label
    skip = cfg.num_problems
    problems = workspace.load_split("train", skip + args.num_problems, args.curated)[skip:]
    if not problems:
        raise SystemExit(f"oracle_labels: {args.curated} has no train problems after the first {skip} (label.num_problems)")
    model = load_causal_lm(args.policy, params.model, resolve_device(params.model.device))
    tokenizer = load_tokenizer(args.policy)
    prompts = [format_prompt(p["question"], params.model, tokenizer) for p in problems]
    out = sample(
        model,
        tokenizer,
        prompts,
        args.samples,
        temperature=cfg.temperature,
        max_new_tokens=cfg.max_new_tokens,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
    )
    records, no_steps = oracle_records(
        [p["question"] for p in problems], prompts, out.texts, out.finished, args.samples, params.data.modulus
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("".join(json.dumps(r) + "\n" for r in records))
    steps = [x for r in records for x in r["labels"]]
    summary = {
        "problems": len(problems),
        "solutions": len(records),
        "without_steps": no_steps,
        "steps": len(steps),
        "good_step_share": sum(steps) / max(len(steps), 1),
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
