"""Stage ``evaluate``: accuracy and reasoning length of a policy, by difficulty.

Greedy accuracy, and from ``evaluate.num_samples`` samples per problem: pass@1 (mean sample
accuracy), pass@k and maj@k. Reasoning length in tokens and steps (mean, median, p90) of the
greedy solutions. Writes ``metrics/eval.json`` (``dvc metrics``), CSVs under ``plots/eval/``
(``dvc plots``), PNG plots and sample solutions (MLflow artifacts).
"""

from __future__ import annotations

import argparse
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

from reward.parse import extract_answer, split_steps
from tasks.config import EvaluateConfig, ModelConfig, Params, load_params
from tasks.metrics import group_by, majority_vote, mean, pass_at_k, summarize

METRICS_PATH = "metrics/eval.json"
PLOTS_DIR = "plots/eval"


@dataclass
class Evaluation:
    """Per-problem results of one policy on one problem set."""

    problems: list[dict]
    greedy_texts: list[str]
    greedy_tokens: list[int]
    sample_texts: list[list[str]]

    def greedy_correct(self) -> list[bool]:
        return [extract_answer(t) == p["final_answer"] for p, t in zip(self.problems, self.greedy_texts)]

    def sample_correct(self) -> list[list[bool]]:
        return [
            [extract_answer(t) == p["final_answer"] for t in texts]
            for p, texts in zip(self.problems, self.sample_texts)
        ]

    def greedy_steps(self) -> list[int]:
        return [len(split_steps(t)) for t in self.greedy_texts]


def run_policy(model, tokenizer, problems: list[dict], cfg: EvaluateConfig, model_cfg: ModelConfig, progress=None) -> Evaluation:
    """Greedy and sampled solutions of ``model`` for ``problems`` (same seed for every policy)."""
    from tasks.modeling import format_prompt
    from tasks.sampling import sample

    prompts = [format_prompt(p["question"], model_cfg) for p in problems]
    kw = dict(max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size, progress=progress)
    greedy = sample(model, tokenizer, prompts, 1, greedy=True, **kw)
    sampled = sample(
        model, tokenizer, prompts, cfg.num_samples, temperature=cfg.temperature, top_p=cfg.top_p, seed=cfg.seed, **kw
    )
    return Evaluation(
        problems=problems,
        greedy_texts=greedy.texts,
        greedy_tokens=greedy.num_tokens,
        sample_texts=[sampled.group(i) for i in range(len(problems))],
    )


def score(ev: Evaluation, k: int) -> dict[str, float]:
    """Accuracy and length metrics of a set of problems."""
    greedy = ev.greedy_correct()
    samples = ev.sample_correct()
    maj = [
        majority_vote([extract_answer(t) for t in texts]) == p["final_answer"]
        for p, texts in zip(ev.problems, ev.sample_texts)
    ]
    out = {
        "n": len(ev.problems),
        "greedy_acc": mean(greedy),
        "pass@1": mean([mean(s) for s in samples]),
        f"pass@{k}": mean([pass_at_k(len(s), sum(s), k) for s in samples]),
        f"maj@{k}": mean(maj),
    }
    for name, vals in (("tokens", ev.greedy_tokens), ("steps", ev.greedy_steps())):
        for stat, v in summarize(vals).items():
            out[f"len_{name}_{stat}"] = v
    return out


def score_by_difficulty(ev: Evaluation, k: int) -> dict[str, dict[str, float]]:
    idx = group_by([p["difficulty"] for p in ev.problems], range(len(ev.problems)))
    out = {}
    for d in sorted(idx):
        sub = Evaluation(
            problems=[ev.problems[i] for i in idx[d]],
            greedy_texts=[ev.greedy_texts[i] for i in idx[d]],
            greedy_tokens=[ev.greedy_tokens[i] for i in idx[d]],
            sample_texts=[ev.sample_texts[i] for i in idx[d]],
        )
        out[str(d)] = score(sub, k)
    return out


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


