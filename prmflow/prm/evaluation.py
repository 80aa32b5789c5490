"""Evaluating step scorers: on held-out labels, on fresh policy chains against the oracle, and
as best-of-N rerankers.

Every scorer (the learned PRM and the training-free policy confidence) is judged the same way:
step ROC-AUC and bad-step F1, ProcessBench first-error F1 (:mod:`prmflow.prm.metrics`), and
best-of-N reranking of ``prm.best_of_n`` samples per eval problem against majority vote, a
random pick and pass@N.

Which data each number is on. The held-out prompts are split again, by prompt
(:func:`calibration_split`): the *calibration* records serve only to choose the threshold
(unless ``prm.threshold`` fixes it) and are reported on nowhere; ``<scorer>.test``,
``.test_reach`` and ``.test_oracle`` are on the *test* records only. ``<scorer>.chains`` are on
fresh policy samples of eval problems, against the oracle; no choice is made on them. Chains
without a step are left out of the step metrics and the ROC, and counted:
``<scorer>.chains.num_samples = .num_scored + .skipped_no_steps``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from prmflow.config import Params, PrmConfig
from prmflow.lm.prompts import format_prompt
from prmflow.lm.sampling import sample
from prmflow.prm.metrics import best_of_n, best_threshold, first_error_f1, reliability, roc_curve, step_metrics
from prmflow.prm.scorers import calibrate
from prmflow.prm.training import split_by_prompt
from prmflow.problems.synthetic import oracle_step_labels
from reward.parse import SolutionFormat, reference_answer


@dataclass
class Chains:
    """``n`` policy samples for each eval problem, with oracle step labels where known."""

    problems: list[dict]
    prompts: list[str]
    texts: list[str]
    n: int
    oracle: list[list[bool]] | None
    finished: list[bool] | None = None
    """Which samples ended with EOS (``None``: all); a cut one's partial last step is not scored."""
    fmt: SolutionFormat = SolutionFormat()
    """How answers are read and steps found (``data.answer_rules``, ``data.step_split``)."""

    def groups(self, values: list) -> list[list]:
        return [values[i * self.n : (i + 1) * self.n] for i in range(len(self.problems))]


def sample_chains(model, tokenizer, problems: list[dict], params: Params) -> Chains:
    """``prm.best_of_n`` samples (temperature 1) per problem from the policy."""
    cfg = params.prm
    prompts = [format_prompt(p["question"], params.model, tokenizer) for p in problems]
    fmt = params.data.solution_format()
    out = sample(
        model,
        tokenizer,
        prompts,
        cfg.best_of_n,
        temperature=1.0,
        max_new_tokens=cfg.max_new_tokens,
        batch_size=cfg.batch_size_eval,
        seed=cfg.seed,
    )
    oracle = None
    if problems and all(p.get("source") == "synthetic" for p in problems) and fmt.step_split == "line":
        qs = [p["question"] for p in problems for _ in range(cfg.best_of_n)]
        oracle = [
            oracle_step_labels(q, t, params.data.modulus)[: len(fmt.steps(t, f))] for q, t, f in zip(qs, out.texts, out.finished)
        ]
    expanded = [p for p in prompts for _ in range(cfg.best_of_n)]
    return Chains(problems, expanded, out.texts, cfg.best_of_n, oracle, out.finished, fmt)


def label_metrics(scores: list[list[float]], labels: list[list[bool]], threshold: float, prefix: str) -> dict[str, float]:
    """Step AUC / bad-step F1 and first-error F1 of ``scores`` against ``labels``, flat keys."""
    out = {}
    for k, v in step_metrics(scores, labels, threshold).items():
        if v is not None:
            out[f"{prefix}.step_{k}" if k == "auc" else f"{prefix}.{k}"] = v
    fe = first_error_f1(scores, labels, threshold)
    out.update({f"{prefix}.first_error_{k}": v for k, v in fe.items() if not (isinstance(v, float) and math.isnan(v))})
    return out


def raw_scores(scorer, splits: dict[str, list[dict]], chains: Chains, batch_size: int) -> dict[str, list[list[float]]]:
    """A scorer's step scores on each split of held-out records (by name) and on the eval chains."""
    out = {
        name: scorer.score_steps([r["prompt"] for r in recs], [r["completions"] for r in recs], batch_size) if recs else []
        for name, recs in splits.items()
    }
    out["chains"] = scorer.score(chains.prompts, chains.texts, batch_size, chains.finished) if chains.texts else []
    return out


def reachable(held: list[dict]) -> list[list[bool]]:
    """Held-out step labels "good = some rollout reached the answer" (``soft_labels > 0``):
    the prefix-correctness the oracle defines, for any labelling method."""
    return [[s > 0 for s in r["soft_labels"]] for r in held]


