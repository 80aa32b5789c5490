"""Stage ``train_policy``: GRPO-family RL with hybrid rewards (outcome + process + length).

Each step samples a group of completions per drawn problem, rewards them (``rl.weights``:
``process: 0`` is the outcome-only baseline; ``rl.process_mode`` says how PRM scores enter),
and takes clipped policy-gradient steps (:mod:`prmflow.rl.trainer`). Checkpoints every
``rl.checkpoint_every`` steps; a re-run with the same inputs resumes from the last one.
Writes the candidate policy ``models/policy``, ``metrics/train_policy.json`` and the learning
curve ``plots/train_policy/``. Under ``torchrun --nproc_per_node N`` the ranks share each step's
prompts and train with DDP (:mod:`prmflow.compute.distributed`); rank 0 writes and logs.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from prmflow import tracking, workspace
from prmflow.compute import distributed
from prmflow.config import ORACLE_SCORERS, ConfigError, Params, load_params
from prmflow.errors import reported
from prmflow.io import atomic_dir, atomic_write_json
from prmflow.lm.budgets import resolve_setting
from prmflow.lm.models import load_causal_lm, load_tokenizer, resolve_device
from prmflow.lm.prompts import format_prompt
from prmflow.prm.oracle import OracleScorer
from prmflow.prm.reuse import ReuseScorer
from prmflow.prm.scorers import PolicyConfidenceScorer, PRMScorer
from prmflow.resources import usage
from prmflow.rl import checkpoint
from prmflow.rl.mc_values import MCValueScorer
from prmflow.rl.online_prm import OnlinePRM
from prmflow.rl.rewarder import Rewarder
from prmflow.rl.trainer import (
    PieceDecoder,
    TrainingDiverged,
    greedy_accuracy,
    learning_rate,
    optimise,
    progress_line,
    rollout,
    step_row,
    summarize,
    write_learning_curve,
)
from tasks import exit_done

__all__ = ["TrainingDiverged", "run", "main"]


def by_prompt(train: list[dict], field: str, params: Params, tokenizer) -> dict[str, str]:
    """Each train problem's ``field``, keyed by its prompt as the policy sees it (what the
    scorers get)."""
    return {format_prompt(p["question"], params.model, tokenizer): str(p[field]) for p in train}


def load_scorer(prm_dir, params: Params, device, policy_dir=None, train: list[dict] = (), tokenizer=None):
    """The step scorer of ``rl.process_scorer`` and what identifies it (for the checkpoint's
    fingerprint): the learned PRM when ``prm_dir`` holds one (also used by the monitors, so it is
    loaded even at process weight 0), the synthetic task's oracle for ``train``'s prompts, the
    dead-step scorer (``reuse``) or the start policy's confidence; ``None`` when there is none and none is needed."""
    rl = params.rl
    if rl.process_scorer in ORACLE_SCORERS:  # synthetic data only (Params checks)
        tokenizer = tokenizer or load_tokenizer(policy_dir)
        questions = by_prompt(train, "question", params, tokenizer)
        scorer = OracleScorer(questions, params.data.modulus, params.data.step_split, needed=rl.process_scorer == "oracle_needed")
        return scorer, None  # rl.process_scorer is in the fingerprint
    if rl.process_scorer == "reuse":
        if rl.weight("process") <= 0:
            return None, None
        tokenizer = tokenizer or load_tokenizer(policy_dir)
        answers = by_prompt(train, "final_answer", params, tokenizer)
        return ReuseScorer(answers, params.data.solution_format().answer_rules, params.data.step_split), None
    if rl.process_scorer == "mc":
        return None, None  # sampled from the policy being trained: made beside it (mc_scorer)
    if rl.process_scorer == "confidence":
        if rl.weight("process") <= 0:
            return None, None
        scorer = PolicyConfidenceScorer.from_pretrained(policy_dir, device, step_split=params.data.step_split)
        return scorer, None  # the start policy is in the fingerprint already
    prm_path = Path(prm_dir) if prm_dir and workspace.has_model(prm_dir) else None
    if prm_path is None and rl.weight("process") > 0:
        raise FileNotFoundError(f"{prm_dir}: no PRM found, but rl.weights.process = {rl.weight('process')}")
    return (PRMScorer.from_pretrained(prm_path, device=device) if prm_path else None), prm_path


