"""Stage ``label``: automatic per-step labels for policy solutions, from rollouts.

1. Take ``label.num_problems`` curated *train* problems; sample ``label.samples_per_problem``
   solutions each from the warm-started policy; split each into steps
   (:func:`reward.parse.split_steps`). A solution with no step has nothing to label: it is
   counted (``skipped_no_steps``) and left out of the output.
2. Label every step with ``label.method`` (estimators in :mod:`tasks.step_labels`):

   - ``mc_hard`` / ``mc_soft`` (Math-Shepherd): ``label.rollouts`` rollouts from every step
     prefix. One shortcut: when the solution is correct, its last step's prefix is not rolled
     out, because the sampled solution is itself a rollout of that prefix that reached the
     answer (outcome known: that step gets the single outcome ``[True]``, soft 1.0). A wrong
     final answer does *not* show the last prefix is bad (the answer line may be the error, or
     the solution stopped early), so it is rolled out like the others. Earlier steps of a correct solution are still estimated by rollouts, as in
     Math-Shepherd, so the cost comparison with first-error search is honest.
   - ``first_error`` (OmegaPRM-like): binary search for the first bad prefix, each probe being
     ``R`` rollouts of one prefix judged good when any succeeds. A correct solution is all good
     with no probe (the solution itself shows every prefix can reach the answer). The searches
     of all solutions advance together, one batched round of probes at a time.

   With ``label.compare_methods`` the other methods label the same solutions too (all, or those
   of the first ``label.compare_num_problems`` problems; ``mc_hard`` and ``mc_soft`` share their
   rollouts, ``first_error`` spends its own), to report each one's agreement with the oracle and
   its rollouts per labelled step.
3. Oracle: for ``source == "synthetic"`` records, :func:`tasks.synthetic.oracle_step_labels`
   gives the true labels; other sources have none, and the metrics say so (``oracle_solutions``,
   ``oracle_note``).

A rollout prompt is ``format_prompt(question) + "\\n".join(steps[:k+1]) + "\\n"``; its outcome
is ``extract_answer(steps text + completion) == final_answer`` (both normalised). Rollouts of all
prefixes of all solutions go to the sampler together (sorted so that a batch holds prefixes with
similar remaining work), capped at ``label.rollout_max_new_tokens`` new tokens.

Output, ``data/labels/`` (written atomically): a ``datasets.Dataset`` (``save_to_disk``) in TRL's
stepwise-supervision format plus extras, one row per labelled solution::

    prompt         str          the formatted prompt
    completions    list[str]    the steps
    labels         list[bool]   hard labels from label.method (True = good step)
    soft_labels    list[float]  MC success fraction (mc_*); float(labels) for first_error
    method         str          label.method
    rollouts       int          rollouts label.method spent on this row
    id, question, final_answer, difficulty, source
    correct        bool         the sampled solution's final answer is right
    oracle_labels  list[bool]   empty when there is no oracle

and ``data/labels/stepwise.jsonl`` with only ``prompt``/``completions``/``labels``.
Metrics: ``metrics/label.json`` (flat keys, see :func:`label_solutions`).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

from reward.parse import extract_answer, split_steps
from tasks.config import LabelConfig, ModelConfig, Params, load_params
from tasks.step_labels import FirstErrorResult, first_error_search, good_auc, label_agreement, mc_hard, mc_soft

OUT_DIR = "data/labels"
METRICS_PATH = "metrics/label.json"
METHODS = ("mc_hard", "mc_soft", "first_error")

Progress = Callable[[int, int, str], None]
"""``progress(done, total, desc)``: sequences sampled so far in the current phase."""
RolloutFn = Callable[..., list[str]]
"""``rollout_fn(prompts, n, *, seed, desc) -> texts``: ``n`` completions per prompt,
prompt-major (completions ``i*n .. i*n+n-1`` continue prompt ``i``)."""


# ---------------------------------------------------------------------------------------------
# Solutions and rollouts


@dataclass
class Solution:
    """One sampled solution of one problem, split into steps."""

    problem: dict
    sample_index: int
    prompt: str
    text: str
    steps: list[str]
    correct: bool
    oracle: list[bool] | None
    """Oracle step labels (synthetic source only), else ``None``."""

    @property
    def target(self) -> str | None:
        return normalize_answer(str(self.problem["final_answer"]))


def normalize_answer(answer: str) -> str | None:
    """A reference final answer normalised exactly like :func:`reward.parse.extract_answer`."""
    return extract_answer(f"#### {answer}")


def is_right(text: str, target: str | None) -> bool:
    """Whether ``text``'s final answer is ``target`` (never right without a reference answer)."""
    return target is not None and extract_answer(text) == target