def with_steps(scores: list[list[float]], labels: list[list[bool]]) -> tuple[list[list[float]], list[list[bool]], int]:
    """``(scores, labels, skipped)`` of the chains with at least one scored step: a chain with
    none (no step line) has nothing to judge step by step; ``skipped`` counts them.

    >>> with_steps([[0.9], [], [0.2]], [[True], [], [False]])
    ([[0.9], [0.2]], [[True], [False]], 1)
    """
    keep = [i for i, s in enumerate(scores) if s]
    return [scores[i] for i in keep], [labels[i] for i in keep], len(scores) - len(keep)


def calibration_split(held: list[dict], cfg: PrmConfig) -> tuple[list[dict], list[dict]]:
    """``(calibration, test)``: ``prm.calibration_fraction`` of the held-out prompts (seeded by
    ``prm.seed``, all solutions of a prompt on one side) choose the threshold, the rest are
    the test records. With ``prm.threshold`` fixed nothing is chosen: every record is test."""
    if cfg.threshold is not None:
        return [], held
    test, calib = split_by_prompt(held, cfg.calibration_fraction, cfg.seed)
    return calib, test


def choose_threshold(calib_scores: list[list[float]], calib: list[dict], fixed: float | None) -> tuple[float, str]:
    """``(threshold, how it was chosen)``: ``fixed``, else the raw score threshold with the best
    first-error F1 on the calibration records, else (none) 0.5."""
    if fixed is not None:
        return fixed, "fixed (prm.threshold)"
    if not calib:
        return 0.5, "0.5: no calibration records (one held-out prompt or none)"
    return best_threshold(calib_scores, reachable(calib)), f"best first-error F1 on {len(calib)} calibration records"


def scorer_metrics(name: str, scores: dict[str, list[list[float]]], test: list[dict], chains: Chains, threshold: float) -> dict[str, float]:
    """All metrics of one scorer's ``scores`` (flat keys under ``name.``), judged at ``threshold``:
    ``test*`` on the test records, ``chains`` and ``best_of_N`` on the eval chains."""
    m: dict[str, float] = {}
    test_scores, chain_scores = scores["test"], scores["chains"]
    if test:
        m.update(label_metrics(test_scores, [r["labels"] for r in test], threshold, f"{name}.test"))
        m.update(label_metrics(test_scores, reachable(test), threshold, f"{name}.test_reach"))
        with_oracle = [i for i, r in enumerate(test) if r.get("oracle_labels")]
        if with_oracle:
            m.update(
                label_metrics(
                    [test_scores[i] for i in with_oracle],
                    [test[i]["oracle_labels"] for i in with_oracle],
                    threshold,
                    f"{name}.test_oracle",
                )
            )
    if chains.oracle is not None:
        scored, oracle, skipped = with_steps(chain_scores, chains.oracle)
        m.update(label_metrics(scored, oracle, threshold, f"{name}.chains"))
        m.update({f"{name}.chains.num_samples": len(chain_scores), f"{name}.chains.num_scored": len(scored)})
        m[f"{name}.chains.skipped_no_steps"] = skipped
    if chains.texts:
        bon = best_of_n(
            chains.groups(chain_scores),
            chains.groups([chains.fmt.answer(t) for t in chains.texts]),
            [reference_answer(str(p["final_answer"])) for p in chains.problems],
        )
        m.update({f"{name}.best_of_{chains.n}.{k}": v for k, v in bon.items() if k.startswith("prm_")})
        m.update({f"best_of_{chains.n}.{k}": v for k, v in bon.items() if not k.startswith("prm_")})
    return m


def evaluate_scorer(
    scorer, name: str, calib: list[dict], test: list[dict], chains: Chains, cfg: PrmConfig
) -> tuple[dict[str, float], dict[str, list[list[float]]], float]:
    """``(metrics, scores, raw threshold)`` of one scorer: the threshold chosen on ``calib``
    (:func:`choose_threshold`; how: ``<name>.threshold_rule``, text), the metrics on ``test`` and ``chains`` only, the calibration
    of ``cfg`` applied as the saved PRM would apply it. ``scores``: ``test`` and ``chains``."""
    scores = raw_scores(scorer, {"calibration": calib, "test": test}, chains, cfg.batch_size_eval)
    t, rule = choose_threshold(scores.pop("calibration"), calib, cfg.threshold)
    judged_at = t
    if cfg.calibrate and t != 0.5:
        scores = {k: calibrate_scores(v, t) for k, v in scores.items()}
        judged_at = 0.5
    m = scorer_metrics(name, scores, test, chains, judged_at)
    m[f"{name}.threshold"] = t
    m[f"{name}.threshold_rule"] = rule
    return m, scores, t