def mc_scorer(model, tokenizer, train: list[dict], params: Params) -> MCValueScorer | None:
    """``rl.process_scorer: mc`` at a nonzero process weight: Monte-Carlo step values sampled
    from ``model`` (the policy being trained) at the RL temperature and token budget."""
    rl = params.rl
    if rl.process_scorer != "mc" or rl.weight("process") <= 0:
        return None
    answers = by_prompt(train, "final_answer", params, tokenizer)
    fmt = params.data.solution_format()
    return MCValueScorer(model, tokenizer, answers, rl.mc_rollouts, rl.temperature, rl.max_new_tokens, fmt, seed=rl.seed)


def start_or_resume(params: Params, policy_dir: Path, ckpt_dir: Path, fp: str, device):
    """``(model, tokenizer, optimizer, history, start step)``: from this run's checkpoint when
    there is one (same fingerprint), else from the start policy."""
    state = checkpoint.load(ckpt_dir, fp)
    start_dir = ckpt_dir if state else policy_dir
    model, tokenizer = load_causal_lm(start_dir, params.model, device), load_tokenizer(start_dir)
    optimizer = torch.optim.AdamW(model.parameters(), lr=params.rl.learning_rate, betas=tuple(params.rl.adam_betas), weight_decay=0.0)
    if not state:
        return model, tokenizer, optimizer, [], 0
    checkpoint.restore(ckpt_dir, optimizer)
    print(f"train_policy: resuming from checkpoint at step {state['step']}")
    return model, tokenizer, optimizer, state["history"], state["step"]


def save_checkpoint(ckpt_dir: Path, model, tokenizer, optimizer, step: int, history: list[dict], fp: str) -> None:
    """Rank 0 writes the checkpoint; under torchrun every rank waits for it."""
    if distributed.is_main():
        checkpoint.save(ckpt_dir, model, tokenizer, optimizer, step, history, fp)
    distributed.barrier()


def run(
    params: Params,
    policy_dir=workspace.BASE,
    prm_dir=workspace.PRM,
    curated_dir=workspace.CURATED,
    out_dir=workspace.POLICY,
    ckpt_dir=workspace.POLICY_CKPT,
    metrics_path=workspace.METRICS["train_policy"],
    plots_dir=workspace.PLOTS["train_policy"],
    log_fn=None,
    max_steps_this_run: int | None = None,
) -> dict:
    """RL-train the policy in ``policy_dir``; write ``out_dir``, metrics and a learning curve.

    ``log_fn(metrics: dict, step: int)`` receives per-step metrics (MLflow in the CLI).
    ``max_steps_this_run`` stops early without finishing (tests of resume use it).
    """
    t0 = time.time()
    policy_dir, ckpt_dir = Path(policy_dir), Path(ckpt_dir)
    train = workspace.load_split("train", None, curated_dir)
    start_tokenizer = load_tokenizer(policy_dir)
    params, budget = resolve_setting(params, "rl.max_new_tokens", train, start_tokenizer)
    rl, device = params.rl, resolve_device(params.model.device)
    if rl.dynamic_sampling and distributed.world_size() > 1:
        raise ConfigError("rl.dynamic_sampling: not supported under torchrun (each rank would keep a different number of groups)")
    # shards split evenly, or fail now
    distributed.my_shards(rl.prompts_per_step, params.compute.rl_shard_prompts, distributed.world_size(), 0)
    scorer, prm_path = load_scorer(prm_dir, params, device, policy_dir, train, start_tokenizer)
    fmt = params.data.solution_format()
    fp = checkpoint.fingerprint(rl, policy_dir, prm_path, {"step_split": fmt.step_split, "answer_rules": list(fmt.answer_rules)})
    model, tokenizer, optimizer, history, start = start_or_resume(params, policy_dir, ckpt_dir, fp, device)
    ref = load_causal_lm(policy_dir, params.model, device).eval() if rl.kl_coef > 0 else None
    trained = distributed.wrap(model)  # under torchrun: DDP, gradients all-reduced
    writer = distributed.is_main()  # rank 0 alone logs and writes

    eval_set = workspace.load_split("eval", rl.eval_problems, curated_dir)
    scorer = mc_scorer(model, tokenizer, train, params) or scorer
    if rl.prm_online_lr > 0 and scorer is not None:
        if start:
            print(f"train_policy: the online PRM starts again from {prm_path} (the checkpoint does not hold its head)")
        scorer = OnlinePRM(scorer, rl.prm_online_lr, rl.prm_online_updates)
    rewarder, pieces = Rewarder(rl, scorer, fmt), PieceDecoder(tokenizer)
    if start == 0 and rl.eval_every:
        acc, steps_ = greedy_accuracy(model, tokenizer, eval_set, params)
        history.append({"step": 0, "eval/greedy_acc": acc, "eval/mean_steps": steps_})
        if log_fn and writer:
            log_fn(history[-1], 0)
    base_steps = None
    end = rl.steps if max_steps_this_run is None else min(rl.steps, start + max_steps_this_run)
    for step in range(start, end):
        r = rollout(model, tokenizer, rewarder, pieces, train, step, params)
        last_good = f"{ckpt_dir}, step {history[-1].get('step', start) if history else start}"
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, rl)
        loss_stats = optimise(trained, optimizer, ref, r.batch, rl, step, last_good) if r.batch is not None else {}
        loss_stats["lr"] = learning_rate(step, rl)
        row = distributed.pool_stats(step_row(step, r, loss_stats, fmt))
        if base_steps is None:  # step inflation is measured against the start policy's greedy steps
            base_steps = history[0].get("eval/mean_steps") if history else row["train/mean_steps"]
        row["monitor/step_inflation"] = row["train/mean_steps"] / base_steps if base_steps else 1.0
        if rl.eval_every and ((step + 1) % rl.eval_every == 0 or step + 1 == rl.steps):
            row["eval/greedy_acc"], row["eval/mean_steps"] = greedy_accuracy(model, tokenizer, eval_set, params)
        history.append(row)
        if log_fn and writer:
            log_fn(row, step + 1)
        if writer:
            print(progress_line(row, rl.steps), flush=True)
        if (step + 1) % rl.checkpoint_every == 0 or step + 1 == rl.steps:
            save_checkpoint(ckpt_dir, model, tokenizer, optimizer, step + 1, history, fp)

    if end != rl.steps:
        save_checkpoint(ckpt_dir, model, tokenizer, optimizer, end, history, fp)
        return {"stopped_at": end}
    summary = {**summarize(history, rl), **budget.metrics()}
    if not writer:
        return summary
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    summary.update(usage(t0))
    write_learning_curve(history, plots_dir)
    atomic_write_json(metrics_path, summary)
    return summary