def steps_text(steps: Sequence[str], k: int) -> str:
    """Text of the prefix through step ``k``, ending with a newline (the next step's start)."""
    return "\n".join(steps[: k + 1]) + "\n"


def make_solutions(problems: list[dict], texts: list[str], n: int, model_cfg: ModelConfig, modulus: int = 100) -> list[Solution]:
    """Group ``n`` sampled texts per problem (prompt-major) into :class:`Solution` objects."""
    from tasks.modeling import format_prompt
    from tasks.synthetic import oracle_step_labels

    if len(texts) != len(problems) * n:
        raise ValueError(f"{len(texts)} texts for {len(problems)} problems x {n} samples")
    out = []
    for i, p in enumerate(problems):
        prompt = format_prompt(p["question"], model_cfg)
        for j, text in enumerate(texts[i * n : (i + 1) * n]):
            oracle = oracle_step_labels(p["question"], text, modulus) if p.get("source") == "synthetic" else None
            out.append(
                Solution(
                    problem=p,
                    sample_index=j,
                    prompt=prompt,
                    text=text,
                    steps=split_steps(text),
                    correct=is_right(text, normalize_answer(str(p["final_answer"]))),
                    oracle=oracle,
                )
            )
    return out


def run_rollouts(solutions: list[Solution], jobs: list[tuple[int, int]], rollout_fn: RolloutFn, rollouts: int, seed: int, desc: str) -> list[list[bool]]:
    """Outcomes of ``rollouts`` completions of each prefix ``(solution index, step k)`` in ``jobs``.

    All prefixes go to ``rollout_fn`` in one call, ordered by the reference steps still to go and
    prompt length, so that a batch holds sequences that finish at about the same time (HF
    ``generate`` runs until the longest sequence of a batch ends). Returns, per job, ``rollouts``
    booleans in job order.
    """
    if not jobs:
        return []

    def remaining(job: tuple[int, int]) -> tuple[int, int]:
        s = solutions[job[0]]
        ref_steps = len(s.problem.get("steps") or []) or len(s.steps)
        return ref_steps - job[1], len(s.prompt) + len(steps_text(s.steps, job[1]))

    order = sorted(range(len(jobs)), key=lambda j: remaining(jobs[j]))
    prompts = []
    for j in order:
        i, k = jobs[j]
        prompts.append(solutions[i].prompt + steps_text(solutions[i].steps, k))
    texts = rollout_fn(prompts, rollouts, seed=seed, desc=desc)
    if len(texts) != len(prompts) * rollouts:
        raise ValueError(f"rollout_fn returned {len(texts)} texts for {len(prompts)} prompts x {rollouts}")
    out: list[list[bool]] = [[] for _ in jobs]
    for pos, j in enumerate(order):
        i, k = jobs[j]
        s = solutions[i]
        prefix = steps_text(s.steps, k)
        out[j] = [is_right(prefix + t, s.target) for t in texts[pos * rollouts : (pos + 1) * rollouts]]
    return out


# ---------------------------------------------------------------------------------------------
# The methods, batched over solutions


def mc_outcomes(solutions: list[Solution], rollout_fn: RolloutFn, rollouts: int, seed: int) -> tuple[list[list[list[bool]]], list[int]]:
    """Math-Shepherd outcomes per solution and step, and rollouts spent per solution.

    Every step prefix gets ``rollouts`` rollouts, except the last step of a correct solution,
    whose outcome is the solution's own (``[True]``, no rollout; see the module docstring).
    """

    def rolled(s: Solution) -> int:
        return len(s.steps) - 1 if s.correct else len(s.steps)

    jobs = [(i, k) for i, s in enumerate(solutions) for k in range(rolled(s))]
    res = iter(run_rollouts(solutions, jobs, rollout_fn, rollouts, seed, "mc rollouts"))
    outcomes, spent = [], []
    for s in solutions:
        per_step = [next(res) for _ in range(rolled(s))]
        outcomes.append(per_step + [[True]] * (len(s.steps) - rolled(s)))
        spent.append(rollouts * rolled(s))
    return outcomes, spent


