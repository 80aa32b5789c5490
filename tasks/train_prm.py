"""Stage ``train_prm``: train the process reward model and measure it against a baseline.

1. Data (:mod:`prmflow.prm.training`): our step labels (``data/labels``, ``prm.use_own_labels``),
   earlier iterations' labels (``flow_state.yaml``: ``label_history``) and/or external stepwise supervision
   (``prm.extra_data``, validated by :mod:`prmflow.prm.data`), split by prompt:
   ``prm.eval_fraction`` of the prompts are held out.
2. Model (:class:`prmflow.prm.model.PRMModel`): the ``prm.init`` causal LM with a factored value
   head (an MC label estimates "the prefix is right" x "the policy finishes from there"; the
   score is the correctness factor), trained with the transformers ``Trainer``.
3. Threshold: ``prm.threshold``, or the one with the best first-error F1 on the calibration
   records (``prm.calibration_fraction`` of the held-out prompts, used for nothing else); with
   ``prm.calibrate`` the scores are mapped so that it sits at 0.5.
4. Evaluation (:mod:`prmflow.prm.evaluation`) of the learned PRM and of the training-free
   policy-confidence scorer, the same way: on the held-out *test* records (``<scorer>.test*``),
   on fresh policy chains of the first ``prm.eval_problems`` eval problems against the oracle,
   and as best-of-N rerankers.

Record counts in the metrics add up, each drop with its reason: ``records_read = records +
dropped_no_steps``, ``records = train_records + heldout_records``, ``train_records =
train.records_used + train.dropped_no_step_in_context`` and ``train_steps_labelled =
train.steps_used + train.steps_truncated`` (steps past the model's context) and
``heldout_records = calibration_records + test_records``.

Outputs: ``models/prm/``, ``metrics/prm.json``, ``plots/prm/`` (:mod:`prmflow.prm.plots`: ROC and
calibration of both scorers, best-of-N vs N). The CLI logs to the stage's MLflow run and
registers ``prmflow-prm``.
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from pathlib import Path

from prmflow import tracking, workspace
from prmflow.compute import distributed
from prmflow.config import Params, load_params, load_state
from prmflow.errors import reported
from prmflow.io import atomic_dir, atomic_write_json
from prmflow.lm.budgets import resolve_setting
from prmflow.lm.models import load_causal_lm, load_tokenizer
from prmflow.prm.evaluation import calibration_split, evaluate_scorer, sample_chains, summary_table
from prmflow.prm.plots import write_plots
from prmflow.prm.scorers import PolicyConfidenceScorer, PRMScorer
from prmflow.prm.training import LogFn, build_model, load_records, save_prm, split_by_prompt, train_model
from prmflow.resources import usage
from tasks import exit_done


def run(
    params: Params,
    policy_dir=workspace.BASE,
    labels_dir=workspace.LABELS,
    curated_dir=workspace.CURATED,
    out_dir=workspace.PRM,
    metrics_path=workspace.METRICS["train_prm"],
    plots_dir=workspace.PLOTS["train_prm"],
    history_dir=None,
    log_fn: LogFn | None = None,
) -> dict:
    """Train, choose the threshold, evaluate both scorers, write the outputs; return the metrics."""
    t0 = time.time()
    eval_problems = workspace.load_split("eval", params.prm.eval_problems, curated_dir)
    params, budget = resolve_setting(params, "prm.max_new_tokens", eval_problems, load_tokenizer(policy_dir))  # before any work
    cfg = params.prm
    random.seed(cfg.seed)
    records, counts = load_records(params, labels_dir, history_dir)
    train_recs, held = split_by_prompt(records, cfg.eval_fraction, cfg.seed)
    calib, test = calibration_split(held, cfg)
    model, tokenizer = build_model(params, policy_dir)
    metrics: dict = {
        **counts,
        "train_records": len(train_recs),
        "heldout_records": len(held),
        "calibration_records": len(calib),
        "test_records": len(test),
        "train_steps_labelled": sum(len(r["completions"]) for r in train_recs),
        "soft_labels": cfg.soft_labels,
        **budget.metrics(),
    }
    if not distributed.is_main():  # torchrun: the other ranks train their share of each batch, rank 0 does the rest
        with tempfile.TemporaryDirectory() as tmp:
            return {**metrics, **train_model(model, tokenizer, train_recs, params, Path(tmp))}
    with atomic_dir(out_dir) as tmp:
        metrics.update(train_model(model, tokenizer, train_recs, params, tmp, log_fn))
        shutil.rmtree(tmp / "trainer", ignore_errors=True)

        # Eval chains: fresh samples of the policy on eval problems (never labelled or trained on).
        policy = load_causal_lm(policy_dir, params.model, next(model.parameters()).device)
        ptok = load_tokenizer(policy_dir)
        t1 = time.time()
        chains = sample_chains(policy, ptok, eval_problems, params)
        metrics["sampling_time_s"] = round(time.time() - t1, 2)
        metrics["chains.truncation_rate"] = sum(not f for f in chains.finished) / max(1, len(chains.finished))

        t1 = time.time()
        split = params.data.step_split
        m_prm, s_prm, threshold = evaluate_scorer(PRMScorer(model, tokenizer, step_split=split), "prm", calib, test, chains, cfg)
        metrics["prm_eval_time_s"] = round(time.time() - t1, 2)
        m_conf, s_conf, _ = evaluate_scorer(PolicyConfidenceScorer(policy, ptok, step_split=split), "confidence", calib, test, chains, cfg)
        metrics.update(m_prm)
        metrics.update(m_conf)
        metrics["backbone_referenced"] = int(save_prm(model, tokenizer, tmp, out_dir, threshold, params, policy_dir))

    write_plots({"prm": s_prm, "confidence": s_conf}, test, chains, plots_dir)
    metrics.update(usage(t0))
    atomic_write_json(metrics_path, metrics)
    return metrics


def main(argv: list[str] | None = None) -> None:
    with reported("train_prm"):
        ap = argparse.ArgumentParser(
            prog="python -m tasks.train_prm", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        ap.add_argument("--params", default="params.yaml")
        ap.add_argument("--policy", default=workspace.BASE)
        ap.add_argument("--labels", default=workspace.LABELS)
        ap.add_argument("--curated", default=workspace.CURATED)
        ap.add_argument("--out", default=workspace.PRM)
        ap.add_argument("--state", default="flow_state.yaml", help="the flow's state (earlier iterations' labels)")
        ap.add_argument(
            "-S",
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="DVC-style override, e.g. -S prm.extra_data=path",
        )
        args = ap.parse_args(argv)
        params = load_params(args.params, args.overrides)
        state = load_state(args.state)
        if distributed.init() > 1 and not distributed.is_main():  # torchrun: rank 0 logs to MLflow
            try:
                run(params, args.policy, args.labels, args.curated, args.out, history_dir=state.label_history)
            finally:
                distributed.close()
            return

        import mlflow

        with tracking.stage_run("train_prm", params.prm.model_dump(), __doc__) as run_:
            metrics = run(
                params,
                policy_dir=args.policy,
                labels_dir=args.labels,
                curated_dir=args.curated,
                out_dir=args.out,
                history_dir=state.label_history,
                log_fn=lambda m, s: mlflow.log_metrics(m, step=s),
            )
            mlflow.log_metrics(tracking.metric_dict(metrics))
            table = summary_table(metrics)
            mlflow.log_text(table, "prm_vs_confidence.md")
            mlflow.log_artifacts(workspace.PLOTS["train_prm"], artifact_path="plots")
            auc, base_auc, f1 = (metrics.get(k) for k in ("prm.chains.step_auc", "confidence.chains.step_auc", "prm.chains.first_error_f1"))
            tracking.log_prm_model(
                args.out,
                run_.info.run_id,
                description="Process reward model"
                + (f": step AUC {auc:.3f} on fresh policy chains (policy-confidence baseline {base_auc:.3f})" if auc is not None else "")
                + (f", first-error F1 {f1:.3f}" if f1 is not None else "")
                + ".",
                tags={
                    "stage": "train_prm",
                    **{k: v for k, v in {"prm/chains/step_auc": auc, "prm/chains/first_error_f1": f1}.items() if v is not None},
                },
            )
        print(table, end="")
        distributed.close()


if __name__ == "__main__":
    main()
    exit_done()
