"""Stage ``evaluate``: accuracy and reasoning length of the candidate, and the promotion gate.

The candidate (``models/policy``), the champion and the warm-started base run on the same eval
problems with the same seeds (:mod:`prmflow.evaluation.policy`), so the gate's comparison is
paired (:mod:`prmflow.evaluation.gate`); reward-hacking monitors (:mod:`prmflow.evaluation.monitors`)
can refuse a candidate. Without a candidate (RL has not run) the base alone is evaluated.
Writes ``metrics/eval.json`` (top level: the candidate; ``base``, ``champion``, ``gate``,
``monitors``), CSVs and PNGs under ``plots/eval/``; the CLI carries out the gate's decision.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from prmflow import tracking, workspace
from prmflow.compute.samplers import connect, policy_sampler
from prmflow.config import Params, load_params
from prmflow.errors import reported
from prmflow.evaluation import champion
from prmflow.evaluation.gate import decide
from prmflow.evaluation.monitors import monitors, skipped_monitors
from prmflow.evaluation.plots import write_plots
from prmflow.evaluation.policy import Evaluation, gate_scores, report, run_policy, sample_solutions_text
from prmflow.evaluation.tables import format_table
from prmflow.io import atomic_write_json
from prmflow.lm.budgets import resolve_setting
from prmflow.lm.folders import model_digest
from prmflow.lm.models import load_tokenizer, resolve_device
from prmflow.prm.scorers import load_scorer
from prmflow.problems.sources import read_problems
from prmflow.resources import usage
from tasks import exit_done


class PolicyRunner:
    """Runs each policy once on the eval problems: policies are told apart by their content
    (:func:`prmflow.lm.folders.model_digest`), so a champion that is still the base's weights
    (the first iteration promotes the warm start) is run once."""

    def __init__(self, params: Params, problems: list[dict], progress=None):
        self.params, self.problems, self.progress = params, problems, progress
        self.cache: dict[str, Evaluation] = {}

    def __call__(self, path, problems: list[dict] | None = None) -> Evaluation:
        key = model_digest(path) if Path(path).is_dir() else str(path)  # a hub id: by name
        if problems is not None:  # another problem set: not cached
            return self._run(path, problems)
        if key not in self.cache:
            self.cache[key] = self._run(path, self.problems)
        return self.cache[key]

    def _run(self, path, problems: list[dict]) -> Evaluation:
        p = self.params
        with policy_sampler(p.compute, path, p.model) as policy:
            return run_policy(policy, problems, p.evaluate, p.model, self.progress, p.data.solution_format())


def gate(params: Params, runner: PolicyRunner, cand: Evaluation, base_dir, champion_dir, prm_dir) -> dict:
    """The base's and champion's reports, the monitors and the gate's decision."""
    k = params.evaluate.num_samples
    base_ev = runner(base_dir)
    champ_dir = champion.current(base_dir, champion_dir)
    champ_ev = runner(champ_dir)
    info = {f"info_{a}": b for a, b in champion.info(champion_dir).items() if isinstance(b, (str, int, float))}
    scorer = load_scorer(prm_dir, resolve_device(params.model.device)) if workspace.has_model(prm_dir) else None
    mon = monitors(cand, base_ev, scorer, params.model)
    m = params.rl.monitors
    thresholds = {"step_inflation": m.max_step_inflation, "prm_outcome_disagreement": m.max_prm_outcome_disagreement}
    decision = decide(
        gate_scores(cand),
        gate_scores(champ_ev),
        z=params.evaluate.gate_z,
        monitors=mon,
        thresholds=thresholds,
        skipped=skipped_monitors(scorer),
    )
    return {
        "base": report(base_ev, k),
        "champion": {**report(champ_ev, k), "path": str(champ_dir), **info},
        "monitors": mon,
        "gate": {**decision.to_dict(), "champion_path": str(champ_dir), "z": params.evaluate.gate_z},
    }