class _Pending(Exception):
    """Raised by a probe whose answer is not known yet: the search resumes next round."""

    def __init__(self, k: int):
        self.k = k


def first_error_labels(solutions: list[Solution], rollout_fn: RolloutFn, rollouts: int, seed: int) -> tuple[list[FirstErrorResult], list[int]]:
    """:func:`first_error_search` on every solution, probes batched across solutions.

    Each round replays every unfinished search with the probe answers known so far; a search
    that needs an unknown one stops there and its prefix joins the round's batch. Binary search
    is deterministic, so replaying is exact and costs nothing next to sampling. A probe is
    good when any of its ``rollouts`` rollouts reaches the answer. Rounds <= ceil(log2(n+1)).
    """
    known: list[dict[int, bool]] = [{} for _ in solutions]
    results: list[FirstErrorResult | None] = [None] * len(solutions)
    spent = [0] * len(solutions)
    rnd = 0
    while True:
        pending = []
        for i, s in enumerate(solutions):
            if results[i] is not None:
                continue

            def ok(k: int, memo=known[i]) -> bool:
                if k not in memo:
                    raise _Pending(k)
                return memo[k]

            try:
                results[i] = first_error_search(len(s.steps), ok, s.correct)
            except _Pending as p:
                pending.append((i, p.k))
        if not pending:
            break
        rnd += 1
        for (i, k), o in zip(pending, run_rollouts(solutions, pending, rollout_fn, rollouts, seed + rnd, f"first_error round {rnd}")):
            known[i][k] = any(o)
            spent[i] += rollouts
    return results, spent  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# Labelling and its metrics


MC_SOFT_THRESHOLD = 0.5
"""``mc_soft``'s hard ``labels`` are ``soft >= MC_SOFT_THRESHOLD`` ("more likely than not to
reach the answer"), an operating point distinct from ``mc_hard`` (``soft > 0``); the PRM can
train on ``soft_labels`` instead (``prm.soft_labels``)."""


@dataclass
class MethodLabels:
    """One method's labels for the labelled solutions ``index`` (positions in the labelled list)."""

    index: list[int]
    hard: list[list[bool]]
    soft: list[list[float]]
    rollouts: list[int]


def _compare_subset(labelled: list[Solution], num_problems: int | None) -> list[int]:
    """Positions of the solutions of the first ``num_problems`` problems (all when ``None``)."""
    if num_problems is None:
        return list(range(len(labelled)))
    keep: dict[int, None] = {}
    for s in labelled:
        if len(keep) < num_problems:
            keep.setdefault(id(s.problem))
    return [i for i, s in enumerate(labelled) if id(s.problem) in keep]


