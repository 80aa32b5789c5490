"""Stage ``warmstart``: the policy RL starts from, written to ``models/base``.

- Default (``model.name_or_path: null``): build the word-level tokenizer and a tiny Llama from a
  config, then SFT it on synthetic solutions (:func:`prmflow.lm.sft.sft`). The policy is
  *imperfect on purpose*: training stops once a probe set's greedy accuracy reaches
  ``warmstart.target_accuracy``, because RL needs headroom and failures need partly-right
  prefixes for a PRM to credit.
- Real model (HF id or local path): load it; SFT on the curated train split when
  ``warmstart.enabled``, else save it as is. Never builds a tokenizer; loads the one saved with
  the model as saved (:func:`prmflow.lm.models.load_tokenizer`).

Before any work: the model folder is checked (tokenizer, chat template when ``required``:
:func:`prmflow.lm.folders.check_model_source`) and every token budget against the curated
references in the policy's tokens (:func:`prmflow.lm.budgets.check_all`).
"""

from __future__ import annotations

import argparse
import random
import shutil
import time
from pathlib import Path

import torch

from prmflow import tracking, workspace
from prmflow.config import Params, load_params
from prmflow.errors import reported
from prmflow.io import atomic_dir, atomic_write_json, atomic_write_text
from prmflow.lm.budgets import check_all, resolve_setting
from prmflow.lm.folders import check_model_source
from prmflow.lm.models import build_tiny_model, build_tokenizer, count_parameters, load_causal_lm, load_tokenizer, resolve_device
from prmflow.lm.prompts import format_prompt, uses_chat_template
from prmflow.lm.sft import sft
from prmflow.plots import Panel, save
from prmflow.problems import synthetic
from prmflow.resources import usage
from tasks import exit_done