def main(argv: list[str] | None = None) -> None:
    with reported("train_policy"):
        ap = argparse.ArgumentParser(prog="python -m tasks.train_policy", description=__doc__)
        ap.add_argument("--params", default="params.yaml")
        ap.add_argument("--policy", default=workspace.BASE, help="policy to start from (lifecycle.start_policy)")
        args = ap.parse_args(argv)
        params = load_params(args.params)
        if distributed.init() > 1 and not distributed.is_main():  # torchrun: rank 0 logs to MLflow
            try:
                run(params, policy_dir=args.policy)
            finally:
                distributed.close()
            return

        import mlflow

        with tracking.stage_run("train_policy", params.rl.model_dump(), __doc__) as run_:

            def log_fn(row: dict, step: int) -> None:
                mlflow.log_metrics(tracking.metric_dict({k: v for k, v in row.items() if k != "step"}), step=step)

            summary = run(params, policy_dir=args.policy, log_fn=log_fn)
            mlflow.log_metrics(tracking.metric_dict(summary))
            mlflow.log_artifacts(workspace.PLOTS["train_policy"], artifact_path="plots")
            rl, start, end = params.rl, summary.get("eval_greedy_acc_start"), summary.get("eval_greedy_acc_end")
            curve = f"; greedy accuracy on {rl.eval_problems} eval problems {start:.3f} -> {end:.3f}" if start is not None else ""
            tracking.log_policy_model(
                workspace.POLICY,
                run_.info.run_id,
                params,
                load_tokenizer(workspace.POLICY),
                aliases=("candidate",),
                description=f"RL candidate: {rl.steps} steps from {args.policy} (reward weights {rl.weights}, {rl.process_mode}){curve}.",
                tags={"stage": "train_policy", "rl_steps": rl.steps, **({"eval_greedy_acc_end": end} if end is not None else {})},
            )
        print(f"train_policy: {summary}")
        distributed.close()


if __name__ == "__main__":
    main()
    exit_done()