def label_solutions(solutions: list[Solution], rollout_fn: RolloutFn, cfg: LabelConfig) -> tuple[list[dict], dict]:
    """Label ``solutions``; return (output rows, metrics). Solutions without steps are skipped.

    ``label.method`` labels every solution; with ``compare_methods`` the other family (MC or
    first-error) labels the solutions of the first ``compare_num_problems`` problems (all by
    default). Each method's metrics cover the solutions it labelled.

    Metric keys (flat): per method run, ``<method>.rollouts``, ``<method>.rollouts_per_step``,
    ``<method>.pred_bad_rate``, ``<method>.solutions`` and, over the oracle-labelled solutions,
    ``<method>.step_agreement``, ``.bad_precision``, ``.bad_recall``, ``.bad_f1``,
    ``.first_error_acc`` (and ``mc_soft.good_auc``, the soft labels' ROC AUC);
    ``first_error.rollout_ratio_vs_mc`` (on the solutions both labelled) when both ran;
    ``num_problems``, ``num_solutions``, ``num_labelled_solutions``, ``skipped_no_steps``,
    ``num_steps``, ``policy_solve_rate``, ``oracle_solutions``, ``oracle.bad_rate``,
    ``labels.bad_rate`` (of the output labels); ``oracle_note`` (text) when there is no oracle.
    """
    labelled = [s for s in solutions if s.steps]
    every = list(range(len(labelled)))
    chosen_mc = cfg.method.startswith("mc_")
    subset = _compare_subset(labelled, cfg.compare_num_problems) if cfg.compare_methods else []
    mc_idx = every if chosen_mc else subset
    fe_idx = subset if chosen_mc else every
    if not cfg.compare_methods:
        mc_idx, fe_idx = (every, None) if chosen_mc else (None, every)

    by_method: dict[str, MethodLabels] = {}
    if mc_idx is not None:
        outcomes, spent = mc_outcomes([labelled[i] for i in mc_idx], rollout_fn, cfg.rollouts, cfg.seed + 1)
        soft = [mc_soft(o) for o in outcomes]
        by_method["mc_hard"] = MethodLabels(mc_idx, [mc_hard(o) for o in outcomes], soft, spent)
        by_method["mc_soft"] = MethodLabels(mc_idx, [[v >= MC_SOFT_THRESHOLD for v in s] for s in soft], soft, spent)
    if fe_idx is not None:
        results, spent = first_error_labels([labelled[i] for i in fe_idx], rollout_fn, cfg.rollouts, cfg.seed + 1000)
        hard = [r.labels for r in results]
        by_method["first_error"] = MethodLabels(fe_idx, hard, [[float(x) for x in h] for h in hard], spent)
    if not cfg.compare_methods:  # the MC pair shares rollouts, but report only the chosen one
        by_method = {cfg.method: by_method[cfg.method]}

    def bad_rate(labels: list[list[bool]]) -> float:
        n = sum(map(len, labels))
        return sum(not x for ls in labels for x in ls) / n if n else 0.0

    metrics: dict = {
        "num_problems": len({id(s.problem) for s in solutions}),
        "num_solutions": len(solutions),
        "num_labelled_solutions": len(labelled),
        "skipped_no_steps": len(solutions) - len(labelled),
        "num_steps": sum(len(s.steps) for s in labelled),
        "policy_solve_rate": sum(s.correct for s in solutions) / len(solutions) if solutions else 0.0,
        "oracle_solutions": sum(s.oracle is not None for s in labelled),
    }
    if not metrics["oracle_solutions"]:
        metrics["oracle_note"] = "no oracle: no labelled solution of a 'synthetic' source, so no agreement metrics"
    else:
        metrics["oracle.bad_rate"] = bad_rate([s.oracle for s in labelled if s.oracle is not None])
    for m, ml in by_method.items():
        steps = sum(len(labelled[i].steps) for i in ml.index)
        metrics[f"{m}.solutions"] = len(ml.index)
        metrics[f"{m}.rollouts"] = sum(ml.rollouts)
        metrics[f"{m}.rollouts_per_step"] = sum(ml.rollouts) / steps if steps else 0.0
        metrics[f"{m}.pred_bad_rate"] = bad_rate(ml.hard)
        with_oracle = [j for j, i in enumerate(ml.index) if labelled[i].oracle is not None]
        if not with_oracle:
            continue
        oracle = [labelled[ml.index[j]].oracle for j in with_oracle]
        agree = label_agreement([ml.hard[j] for j in with_oracle], oracle)
        for key in ("step_agreement", "bad_precision", "bad_recall", "bad_f1", "first_error_acc"):
            metrics[f"{m}.{key}"] = agree[key]
        if m == "mc_soft":
            auc = good_auc([ml.soft[j] for j in with_oracle], oracle)
            if auc is not None:
                metrics["mc_soft.good_auc"] = auc
    if "first_error" in by_method and "mc_hard" in by_method:
        both = set(by_method["first_error"].index) & set(by_method["mc_hard"].index)

        def spent_on(ml: MethodLabels) -> int:
            return sum(r for i, r in zip(ml.index, ml.rollouts) if i in both)

        mc_total = spent_on(by_method["mc_hard"])
        metrics["first_error.rollout_ratio_vs_mc"] = spent_on(by_method["first_error"]) / mc_total if mc_total else 0.0

    chosen = by_method[cfg.method]  # labelled every solution: chosen.index == every
    rows = []
    for i, s in enumerate(labelled):
        p = s.problem
        rows.append(
            {
                "id": f"{p.get('id', '')}/{s.sample_index}",
                "prompt": s.prompt,
                "completions": s.steps,
                "labels": chosen.hard[i],
                "soft_labels": chosen.soft[i],
                "method": cfg.method,
                "rollouts": chosen.rollouts[i],
                "question": p["question"],
                "final_answer": str(p["final_answer"]),
                "difficulty": int(p.get("difficulty") or 0),
                "source": str(p.get("source") or ""),
                "correct": s.correct,
                "oracle_labels": s.oracle if s.oracle is not None else [],
            }
        )
    metrics["labels.bad_rate"] = bad_rate(chosen.hard)
    return rows, metrics