def write_plots(rep: dict, ev: Evaluation, plots_dir: str | Path, k: int) -> list[Path]:
    """CSV files for ``dvc plots`` and PNG renderings of them; returns the PNG paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tasks.io import atomic_write_text

    plots_dir = Path(plots_dir)
    by = rep["by_difficulty"]
    rows = ["difficulty,greedy_acc,pass@1,maj@k,pass@k,len_tokens_mean"]
    for d, m in by.items():
        rows.append(f"{d},{m['greedy_acc']:.4f},{m['pass@1']:.4f},{m[f'maj@{k}']:.4f},{m[f'pass@{k}']:.4f},{m['len_tokens_mean']:.2f}")
    atomic_write_text(plots_dir / "accuracy_by_difficulty.csv", "\n".join(rows) + "\n")
    lens = ["difficulty,tokens,steps,correct"]
    for p, t, s, ok in zip(ev.problems, ev.greedy_tokens, ev.greedy_steps(), ev.greedy_correct()):
        lens.append(f"{p['difficulty']},{t},{s},{int(ok)}")
    atomic_write_text(plots_dir / "lengths.csv", "\n".join(lens) + "\n")

    pngs = []
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ds = list(by)
    for key, label in (("greedy_acc", "greedy"), ("pass@1", "pass@1"), (f"maj@{k}", f"maj@{k}")):
        ax.plot(ds, [by[d][key] for d in ds], marker="o", label=label)
    ax.set(xlabel="difficulty (steps)", ylabel="accuracy", ylim=(0, 1), title="Accuracy by difficulty")
    ax.legend()
    fig.tight_layout()
    pngs.append(plots_dir / "accuracy_by_difficulty.png")
    fig.savefig(pngs[-1], dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(ev.greedy_tokens, bins=30)
    ax.set(xlabel="solution length (tokens)", ylabel="count", title="Reasoning length (greedy)")
    fig.tight_layout()
    pngs.append(plots_dir / "length_hist.png")
    fig.savefig(pngs[-1], dpi=100)
    plt.close(fig)
    return pngs


def load_eval_problems(params: Params, curated_dir: str | Path = "data/curated") -> list[dict]:
    from tasks.curate import load_curated

    ds = load_curated(curated_dir)["eval"]
    n = params.evaluate.num_problems
    if n is not None:
        ds = ds.select(range(min(n, len(ds))))
    return list(ds)


def load_extra_problems(params: Params) -> list[dict]:
    from tasks.sources import read_problems

    e = params.evaluate
    return read_problems(e.extra_eval, e.extra_eval_source, params.data.columns)


def gate_scores(ev: Evaluation) -> list[float]:
    """Per-problem score for the gate: the fraction of right answers among greedy + samples."""
    return [(g + sum(s)) / (1 + len(s)) for g, s in zip(ev.greedy_correct(), ev.sample_correct())]


def monitors(cand: Evaluation, base: Evaluation, scorer=None, model_cfg: ModelConfig | None = None) -> dict[str, float]:
    """Reward-hacking monitors of the candidate (see ``rl.monitors``).

    ``step_inflation``: mean greedy steps of the candidate / of the warm-started base.
    ``prm_outcome_disagreement`` (with a PRM): fraction of the candidate's samples where the
    PRM's verdict (min step score > 0.5) and the outcome verifier differ; ``prm_high_on_wrong``
    is the part of it that matters most (the PRM approves a wrong answer).
    """
    from tasks.modeling import format_prompt

    out = {}
    base_steps = mean(base.greedy_steps())
    out["step_inflation"] = mean(cand.greedy_steps()) / base_steps if base_steps else 1.0
    if scorer is not None:
        from reward.process import process_rewards

        prompts, texts, right = [], [], []
        for p, ts, cs in zip(cand.problems, cand.sample_texts, cand.sample_correct()):
            prompts += [format_prompt(p["question"], model_cfg)] * len(ts)
            texts += ts
            right += cs
        verdict = [r > 0.5 for r in process_rewards(scorer.score(prompts, texts), "min")]
        out["prm_outcome_disagreement"] = mean([v != r for v, r in zip(verdict, right)])
        wrong = [v for v, r in zip(verdict, right) if not r]
        out["prm_high_on_wrong"] = mean(wrong) if wrong else 0.0
    return out


def _load_scorer(prm_dir: Path, device):
    from reward import prm_scorer

    loader = getattr(prm_scorer, "load_scorer", None)
    return loader(prm_dir, device) if loader else prm_scorer.PRMScorer.from_pretrained(prm_dir, device=device)


def evaluate(
    params: Params,
    candidate_dir="models/policy",
    base_dir="models/base",
    champion_dir="models/champion",
    prm_dir="models/prm",
    curated_dir="data/curated",
    metrics_path=METRICS_PATH,
    plots_dir=PLOTS_DIR,
    progress=None,
) -> tuple[dict, Evaluation]:
    """Evaluate the candidate against the champion and the base, and decide on promotion.

    Every policy runs on the same problems with the same seeds (a paired comparison). Without
    a candidate (``candidate_dir`` missing: RL has not run) the base alone is evaluated and
    there is no gate. Returns (report, the candidate's evaluation); the report's top level
    (``overall``, ``by_difficulty``) describes the candidate, ``base``/``champion`` the others,
    ``gate`` the decision (:func:`tasks.gate.decide`) and ``monitors`` its inputs.
    """
    from tasks import champion
    from tasks.gate import decide
    from tasks.io import atomic_write_json
    from tasks.modeling import load_causal_lm, load_tokenizer, resolve_device

    t0 = time.time()
    k = params.evaluate.num_samples
    problems = load_eval_problems(params, curated_dir)
    cache: dict[str, Evaluation] = {}

    def run(path) -> Evaluation:
        key = str(Path(path).resolve())
        if key not in cache:
            model = load_causal_lm(path, params.model)
            cache[key] = run_policy(model, load_tokenizer(path), problems, params.evaluate, params.model, progress)
        return cache[key]

    has_candidate = champion.has_model(candidate_dir)
    main_dir = Path(candidate_dir if has_candidate else base_dir)
    ev = run(main_dir)
    rep = report(ev, k)
    rep["policy"] = "candidate" if has_candidate else "base"
    if params.evaluate.extra_eval:
        model = load_causal_lm(main_dir, params.model)
        extra = run_policy(model, load_tokenizer(main_dir), load_extra_problems(params), params.evaluate, params.model, progress)
        rep["extra"] = report(extra, k)
    if has_candidate:
        base_ev = run(base_dir)
        champ_dir = champion.current(base_dir, champion_dir)
        champ_ev = run(champ_dir)
        rep["base"] = report(base_ev, k)
        rep["champion"] = {**report(champ_ev, k), "path": str(champ_dir), **{f"info_{a}": b for a, b in champion.info(champion_dir).items() if isinstance(b, (str, int, float))}}
        scorer = None
        if (Path(prm_dir) / "config.json").exists() or (Path(prm_dir) / "prm_config.json").exists():
            scorer = _load_scorer(Path(prm_dir), resolve_device(params.model.device))
        mon = monitors(ev, base_ev, scorer, params.model)
        m = params.rl.monitors
        thresholds = {"step_inflation": m.max_step_inflation, "prm_outcome_disagreement": m.max_prm_outcome_disagreement}
        decision = decide(gate_scores(ev), gate_scores(champ_ev), z=params.evaluate.gate_z, monitors=mon, thresholds=thresholds)
        rep["monitors"] = mon
        rep["gate"] = {**decision.to_dict(), "champion_path": str(champ_dir), "z": params.evaluate.gate_z}
    rep["wall_time_s"] = round(time.time() - t0, 2)
    write_plots(rep, ev, plots_dir, k)
    atomic_write_json(metrics_path, rep)
    return rep, ev


def apply_gate(rep: dict, candidate_dir="models/policy", champion_dir="models/champion", registry: bool = True) -> str:
    """Carry out the gate's decision: promote the candidate (workspace + MLflow alias) or not.

    Returns a one-line summary. Nothing happens without a gate (no candidate).
    """
    from tasks import champion

    gate = rep.get("gate")
    if gate is None:
        return "gate: no candidate policy yet (RL has not run); the base stays champion"
    if not gate["promote"]:
        return f"gate: candidate NOT promoted: {gate['reason']}"
    champion.promote(candidate_dir, champion_dir, {"gate": {k: v for k, v in gate.items() if k != "champion_path"}})
    version = champion.move_registry_alias() if registry else None
    where = f"; MLflow prmflow-policy@champion -> v{version}" if version else ""
    return f"gate: candidate PROMOTED to champion: {gate['reason']}{where}"


def format_table(rep: dict, k: int) -> str:
    """Plain-text table of accuracy and length by difficulty."""
    head = f"{'difficulty':>10} {'n':>5} {'greedy':>7} {'pass@1':>7} {'maj@' + str(k):>7} {'pass@' + str(k):>7} {'tokens':>7} {'steps':>6}"
    lines = [head, "-" * len(head)]
    rows = list(rep["by_difficulty"].items()) + [("all", rep["overall"])]
    for d, m in rows:
        lines.append(
            f"{d:>10} {m['n']:>5} {m['greedy_acc']:>7.3f} {m['pass@1']:>7.3f} {m[f'maj@{k}']:>7.3f} "
            f"{m[f'pass@{k}']:>7.3f} {m['len_tokens_mean']:>7.1f} {m['len_steps_mean']:>6.2f}"
        )
    for name in ("base", "champion"):
        if name in rep:
            o = rep[name]["overall"]
            lines.append(f"{name:>10} {o['n']:>5} {o['greedy_acc']:>7.3f} {o['pass@1']:>7.3f} {o[f'maj@{k}']:>7.3f} {o[f'pass@{k}']:>7.3f} {o['len_tokens_mean']:>7.1f} {o['len_steps_mean']:>6.2f}")
    if "gate" in rep:
        g = rep["gate"]
        lines.append(f"gate: candidate {g['candidate']:.3f} vs champion {g['champion']:.3f} (diff {g['diff']:+.3f}, margin {g['margin']:.3f}): {'promote' if g['promote'] else 'keep champion'} ({g['reason']})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m tasks.evaluate", description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--candidate", default="models/policy")
    ap.add_argument("--base", default="models/base")
    args = ap.parse_args(argv)
    params = load_params(args.params)

    import mlflow

    from tasks import tracking

    with tracking.stage_run("evaluate", params.evaluate.model_dump()):
        rep, ev = evaluate(params, candidate_dir=args.candidate, base_dir=args.base)
        mlflow.log_metrics(tracking.metric_dict({k: v for k, v in rep.items() if k != "gate"}))
        if "gate" in rep:
            mlflow.log_metrics({f"gate.{k}": float(v) for k, v in rep["gate"].items() if isinstance(v, (int, float)) and math.isfinite(float(v))})
            mlflow.set_tag("gate.decision", "promote" if rep["gate"]["promote"] else "keep")
            mlflow.set_tag("gate.reason", rep["gate"]["reason"])
        mlflow.log_artifacts(PLOTS_DIR, artifact_path="plots")
        mlflow.log_text(sample_solutions_text(ev, params.evaluate.num_examples_logged), "samples/eval_samples.md")
        mlflow.log_text(format_table(rep, params.evaluate.num_samples), "eval_table.txt")
        if params.evaluate.promote:
            summary = apply_gate(rep, args.candidate, registry=os.environ.get("PRMFLOW_LOG_MODELS", "1") != "0")
        else:
            summary = "gate: decision recorded, promotion disabled (evaluate.promote=false)"
        mlflow.set_tag("gate.summary", summary)
    print(format_table(rep, params.evaluate.num_samples))
    print(summary)


if __name__ == "__main__":
    main()
