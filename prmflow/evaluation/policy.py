"""A policy's accuracy and reasoning length on a problem set, by difficulty.

Greedy accuracy, and from ``evaluate.num_samples`` samples per problem: pass@1 (mean sample
accuracy), pass@k and maj@k. Reasoning length in tokens and steps (mean, median, p90) of the
greedy solutions. A right answer is :func:`reward.outcome.verify`'s (a ``CORRECT`` verdict, the
answer read by ``data.answer_rules``), as everywhere; verifier errors and timeouts are counted,
and so are solutions cut at ``evaluate.max_new_tokens`` (``truncated_*``, by difficulty too).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from prmflow.compute.samplers import ShardedPolicy
from prmflow.config import EvaluateConfig, ModelConfig
from prmflow.evaluation.metrics import group_by, majority_vote, mean, pass_at_k, summarize
from prmflow.lm.prompts import format_prompt
from prmflow.problems.synthetic import oracle_unneeded_steps
from reward.outcome import Verdict, judge, same_answer, verdict_counts
from reward.parse import SolutionFormat, reference_answer


@dataclass
class Evaluation:
    """Per-problem results of one policy on one problem set."""

    problems: list[dict]
    greedy_texts: list[str]
    greedy_tokens: list[int]
    sample_texts: list[list[str]]
    prompts: list[str] = field(default_factory=list)
    greedy_finished: list[bool] | None = None
    """Which greedy solutions ended with EOS (``None``: all); the rest were cut at the budget."""
    sample_finished: list[list[bool]] | None = None
    fmt: SolutionFormat = SolutionFormat()
    """How answers are read and steps counted (``data.answer_rules``, ``data.step_split``)."""

    def greedy_verdicts(self) -> list[Verdict]:
        return [judge(t, p["final_answer"], rules=self.fmt.answer_rules) for p, t in zip(self.problems, self.greedy_texts)]

    def sample_verdicts(self) -> list[list[Verdict]]:
        rules = self.fmt.answer_rules
        return [[judge(t, p["final_answer"], rules=rules) for t in texts] for p, texts in zip(self.problems, self.sample_texts)]

    def greedy_correct(self) -> list[bool]:
        return [v is Verdict.CORRECT for v in self.greedy_verdicts()]

    def sample_correct(self) -> list[list[bool]]:
        return [[v is Verdict.CORRECT for v in vs] for vs in self.sample_verdicts()]

    def greedy_done(self) -> list[bool]:
        return self.greedy_finished if self.greedy_finished is not None else [True] * len(self.greedy_texts)

    def sample_done(self) -> list[list[bool]]:
        return self.sample_finished if self.sample_finished is not None else [[True] * len(ts) for ts in self.sample_texts]

    def greedy_steps(self) -> list[int]:
        return [len(self.fmt.steps(t, f)) for t, f in zip(self.greedy_texts, self.greedy_done())]

    def subset(self, idx: list[int]) -> Evaluation:
        """The results of problems ``idx`` only."""

        def pick(xs):
            return None if xs is None else [xs[i] for i in idx]

        return replace(
            self,
            problems=pick(self.problems),
            greedy_texts=pick(self.greedy_texts),
            greedy_tokens=pick(self.greedy_tokens),
            sample_texts=pick(self.sample_texts),
            prompts=pick(self.prompts) if self.prompts else [],
            greedy_finished=pick(self.greedy_finished),
            sample_finished=pick(self.sample_finished),
        )

    def greedy_unneeded_steps(self) -> list[int] | None:
        """Per problem: greedy steps that compute a variable the answer does not need (a
        distractor), right or wrong; ``None`` unless every problem is synthetic (only the oracle
        knows). Until 2026-11-28 this counted only right distractor steps with no wrong step
        before them, which hid most of the waste (22.8% of a verbose warm start's greedy steps
        compute distractors; that count said 5.5%)."""
        if not self.problems or any(p.get("source") != "synthetic" for p in self.problems):
            return None
        return [sum(oracle_unneeded_steps(p["question"], t)) for p, t in zip(self.problems, self.greedy_texts)]


def run_policy(
    policy: ShardedPolicy,
    problems: list[dict],
    cfg: EvaluateConfig,
    model_cfg: ModelConfig,
    progress=None,
    fmt: SolutionFormat = SolutionFormat(),
) -> Evaluation:
    """Greedy and sampled solutions of ``policy`` (here or on Ray: :mod:`prmflow.compute.samplers`)
    for ``problems`` (same seed for every policy)."""
    prompts = [format_prompt(p["question"], model_cfg, policy.tokenizer) for p in problems]
    kw = dict(max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size, progress=progress)
    greedy = policy.sample(prompts, 1, greedy=True, **kw)
    sampled = policy.sample(prompts, cfg.num_samples, temperature=cfg.temperature, top_p=cfg.top_p, seed=cfg.seed, **kw)
    n = cfg.num_samples
    return Evaluation(
        problems=problems,
        greedy_texts=greedy.texts,
        greedy_tokens=greedy.num_tokens,
        sample_texts=[sampled.group(i) for i in range(len(problems))],
        prompts=prompts,
        greedy_finished=list(greedy.finished),
        sample_finished=[sampled.finished[i * n : (i + 1) * n] for i in range(len(problems))],
        fmt=fmt,
    )


def score(ev: Evaluation, k: int) -> dict[str, float]:
    """Accuracy and length metrics of a set of problems, how many solutions were cut at the token
    budget (``truncated_greedy``, ``truncated_samples``: shares), and how many verdicts (greedy
    and samples) were verifier errors or timeouts rather than judgements of the answer."""
    greedy_v, sample_v = ev.greedy_verdicts(), ev.sample_verdicts()
    greedy = [v is Verdict.CORRECT for v in greedy_v]
    samples = [[v is Verdict.CORRECT for v in vs] for vs in sample_v]
    counts = verdict_counts(greedy_v + [v for vs in sample_v for v in vs])
    maj = [
        same_answer(majority_vote([ev.fmt.answer(t) for t in texts]), reference_answer(p["final_answer"])) is Verdict.CORRECT
        for p, texts in zip(ev.problems, ev.sample_texts)
    ]
    out = {
        "n": len(ev.problems),
        "greedy_acc": mean(greedy),
        "pass@1": mean([mean(s) for s in samples]),
        f"pass@{k}": mean([pass_at_k(len(s), sum(s), k) for s in samples]),
        f"maj@{k}": mean(maj),
        "truncated_greedy": mean([not f for f in ev.greedy_done()]),
        "truncated_samples": mean([not f for fs in ev.sample_done() for f in fs]),
        "verifier_errors": counts["error"],
        "verifier_timeouts": counts["timeout"],
    }
    for name, vals in (("tokens", ev.greedy_tokens), ("steps", ev.greedy_steps())):
        for stat, v in summarize(vals).items():
            out[f"len_{name}_{stat}"] = v
    unneeded = ev.greedy_unneeded_steps()
    if unneeded is not None:  # wasted reasoning: steps computing what the answer does not need, of all steps
        out["unneeded_step_share"] = sum(unneeded) / max(1, sum(ev.greedy_steps()))
    return out


def score_by_difficulty(ev: Evaluation, k: int) -> dict[str, dict[str, float]]:
    idx = group_by([p["difficulty"] for p in ev.problems], range(len(ev.problems)))
    return {str(d): score(ev.subset(idx[d]), k) for d in sorted(idx)}


def report(ev: Evaluation, k: int) -> dict:
    return {"overall": score(ev, k), "by_difficulty": score_by_difficulty(ev, k)}


def sample_solutions_text(ev: Evaluation, n: int) -> str:
    """A few greedy solutions with the reference, for reading (an MLflow text artifact)."""
    lines = []
    for p, t, ok in list(zip(ev.problems, ev.greedy_texts, ev.greedy_correct()))[:n]:
        lines += [
            f"### {p['id']} (difficulty {p['difficulty']}) {'CORRECT' if ok else 'WRONG'}",
            f"question: {p['question']}",
            "policy:",
            t.strip(),
            "reference:",
            p["answer"].strip(),
            "",
        ]
    return "\n".join(lines)


def gate_scores(ev: Evaluation) -> list[float]:
    """Per-problem score for the gate: the fraction of right answers among greedy + samples."""
    return [(g + sum(s)) / (1 + len(s)) for g, s in zip(ev.greedy_correct(), ev.sample_correct())]