def sft_examples(params: Params, curated_dir: str | Path, tokenizer) -> tuple[list[tuple[str, str]], list[dict]]:
    """(prompt, solution) pairs to train on, and a probe set to measure the learning curve.

    Synthetic: fresh problems from ``warmstart.seed`` (more variety than the curated train set)
    and a probe set from ``seed + 1000``, both minus any question in the eval split, so
    evaluation stays uncontaminated; on the ``dag`` task ``warmstart.verbose_fraction`` of the
    solutions compute every assignment (distractors too). Other sources: the curated train
    split, its last ``probe_problems`` held out as the probe.
    """
    w, d = params.warmstart, params.data
    curated = workspace.load_curated(curated_dir)
    if d.source == "synthetic":
        eval_questions = set(curated["eval"]["question"])
        probs = [p for p in synthetic.problems(w.num_examples, w.seed, d) if p["question"] not in eval_questions]
        style = random.Random(w.seed + 7)
        verbose = d.task == "dag" and w.verbose_fraction > 0
        rows = [
            (
                p["question"],
                synthetic.verbose_solution(p["question"], d.modulus) if verbose and style.random() < w.verbose_fraction else p["answer"],
            )
            for p in probs
        ]
        probe = [p for p in synthetic.problems(w.probe_problems, w.seed + 1000, d) if p["question"] not in eval_questions]
    else:
        train = list(curated["train"])
        n_probe = min(w.probe_problems, len(train) // 5) if w.target_accuracy is not None else 0
        probe = train[len(train) - n_probe :] if n_probe else []
        rows = [(p["question"], p["answer"]) for p in train[: len(train) - n_probe]]
    if not rows:
        raise ValueError(f"{curated_dir}: no training problems for the warm start")
    return [(format_prompt(q, params.model, tokenizer), a) for q, a in rows], probe


def initial_policy(params: Params):
    """``(model, tokenizer, needs_sft)``: the tiny default (always trained) or a real model."""
    if params.model.name_or_path is None:
        tokenizer = build_tokenizer(params.data.modulus)
        model = build_tiny_model(tokenizer, params.model, seed=params.warmstart.seed)
        return model.to(resolve_device(params.model.device)), tokenizer, True
    m = params.model
    tokenizer = load_tokenizer(m.name_or_path, revision=m.revision)
    model = load_causal_lm(m.name_or_path, m, revision=m.revision)
    return model, tokenizer, params.warmstart.enabled and params.warmstart.max_steps > 0


def run(
    params: Params,
    curated_dir=workspace.CURATED,
    out_dir=workspace.BASE,
    metrics_path=workspace.METRICS["warmstart"],
    plots_dir=workspace.PLOTS["warmstart"],
    log_fn=None,
) -> dict:
    """Build or load the policy, SFT it if configured, and save it (atomically) to ``out_dir``."""
    t0 = time.time()
    random.seed(params.warmstart.seed)
    torch.manual_seed(params.warmstart.seed)
    check_model_source(params.model)
    with atomic_dir(out_dir) as tmp:
        model, tokenizer, do_sft = initial_policy(params)
        curated = workspace.load_curated(curated_dir)
        budgets = check_all(params, {s: list(curated[s]) for s in ("train", "eval")}, tokenizer)
        metrics = {
            "num_parameters": count_parameters(model),
            "sft_steps": 0,
            "chat_template": int(uses_chat_template(params.model, tokenizer)),
        }
        metrics.update({k: v for b in budgets.values() for k, v in b.metrics().items()})
        curve: list = []
        if do_sft:
            pairs, probe = sft_examples(params, curated_dir, tokenizer)
            params, _ = resolve_setting(params, "evaluate.max_new_tokens", probe, tokenizer) if probe else (params, None)
            res = sft(model, tokenizer, pairs, params, tmp, log_fn, probe)
            curve = res.pop("probe_curve")
            metrics.update(res, sft_examples=len(pairs))
        shutil.rmtree(tmp / "trainer", ignore_errors=True)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    metrics.update(usage(t0))
    atomic_write_json(metrics_path, metrics)
    rows = "step,probe_accuracy\n" + "".join(f"{s},{a:.4f}\n" for s, a in curve)
    atomic_write_text(Path(plots_dir) / "probe_curve.csv", rows)
    w = params.warmstart
    save(
        Path(plots_dir) / "probe_curve.png",
        Panel(
            "Warm start: greedy accuracy on the probe set",
            "SFT step",
            "probe accuracy",
            [("probe accuracy", [s for s, _ in curve], [a for _, a in curve])],
            ylim=(0, 1.02),
            hline=(w.target_accuracy, "target (warmstart.target_accuracy)") if w.target_accuracy else None,
        ),
    )
    return metrics


def main(argv: list[str] | None = None) -> None:
    with reported("warmstart"):
        ap = argparse.ArgumentParser(prog="python -m tasks.warmstart", description=__doc__)
        ap.add_argument("--params", default="params.yaml")
        args = ap.parse_args(argv)
        params = load_params(args.params)
        section = {"model": params.model.model_dump(), "warmstart": params.warmstart.model_dump()}
        with tracking.stage_run("warmstart", section, __doc__) as run_:
            import mlflow

            metrics = run(params, log_fn=lambda m, step: mlflow.log_metrics(m, step=step))
            mlflow.log_metrics(tracking.metric_dict(metrics))
            mlflow.log_artifacts(workspace.PLOTS["warmstart"], artifact_path="plots")
            probe = metrics.get("probe_accuracy")
            tracking.log_policy_model(
                workspace.BASE,
                run_.info.run_id,
                params,
                load_tokenizer(workspace.BASE),
                aliases=("base",),
                description=f"Warm-started base policy: {metrics['sft_steps']} SFT steps"
                + (f", probe accuracy {probe:.3f}" if probe is not None else "")
                + f" ({params.model.name_or_path or 'tiny built-in Llama'}).",
                tags={"stage": "warmstart", "sft_steps": metrics["sft_steps"], **({"probe_accuracy": probe} if probe is not None else {})},
            )
        print(f"warmstart: {metrics}")


if __name__ == "__main__":
    main()
    exit_done()