def best_of_n_curve(chains: Chains, scores_by_name: dict[str, list[list[float]]]) -> str:
    """CSV: accuracy of each selection rule using the first n samples, n = 1, 2, 4, .., N."""
    ns = sorted({min(2**i, chains.n) for i in range(chains.n.bit_length() + 1)})
    answers = chains.groups([chains.fmt.answer(t) for t in chains.texts])
    targets = [reference_answer(str(p["final_answer"])) for p in chains.problems]
    cols = [f"{name}_{a}" for name in scores_by_name for a in ("min", "product", "last")] + ["majority", "random", "oracle"]
    lines = ["n," + ",".join(cols)]
    for n in ns:
        row = {}
        for name, scores in scores_by_name.items():
            r = best_of_n([g[:n] for g in chains.groups(scores)], [a[:n] for a in answers], targets)
            row.update({f"{name}_{a}": r[f"prm_{a}"] for a in ("min", "product", "last")})
            row.update({k: r[k] for k in ("majority", "random", "oracle")})
        lines.append(f"{n}," + ",".join(f"{row[c]:.4f}" for c in cols))
    return "\n".join(lines) + "\n"


def summary_table(m: dict) -> str:
    """Markdown table: the learned PRM against the confidence baseline."""
    n = next((k.split(".")[1] for k in m if k.startswith("prm.best_of_")), None)
    rows = [
        ("step AUC, held-out test records (oracle)", "test_oracle.step_auc"),
        ("step AUC, eval chains (oracle)", "chains.step_auc"),
        ("bad-step F1, eval chains", "chains.bad_f1"),
        ("first-error F1, held-out test records (labels)", "test.first_error_f1"),
        ("first-error F1, held-out test records (oracle)", "test_oracle.first_error_f1"),
        ("first-error F1, eval chains (oracle)", "chains.first_error_f1"),
        ("threshold (raw score, chosen on calibration records)", "threshold"),
    ]
    if n:
        rows += [(f"{n} pick by min", f"{n}.prm_min"), (f"{n} pick by product", f"{n}.prm_product"), (f"{n} pick by last", f"{n}.prm_last")]
    lines = ["| metric | learned PRM | policy confidence |", "|---|---|---|"]
    for label, key in rows:
        a, b = m.get(f"prm.{key}"), m.get(f"confidence.{key}")
        if a is None and b is None:
            continue
        lines.append(f"| {label} | " + " | ".join("n/a" if v is None else f"{v:.3f}" for v in (a, b)) + " |")
    if n:
        lines.append("")
        lines.append(" ".join(f"{k}: {m[f'{n}.{k}']:.3f}" for k in ("majority", "random", "oracle") if f"{n}.{k}" in m))
    return "\n".join(lines) + "\n"


def judged_steps(s: dict[str, list[list[float]]], test: list[dict], chains: Chains) -> tuple[list[list[float]], list[list[bool]], str]:
    """The step scores the plots judge one scorer on, their labels, and what those are: the eval
    chains against the oracle when there is one, else the held-out test records against
    "reachable" labels (``([], [], "")`` when neither)."""
    if chains.oracle is not None:
        scores, labels, _ = with_steps(s["chains"], chains.oracle)
        return scores, labels, "fresh policy chains vs oracle"
    if test:
        return s["test"], reachable(test), "held-out labelled records"
    return [], [], ""


def roc_curves(
    scores_by_name: dict[str, dict[str, list[list[float]]]], test: list[dict], chains: Chains
) -> dict[str, list[tuple[float, float]]]:
    """ROC points per scorer on :func:`judged_steps` (``[]`` when there is nothing to judge)."""
    out = {}
    for name, s in scores_by_name.items():
        scores, labels, _ = judged_steps(s, test, chains)
        out[name] = roc_curve(scores, labels) if scores else []
    return out


def calibration_rows(
    scores_by_name: dict[str, dict[str, list[list[float]]]], test: list[dict], chains: Chains, bins: int = 10
) -> list[dict]:
    """The scorers' :func:`~prmflow.prm.metrics.reliability` on :func:`judged_steps`, one row
    per score bin: ``score`` (its center), per scorer the fraction of good steps and ``<name>_steps``."""
    rows = [{"score": (b + 0.5) / bins} for b in range(bins)]
    for name, s in scores_by_name.items():
        scores, labels, _ = judged_steps(s, test, chains)
        for row, (_, frac, n) in zip(rows, reliability(scores, labels, bins)):
            row.update({name: frac, f"{name}_steps": n})
    return rows


def calibrate_scores(scores: Sequence[Sequence[float]], threshold: float) -> list[list[float]]:
    """:func:`prmflow.prm.scorers.calibrate` on nested lists (what a calibrated scorer returns)."""
    return [calibrate(torch.tensor(s, dtype=torch.float64), threshold).tolist() if s else [] for s in scores]
