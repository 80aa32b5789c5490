"""Stage ``label``: automatic per-step labels for policy solutions, from rollouts.

1. Take ``label.num_problems`` curated *train* problems; sample ``label.samples_per_problem``
   solutions each from the start policy and split them into steps. Rollouts come from the same
   policy, or from ``label.completer`` when set.
2. Label every step with ``label.method`` (:mod:`prmflow.labeling.methods`: Math-Shepherd
   ``mc_hard`` / ``mc_soft``, OmegaPRM-like ``first_error``); with ``label.compare_methods`` the
   other methods label a subset too, to report agreement and cost
   (:mod:`prmflow.labeling.pipeline`).
3. Score every method against the synthetic task's oracle, and without one against each other
   and against provably good steps (:mod:`prmflow.labeling.report`).

Steps are ``data.step_split``'s, answers are read by ``data.answer_rules``. A solution cut at
``label.max_new_tokens`` (checked against the references first, or derived from them:
:mod:`prmflow.lm.budgets`) keeps only its finished steps; cuts are counted (``truncation.*``).

Output: ``data/labels`` (:func:`prmflow.workspace.save_labels`: TRL's stepwise supervision plus
extras, ``stepwise.jsonl`` and ``samples.md``, labelled solutions to check by hand), ``metrics/label.json`` and
``plots/label/`` (label quality by step position: CSV and PNG).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from prmflow import tracking, workspace
from prmflow.compute.samplers import connect, policy_sampler
from prmflow.config import Params, load_params
from prmflow.errors import reported
from prmflow.io import atomic_write_json, atomic_write_text
from prmflow.labeling.methods import LABEL_METHODS
from prmflow.labeling.pipeline import label_solutions
from prmflow.labeling.report import comparison_table, samples_markdown
from prmflow.labeling.sampler import Progress, completer_policy, completer_tokenizer, rollout_sampler, sample_solutions
from prmflow.lm.budgets import resolve_setting
from prmflow.lm.models import load_tokenizer
from prmflow.plots import Panel, csv_text, save
from prmflow.resources import usage
from tasks import exit_done


def run(
    params: Params,
    policy_dir=workspace.BASE,
    curated_dir=workspace.CURATED,
    out_dir=workspace.LABELS,
    metrics_path=workspace.METRICS["label"],
    plots_dir=workspace.PLOTS["label"],
    progress: Progress | None = None,
) -> dict:
    """Sample, label, write ``out_dir`` and ``metrics_path``; return the metrics."""
    t0 = time.time()
    tokenizer = load_tokenizer(policy_dir)
    completer_dir = params.label.completer
    rollout_tokenizer = completer_tokenizer(completer_dir) if completer_dir else tokenizer  # fails before any sampling
    problems = workspace.load_split("train", params.label.num_problems, curated_dir)
    if not problems:
        raise ValueError(f"{curated_dir}: no train problems to label")
    params, budget = resolve_setting(params, "label.max_new_tokens", problems, tokenizer)  # before any sampling
    cfg, fmt = params.label, params.data.solution_format()
    connect(params.compute)  # an unreachable Ray cluster fails before any sampling

    with policy_sampler(params.compute, policy_dir, params.model) as policy:
        solutions, solver = sample_solutions(policy, problems, params, tokenizer, progress)
        with completer_policy(params, policy) as completer:
            roller = rollout_sampler(completer, problems, rollout_tokenizer, cfg, progress)
            rows, metrics, positions = label_solutions(solutions, roller, cfg, fmt)
    workspace.save_labels(rows, out_dir, samples=samples_markdown(rows, cfg.num_examples_logged))
    write_position_plot(positions, plots_dir)

    metrics.update(solver.stats("sampling.solutions"))
    metrics.update(roller.stats("sampling.rollouts"))
    metrics.update(budget.metrics())
    metrics.update(
        method=cfg.method,
        rollout_max_new_tokens=roller.max_new_tokens,
        rollout_temperature=roller.temperature,
        policy_parameters=policy.num_parameters,
        completer=completer_dir or str(policy_dir),
        completer_parameters=completer.num_parameters,
        **usage(t0),
    )
    atomic_write_json(metrics_path, metrics)
    return metrics


def write_position_plot(positions: list[dict], plots_dir) -> None:
    """``by_position.csv`` (``dvc plots``) and its PNG: each method's agreement with the oracle
    by step position, against the all-bad labeller's."""
    methods = list(LABEL_METHODS)  # every method a column (empty where one did not run), as dvc.yaml plots them
    atomic_write_text(Path(plots_dir) / "by_position.csv", csv_text(positions, ["step", *methods, "all_bad", "steps"]))
    steps = [r["step"] for r in positions]
    save(
        Path(plots_dir) / "by_position.png",
        Panel(
            "Step labels vs the oracle, by step position",
            "step position in the solution",
            "agreement with the oracle",
            [(m, steps, [r[m] for r in positions]) for m in methods] + [("all-bad labeller", steps, [r["all_bad"] for r in positions])],
            ylim=(0, 1.02),
        ),
    )


def main(argv: list[str] | None = None) -> None:
    with reported("label"):
        ap = argparse.ArgumentParser(
            prog="python -m tasks.label", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        ap.add_argument("--params", default="params.yaml")
        ap.add_argument("--policy", default=workspace.BASE)
        ap.add_argument("--out", default=workspace.LABELS)
        args = ap.parse_args(argv)
        params = load_params(args.params)

        import mlflow

        with tracking.stage_run("label", params.label.model_dump(), __doc__):
            metrics = run(params, policy_dir=args.policy, out_dir=args.out)
            mlflow.log_metrics(tracking.metric_dict(metrics))
            mlflow.log_artifacts(workspace.PLOTS["label"], artifact_path="plots")
            table = comparison_table(metrics)
            mlflow.log_text(table, "label_methods.md")
            mlflow.log_artifact(str(workspace.label_samples(args.out)))
        print(table, end="")


if __name__ == "__main__":
    main()
    exit_done()