def comparison_table(metrics: dict) -> str:
    """Markdown table of the methods' agreement with the oracle and their cost."""
    cols = ("step_agreement", "bad_precision", "bad_recall", "bad_f1", "first_error_acc", "rollouts_per_step")
    lines = ["| method | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for m in METHODS:
        if f"{m}.rollouts" not in metrics:
            continue
        cells = [f"{metrics[f'{m}.{c}']:.3f}" if f"{m}.{c}" in metrics else "n/a" for c in cols]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    notes = [f"solutions labelled: {metrics['num_labelled_solutions']} (skipped, no steps: {metrics['skipped_no_steps']}); "
             f"policy solve rate {metrics['policy_solve_rate']:.3f}"]
    if "oracle_note" in metrics:
        notes.append(metrics["oracle_note"])
    if "first_error.rollout_ratio_vs_mc" in metrics:
        notes.append(f"first_error rollouts / mc rollouts: {metrics['first_error.rollout_ratio_vs_mc']:.3f}")
    return "\n".join(lines + [""] + notes) + "\n"


# ---------------------------------------------------------------------------------------------
# Sampling from the policy


@contextlib.contextmanager
def _progress_bar(total: int, desc: str, progress: Progress | None) -> Iterator[Callable[[int], None]]:
    """A ``tick(n_finished)`` callback: ``progress(done, total, desc)`` if given, else tqdm on stderr."""
    if progress is not None:
        done = 0

        def tick(n: int) -> None:
            nonlocal done
            done += n
            progress(done, total, desc)

        progress(0, total, desc)
        yield tick
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, desc=desc, unit="seq", file=sys.stderr, mininterval=2.0, leave=False) as bar:
        yield bar.update


class PolicySampler:
    """A :data:`RolloutFn` over :func:`tasks.sampling.sample`, counting sequences, tokens and time."""

    def __init__(self, model, tokenizer, cfg: LabelConfig, max_new_tokens: int, progress: Progress | None = None):
        self.model, self.tokenizer, self.cfg = model, tokenizer, cfg
        self.max_new_tokens = max_new_tokens
        self.progress = progress
        self.sequences = self.tokens = 0
        self.seconds = 0.0

    def __call__(self, prompts: list[str], n: int, *, seed: int, desc: str = "sampling") -> list[str]:
        from tasks.sampling import sample

        t0 = time.perf_counter()
        with _progress_bar(len(prompts) * n, desc, self.progress) as tick:
            out = sample(
                self.model,
                self.tokenizer,
                prompts,
                n,
                temperature=self.cfg.temperature,
                max_new_tokens=self.max_new_tokens,
                batch_size=self.cfg.batch_size,
                seed=seed,
                progress=tick,
            )
        self.seconds += time.perf_counter() - t0
        self.sequences += len(out.texts)
        self.tokens += sum(out.num_tokens)
        return out.texts

    def stats(self, prefix: str) -> dict[str, float]:
        s = max(self.seconds, 1e-9)
        return {
            f"{prefix}.sequences": self.sequences,
            f"{prefix}.tokens": self.tokens,
            f"{prefix}.time_s": round(self.seconds, 3),
            f"{prefix}.tokens_per_s": round(self.tokens / s, 1),
            f"{prefix}.sequences_per_s": round(self.sequences / s, 1),
        }