def run(
    params: Params,
    candidate_dir=workspace.POLICY,
    base_dir=workspace.BASE,
    champion_dir=workspace.CHAMPION,
    prm_dir=workspace.PRM,
    curated_dir=workspace.CURATED,
    metrics_path=workspace.METRICS["evaluate"],
    plots_dir=workspace.PLOTS["evaluate"],
    progress=None,
) -> tuple[dict, Evaluation]:
    """Evaluate the candidate against the champion and the base; return (report, the candidate's evaluation)."""
    t0 = time.time()
    problems = workspace.load_split("eval", params.evaluate.num_problems, curated_dir)
    connect(params.compute)  # an unreachable Ray cluster fails before any sampling
    has_candidate = workspace.has_model(candidate_dir)
    main_dir = Path(candidate_dir if has_candidate else base_dir)
    params, budget = resolve_setting(params, "evaluate.max_new_tokens", problems, load_tokenizer(main_dir))  # before any sampling
    e, k = params.evaluate, params.evaluate.num_samples
    runner = PolicyRunner(params, problems, progress)
    ev = runner(main_dir)
    rep = {**report(ev, k), "policy": "candidate" if has_candidate else "base", **budget.metrics()}
    if e.extra_eval:
        rep["extra"] = report(runner(main_dir, read_problems(e.extra_eval, e.extra_eval_source, params.data.columns)), k)
    if has_candidate:
        rep.update(gate(params, runner, ev, base_dir, champion_dir, prm_dir))
    rep.update(usage(t0))
    write_plots(rep, ev, plots_dir, k)
    atomic_write_json(metrics_path, rep)
    return rep, ev


def carry_out(rep: dict, params: Params, candidate_dir) -> str:
    """Carry out the gate's decision; a promotion that fails changes nothing and says so."""
    if not params.evaluate.promote:
        return "gate: decision recorded, promotion disabled (evaluate.promote=false)"
    try:
        return champion.apply_gate(rep, candidate_dir, registry=os.environ.get("PRMFLOW_LOG_MODELS", "1") != "0")
    except champion.PromotionError as e:
        return f"gate: promotion FAILED, nothing changed (the champion stays): {e}"


def main(argv: list[str] | None = None) -> None:
    with reported("evaluate"):
        ap = argparse.ArgumentParser(prog="python -m tasks.evaluate", description=__doc__)
        ap.add_argument("--params", default="params.yaml")
        ap.add_argument("--candidate", default=workspace.POLICY)
        ap.add_argument("--base", default=workspace.BASE)
        args = ap.parse_args(argv)
        params = load_params(args.params)

        import mlflow

        with tracking.stage_run("evaluate", params.evaluate.model_dump(), __doc__):
            rep, ev = run(params, candidate_dir=args.candidate, base_dir=args.base)
            mlflow.log_metrics(tracking.metric_dict({k: v for k, v in rep.items() if k != "gate"}))
            if "gate" in rep:
                mlflow.log_metrics(tracking.metric_dict(rep["gate"], "gate/"))
                mlflow.set_tag("gate.decision", "promote" if rep["gate"]["promote"] else "keep")
                mlflow.set_tag("gate.reason", rep["gate"]["reason"])
            mlflow.log_artifacts(workspace.PLOTS["evaluate"], artifact_path="plots")
            mlflow.log_text(sample_solutions_text(ev, params.evaluate.num_examples_logged), "samples/eval_samples.md")
            mlflow.log_text(format_table(rep, params.evaluate.num_samples), "eval_table.txt")
            summary = carry_out(rep, params, args.candidate)
            mlflow.set_tag("gate.summary", summary)
            if "gate" in rep:  # the candidate's registry entry says what the gate decided, and on what
                g, o = rep["gate"], rep["overall"]
                tracking.describe_alias(
                    tracking.POLICY_MODEL,
                    "candidate",
                    f"Gate: {'promoted to champion' if g['promote'] else 'not promoted'} ({g['reason']}); "
                    f"greedy accuracy {o['greedy_acc']:.3f}, pass@1 {o['pass@1']:.3f} on {o['n']} eval problems.",
                    {"gate.decision": "promote" if g["promote"] else "keep", "gate/diff": g["diff"], "gate/margin": g["margin"]}
                    | {"overall/greedy_acc": o["greedy_acc"], "overall/pass_at_1": o["pass@1"]},
                )
        print(format_table(rep, params.evaluate.num_samples))
        print(summary)
        if summary.startswith("gate: promotion FAILED"):
            sys.exit(1)


if __name__ == "__main__":
    main()
    exit_done()
