"""The problem sets benchmarks judge a policy on, and how: greedy accuracy with prmflow's sampler
and verifier, on the curated eval split and on freshly drawn problems no run has seen.

The eval split is seen by the promotion gate and by learning curves, so a gain there can be
tuned to it; :func:`fresh_problems` draws from a generator seed (:data:`FRESH_SEED`) that no
stage, test or tuning run uses, minus every curated question.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FRESH_SEED = 9001


def fresh_problems(n: int, curated, data) -> list[dict]:
    """``n`` distinct problems of ``data.task`` from :data:`FRESH_SEED`, none of them curated."""
    from prmflow.problems import synthetic

    seen = set(curated["train"]["question"]) | set(curated["eval"]["question"])
    k, out = n, []
    while len(out) < n:
        k *= 2
        drawn = [p for p in synthetic.problems(k, FRESH_SEED, data) if p["question"] not in seen]
        out = list({p["question"]: p for p in drawn}.values())
    return out[:n]


def accuracy(model, tokenizer, problems: list[dict], params) -> dict:
    """Greedy accuracy overall (``all``) and by difficulty; the model's train/eval mode is kept."""
    from prmflow.lm.prompts import format_prompt
    from prmflow.lm.sampling import sample
    from reward.outcome import verify

    prompts = [format_prompt(p["question"], params.model, tokenizer) for p in problems]
    s = sample(model, tokenizer, prompts, greedy=True, max_new_tokens=params.evaluate.max_new_tokens, batch_size=256)
    rules = params.data.solution_format().answer_rules
    right = [verify(t, p["final_answer"], rules=rules) for t, p in zip(s.texts, problems)]
    by: dict[str, list[bool]] = {}
    for p, r in zip(problems, right):
        by.setdefault(str(p["difficulty"]), []).append(r)
    return {
        "all": round(sum(right) / len(right), 4),
        **{d: round(sum(v) / len(v), 4) for d, v in sorted(by.items(), key=lambda kv: int(kv[0]))},
    }