def rollout_token_budget(problems: list[dict], tokenizer, cfg: LabelConfig) -> int:
    """New-token cap for rollouts: ``label.rollout_max_new_tokens``, or by default the longest
    reference answer (steps + answer line) in tokens, +25% and +4 for slack and EOS, capped at
    ``label.max_new_tokens``. A rollout continues a prefix, so it needs less than a whole
    solution; one that runs past this is almost surely not converging on the answer."""
    if cfg.rollout_max_new_tokens is not None:
        return cfg.rollout_max_new_tokens
    longest = max((len(tokenizer(p["answer"], add_special_tokens=False)["input_ids"]) for p in problems), default=0)
    return min(cfg.max_new_tokens, math.ceil(1.25 * longest) + 4)


def load_train_problems(curated_dir: str | Path, n: int) -> list[dict]:
    """The first ``n`` curated train problems."""
    from tasks.curate import load_curated

    ds = load_curated(curated_dir)["train"]
    return list(ds.select(range(min(n, len(ds)))))


def _save(rows: list[dict], out_dir: str | Path) -> None:
    import datasets

    from tasks.io import write_jsonl

    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "prompt": datasets.Value("string"),
            "completions": datasets.List(datasets.Value("string")),
            "labels": datasets.List(datasets.Value("bool")),
            "soft_labels": datasets.List(datasets.Value("float32")),
            "method": datasets.Value("string"),
            "rollouts": datasets.Value("int64"),
            "question": datasets.Value("string"),
            "final_answer": datasets.Value("string"),
            "difficulty": datasets.Value("int64"),
            "source": datasets.Value("string"),
            "correct": datasets.Value("bool"),
            "oracle_labels": datasets.List(datasets.Value("bool")),
        }
    )
    from tasks.io import atomic_dir

    ds = datasets.Dataset.from_list(rows, features=features)
    with atomic_dir(out_dir) as tmp:
        ds.save_to_disk(str(tmp))
        write_jsonl(tmp / "stepwise.jsonl", ({k: r[k] for k in ("prompt", "completions", "labels")} for r in rows))


def load_labels(out_dir: str | Path = OUT_DIR):
    """The labelled dataset written by :func:`label` (a ``datasets.Dataset``)."""
    import datasets

    return datasets.load_from_disk(str(out_dir))


def label(params: Params, policy_dir="models/base", curated_dir="data/curated", out_dir=OUT_DIR, metrics_path=METRICS_PATH, progress: Progress | None = None) -> dict:
    """Run the stage: sample, label, write ``out_dir`` and ``metrics_path``; return the metrics."""
    from tasks.io import atomic_write_json
    from tasks.modeling import count_parameters, load_causal_lm, load_tokenizer

    t0 = time.time()
    cfg = params.label
    model = load_causal_lm(policy_dir, params.model)
    tokenizer = load_tokenizer(policy_dir)
    problems = load_train_problems(curated_dir, cfg.num_problems)
    if not problems:
        raise ValueError(f"{curated_dir}: no train problems to label")

    solver = PolicySampler(model, tokenizer, cfg, cfg.max_new_tokens, progress)
    from tasks.modeling import format_prompt

    prompts = [format_prompt(p["question"], params.model) for p in problems]
    texts = solver(prompts, cfg.samples_per_problem, seed=cfg.seed, desc="solutions")
    solutions = make_solutions(problems, texts, cfg.samples_per_problem, params.model, params.data.modulus)

    budget = rollout_token_budget(problems, tokenizer, cfg)
    roller = PolicySampler(model, tokenizer, cfg, budget, progress)
    rows, metrics = label_solutions(solutions, roller, cfg)
    _save(rows, out_dir)

    metrics.update(solver.stats("sampling.solutions"))
    metrics.update(roller.stats("sampling.rollouts"))
    metrics.update(
        {
            "method": cfg.method,
            "rollout_max_new_tokens": budget,
            "policy_parameters": count_parameters(model),
            "wall_time_s": round(time.time() - t0, 2),
        }
    )
    atomic_write_json(metrics_path, metrics)
    return metrics


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m tasks.label", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--policy", default="models/base")
    args = ap.parse_args(argv)
    params = load_params(args.params)

    import mlflow

    from tasks import tracking

    with tracking.stage_run("label", params.label.model_dump()):
        metrics = label(params, policy_dir=args.policy)
        mlflow.log_metrics(tracking.metric_dict(metrics))
        table = comparison_table(metrics)
        mlflow.log_text(table, "label_methods.md")
    print(table, end="")


if __name__ == "__main__":
    main()
