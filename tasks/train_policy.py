"""Stage ``train_policy``: GRPO-family RL with hybrid rewards (outcome + process + length).

Loss and advantages are written here and in ``reward/`` rather than taken from TRL because
step-level process advantages (DeepSeekMath sum / PURE min credit) need per-token advantages
that GRPOTrainer does not support; sampling, models and optimisation are torch/transformers.

One RL step: sample ``group_size`` completions for each of ``prompts_per_step`` train problems,
reward them, compute advantages, and take ``updates_per_step`` clipped policy-gradient steps.
Checkpoints every ``checkpoint_every`` steps; a re-run with the same inputs resumes from the last.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from reward.parse import FINAL_MARKER, extract_answer, split_steps
from tasks.config import Params, RLConfig, load_params
from tasks.io import atomic_dir, atomic_write_json, atomic_write_text

OUT_DIR = "models/policy"
CKPT_DIR = "models/policy_ckpt"
METRICS_PATH = "metrics/train_policy.json"
PLOTS_DIR = "plots/train_policy"


class TrainingDiverged(RuntimeError):
    """The loss or gradients became NaN/inf; the last good checkpoint is kept."""


def step_end_positions(token_pieces: list[str]) -> list[int]:
    """Exclusive end index (in tokens) of each reasoning step of a completion.

    ``token_pieces`` are the decoded text of each completion token. A step ends at the token
    whose text closes a non-empty line; the final answer line (``####``) and anything after it
    are not steps, matching :func:`reward.parse.split_steps`.
    """
    ends, line = [], ""
    for i, piece in enumerate(token_pieces):
        parts = piece.split("\n")
        line += parts[0]
        for nxt in parts[1:]:
            text = line.strip()
            if text.startswith(FINAL_MARKER):
                return ends
            if text:
                ends.append(i + 1)
            line = nxt
    return ends


@dataclass
class Batch:
    """Tensors of one RL step: ``(B, T)`` with B = prompts x group size."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    completion_mask: torch.Tensor
    """1 on completion tokens that get a loss (EOS included), 0 on prompt and padding."""
    advantages: torch.Tensor
    old_logp: torch.Tensor


def build_batch(prompt_ids: list[list[int]], completion_ids: list[list[int]], token_adv: list[torch.Tensor], pad_id: int) -> tuple[torch.Tensor, ...]:
    """Right-padded ``input_ids``, ``attention_mask``, ``completion_mask``, ``advantages``."""
    n = max(len(p) + len(c) for p, c in zip(prompt_ids, completion_ids))
    B = len(prompt_ids)
    ids = torch.full((B, n), pad_id, dtype=torch.long)
    attn = torch.zeros((B, n), dtype=torch.long)
    cmask = torch.zeros((B, n), dtype=torch.float)
    adv = torch.zeros((B, n), dtype=torch.float)
    for i, (p, c, a) in enumerate(zip(prompt_ids, completion_ids, token_adv)):
        L = len(p) + len(c)
        ids[i, :L] = torch.tensor(p + c)
        attn[i, :L] = 1
        cmask[i, len(p) : L] = 1
        adv[i, len(p) : L] = a[: len(c)]
    return ids, attn, cmask, adv


def sequence_logprobs(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, with_entropy: bool = False):
    """Log-prob of each token given its prefix, aligned to ``input_ids`` ``(B, T)`` (0 at t=0)."""
    from tasks.policy_loss import entropy_from_logits, token_logprobs

    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1].float()
    logp = token_logprobs(logits, input_ids[:, 1:])
    logp = torch.nn.functional.pad(logp, (1, 0))
    if not with_entropy:
        return logp, None
    ent = torch.nn.functional.pad(entropy_from_logits(logits), (1, 0))
    return logp, ent


def fingerprint(params: Params, policy_dir: Path, prm_dir: Path | None) -> str:
    """Identity of a training run: a checkpoint is resumed only by the run that wrote it."""
    h = hashlib.sha256(json.dumps(params.rl.model_dump(), sort_keys=True).encode())
    for d in (policy_dir, prm_dir):
        if d is not None and d.exists():
            for f in sorted(d.glob("*.safetensors")) + sorted(d.glob("*.json")):
                h.update(f.name.encode())
                h.update(str(f.stat().st_size).encode())
                h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()[:16]


def save_checkpoint(ckpt_dir: Path, model, tokenizer, optimizer, step: int, history: list[dict], fp: str) -> None:
    with atomic_dir(ckpt_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        torch.save({"optimizer": optimizer.state_dict(), "rng": torch.get_rng_state()}, tmp / "trainer_state.pt")
        (tmp / "progress.json").write_text(json.dumps({"step": step, "fingerprint": fp, "history": history}))


def load_checkpoint(ckpt_dir: Path, fp: str) -> dict | None:
    prog = ckpt_dir / "progress.json"
    if not prog.exists():
        return None
    state = json.loads(prog.read_text())
    return state if state.get("fingerprint") == fp else None


class Rewarder:
    """Turns sampled completions into per-sequence rewards and per-token advantages."""

    def __init__(self, rl: RLConfig, scorer=None):
        self.rl = rl
        self.scorer = scorer

    def __call__(self, prompts: list[str], texts: list[str], answers: list[str], n_tokens: list[int], pieces: list[list[str]]) -> tuple[list[torch.Tensor], dict]:
        from reward.advantages import grpo_advantages, step_advantages, tokens_from_steps
        from reward.hybrid import RewardWeights, mix
        from reward.length import overlong_penalty
        from reward.outcome import outcome_rewards
        from reward.process import process_rewards

        rl, G = self.rl, self.rl.group_size
        w = RewardWeights(**rl.weights.model_dump())
        outcome = outcome_rewards(texts, answers)
        length = overlong_penalty(n_tokens, rl.length_budget, rl.max_new_tokens)
        step_scores = self.scorer.score(prompts, texts) if self.scorer is not None else None
        proc = process_rewards(step_scores, rl.process_agg) if step_scores is not None else None
        scale = rl.advantage == "grpo"
        if w.process == 0 or rl.process_mode == "sequence":
            seq_reward = mix(outcome, proc if w.process else None, length if w.length else None, w)
            seq_adv = grpo_advantages(torch.tensor(seq_reward), G, scale_by_std=scale)
            token_adv = [torch.full((n,), float(a)) for a, n in zip(seq_adv, n_tokens)]
        else:
            w_seq = RewardWeights(outcome=w.outcome, process=0.0, length=w.length)
            seq_reward = mix(outcome, None, length if w.length else None, w_seq)
            seq_adv = grpo_advantages(torch.tensor(seq_reward), G, scale_by_std=scale)
            credit = "sum" if rl.process_mode == "step_sum" else "min"
            step_adv = step_advantages(step_scores, G, credit, scale_by_std=scale)
            token_adv = []
            for a, sa, n, pc in zip(seq_adv, step_adv, n_tokens, pieces):
                ends = step_end_positions(pc)[: len(sa)]
                t = torch.full((n,), float(a))
                if ends:
                    t = t + w.process * tokens_from_steps(list(sa[: len(ends)]), [e - 1 for e in ends], n)  # inclusive ends
                token_adv.append(t)
        stats = {
            "reward/outcome": _mean(outcome),
            "reward/length": _mean(length),
            "reward/total": _mean(seq_reward),
        }
        if proc is not None:
            stats["reward/process"] = _mean(proc)
            verdict = [p > 0.5 for p in proc]
            right = [o > 0.5 for o in outcome]
            stats["monitor/prm_outcome_disagreement"] = _mean([float(v != r) for v, r in zip(verdict, right)])
            wrong = [v for v, r in zip(verdict, right) if not r]
            good = [v for v, r in zip(verdict, right) if r]
            stats["monitor/prm_high_on_wrong"] = _mean([float(v) for v in wrong]) if wrong else 0.0
            stats["monitor/prm_low_on_right"] = _mean([float(not v) for v in good]) if good else 0.0
        return token_adv, stats


def _mean(xs) -> float:
    xs = list(xs)
    return float(sum(xs) / len(xs)) if xs else 0.0


def greedy_accuracy(model, tokenizer, problems: list[dict], params: Params) -> tuple[float, float]:
    """Greedy accuracy and mean steps on ``problems`` (for the learning curve)."""
    from tasks.modeling import format_prompt
    from tasks.sampling import sample

    prompts = [format_prompt(p["question"], params.model) for p in problems]
    s = sample(model, tokenizer, prompts, 1, greedy=True, max_new_tokens=params.rl.max_new_tokens, batch_size=256)
    acc = _mean([float(extract_answer(t) == p["final_answer"]) for t, p in zip(s.texts, problems)])
    return acc, _mean([len(split_steps(t)) for t in s.texts])


def train_policy(params: Params, policy_dir="models/base", prm_dir="models/prm", curated_dir="data/curated", out_dir=OUT_DIR, ckpt_dir=CKPT_DIR, metrics_path=METRICS_PATH, plots_dir=PLOTS_DIR, log_fn=None, max_steps_this_run: int | None = None) -> dict:
    """RL-train the policy in ``policy_dir``; write ``out_dir``, metrics and a learning curve.

    ``log_fn(metrics: dict, step: int)`` receives per-step metrics (MLflow in the CLI).
    ``max_steps_this_run`` stops early without finishing (tests of resume use it).
    """
    from tasks.curate import load_curated
    from tasks.modeling import format_prompt, load_causal_lm, load_tokenizer, resolve_device
    from tasks.policy_loss import clipped_policy_loss, kl_k3, masked_mean
    from tasks.sampling import sample

    rl = params.rl
    t0 = time.time()
    policy_dir, ckpt_dir = Path(policy_dir), Path(ckpt_dir)
    device = resolve_device(params.model.device)
    prm_path = Path(prm_dir) if prm_dir and (Path(prm_dir) / "config.json").exists() else None
    need_prm = rl.weights.process > 0
    if need_prm and prm_path is None:
        raise FileNotFoundError(f"{prm_dir}: no PRM found, but rl.weights.process = {rl.weights.process}")
    scorer = None
    if prm_path is not None:
        from reward.prm_scorer import PRMScorer

        scorer = PRMScorer.from_pretrained(prm_path, device=device)
    fp = fingerprint(params, policy_dir, prm_path)
    state = load_checkpoint(ckpt_dir, fp)
    start_dir = ckpt_dir if state else policy_dir
    model = load_causal_lm(start_dir, params.model, device)
    tokenizer = load_tokenizer(start_dir)
    ref = load_causal_lm(policy_dir, params.model, device).eval() if rl.kl_coef > 0 else None
    optimizer = torch.optim.AdamW(model.parameters(), lr=rl.learning_rate, weight_decay=0.0)
    history: list[dict] = []
    start = 0
    if state:
        ts = torch.load(ckpt_dir / "trainer_state.pt", weights_only=False)
        optimizer.load_state_dict(ts["optimizer"])
        history, start = state["history"], state["step"]
        print(f"train_policy: resuming from checkpoint at step {start}")

    curated = load_curated(curated_dir)
    train = list(curated["train"])
    eval_set = list(curated["eval"])[: rl.eval_problems]
    rewarder = Rewarder(rl, scorer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    piece_cache: dict[int, str] = {}

    def pieces(ids: list[int]) -> list[str]:
        for t in ids:
            if t not in piece_cache:
                piece_cache[t] = tokenizer.decode([t])
        return [piece_cache[t] for t in ids]

    if start == 0 and rl.eval_every:
        acc, steps_ = greedy_accuracy(model, tokenizer, eval_set, params)
        history.append({"step": 0, "eval/greedy_acc": acc, "eval/mean_steps": steps_})
        if log_fn:
            log_fn(history[-1], 0)
    base_steps = None
    end = rl.steps if max_steps_this_run is None else min(rl.steps, start + max_steps_this_run)
    for step in range(start, end):
        rng = random.Random(rl.seed * 1_000_003 + step)  # per-step seed: resume replays the same data
        probs = rng.sample(train, min(rl.prompts_per_step, len(train)))
        prompts = [format_prompt(p["question"], params.model) for p in probs]
        s = sample(
            model, tokenizer, prompts, rl.group_size, temperature=rl.temperature,
            max_new_tokens=rl.max_new_tokens, batch_size=512, seed=rl.seed * 7919 + step,
        )
        answers = [p["final_answer"] for p in probs for _ in range(rl.group_size)]
        expanded_questions = [p["question"] for p in probs for _ in range(rl.group_size)]
        token_adv, stats = rewarder(
            [format_prompt(q, params.model) for q in expanded_questions], s.texts, answers,
            s.num_tokens, [pieces(c) for c in s.completion_ids],
        )
        ids, attn, cmask, adv = build_batch(s.prompt_ids, s.completion_ids, token_adv, pad_id)
        ids, attn, cmask, adv = ids.to(device), attn.to(device), cmask.to(device), adv.to(device)
        # The completion's loss positions are its tokens (aligned: logp[t] = log p(ids[t] | ids[<t])).
        with torch.no_grad():
            old_logp, _ = sequence_logprobs(model, ids, attn)
            ref_logp = sequence_logprobs(ref, ids, attn)[0] if ref is not None else None
        model.train()
        order = torch.randperm(ids.shape[0])
        chunks = order.chunk(rl.updates_per_step)
        loss_stats: dict[str, float] = {}
        for idx in chunks:
            logp, ent = sequence_logprobs(model, ids[idx], attn[idx], with_entropy=True)
            loss, ls = clipped_policy_loss(
                logp, old_logp[idx], adv[idx], cmask[idx], rl.clip_eps_low, rl.clip_eps_high,
                agg=rl.loss_agg, max_len=rl.max_new_tokens,
            )
            if ref_logp is not None:
                kl = masked_mean(kl_k3(logp, ref_logp[idx]), cmask[idx])
                loss = loss + rl.kl_coef * kl
                loss_stats["kl"] = float(kl)
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"train_policy: loss is {float(loss.detach())} at RL step {step + 1}; stopping. "
                    f"The last good checkpoint ({ckpt_dir}, step {start if not history else history[-1].get('step', start)}) is kept."
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), rl.max_grad_norm)
            if not torch.isfinite(grad_norm):
                raise TrainingDiverged(f"train_policy: gradient norm is {float(grad_norm)} at RL step {step + 1}; stopping. Last good checkpoint kept in {ckpt_dir}.")
            optimizer.step()
            loss_stats.update(
                loss=float(loss.detach()), grad_norm=float(grad_norm), entropy=float(masked_mean(ent.detach(), cmask[idx])),
                clip_frac=float(ls.get("clip_frac", 0.0)),
            )
        model.eval()
        mean_steps = _mean([len(split_steps(t)) for t in s.texts])
        if base_steps is None:
            base_steps = history[0].get("eval/mean_steps") if history else mean_steps
        row = {
            "step": step + 1,
            **stats,
            **loss_stats,
            "train/accuracy": stats["reward/outcome"] if rl.weights.outcome else _mean([float(extract_answer(t) == a) for t, a in zip(s.texts, answers)]),
            "train/mean_tokens": _mean(s.num_tokens),
            "train/mean_steps": mean_steps,
            "monitor/step_inflation": mean_steps / base_steps if base_steps else 1.0,
        }
        if rl.eval_every and (step + 1) % rl.eval_every == 0 or step + 1 == rl.steps:
            row["eval/greedy_acc"], row["eval/mean_steps"] = greedy_accuracy(model, tokenizer, eval_set, params)
        history.append(row)
        if log_fn:
            log_fn(row, step + 1)
        print(
            f"rl step {step + 1}/{rl.steps} reward={row['reward/total']:.3f} acc={row['train/accuracy']:.3f} "
            f"tokens={row['train/mean_tokens']:.1f}" + (f" eval_acc={row['eval/greedy_acc']:.3f}" if "eval/greedy_acc" in row else ""),
            flush=True,
        )
        if (step + 1) % rl.checkpoint_every == 0 or step + 1 == rl.steps:
            save_checkpoint(ckpt_dir, model, tokenizer, optimizer, step + 1, history, fp)

    finished = end == rl.steps
    if not finished:
        save_checkpoint(ckpt_dir, model, tokenizer, optimizer, end, history, fp)
        return {"stopped_at": end}
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    summary = _summarize(history, rl)
    summary["wall_time_s"] = round(time.time() - t0, 2)
    write_learning_curve(history, plots_dir)
    atomic_write_json(metrics_path, summary)
    return summary


def _summarize(history: list[dict], rl: RLConfig) -> dict:
    last = [h for h in history if "reward/total" in h][-max(1, min(10, len(history))):]
    evals = [h for h in history if "eval/greedy_acc" in h]
    out = {"steps": rl.steps}
    for key in ("reward/total", "reward/outcome", "reward/process", "train/accuracy", "train/mean_tokens",
                "train/mean_steps", "monitor/prm_outcome_disagreement", "monitor/step_inflation", "entropy"):
        vals = [h[key] for h in last if key in h]
        if vals:
            out[f"final_{key.replace('/', '_')}"] = sum(vals) / len(vals)
    if evals:
        out["eval_greedy_acc_start"] = evals[0]["eval/greedy_acc"]
        out["eval_greedy_acc_end"] = evals[-1]["eval/greedy_acc"]
    return out


def write_learning_curve(history: list[dict], plots_dir: str | Path) -> None:
    """CSV for ``dvc plots`` and a PNG (reward, accuracy and length by RL step)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots_dir = Path(plots_dir)
    keys = ["step", "reward/total", "train/accuracy", "train/mean_tokens", "eval/greedy_acc"]
    rows = [",".join(k.replace("/", "_") for k in keys)]
    for h in history:
        rows.append(",".join("" if h.get(k) is None else f"{h[k]:.4f}" if isinstance(h[k], float) else str(h[k]) for k in keys))
    atomic_write_text(plots_dir / "learning_curve.csv", "\n".join(rows) + "\n")
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    tr = [h for h in history if "train/accuracy" in h]
    ev = [h for h in history if "eval/greedy_acc" in h]
    axes[0].plot([h["step"] for h in tr], [h["train/accuracy"] for h in tr], label="train (sampled)")
    axes[0].plot([h["step"] for h in ev], [h["eval/greedy_acc"] for h in ev], marker="o", label="eval (greedy)")
    axes[0].set(xlabel="RL step", ylabel="accuracy", title="Accuracy")
    axes[0].legend()
    axes[1].plot([h["step"] for h in tr], [h["train/mean_tokens"] for h in tr])
    axes[1].set(xlabel="RL step", ylabel="tokens", title="Completion length")
    fig.tight_layout()
    fig.savefig(plots_dir / "learning_curve.png", dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m tasks.train_policy", description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--policy", default="models/base", help="policy to start from (lifecycle.start_policy)")
    args = ap.parse_args(argv)
    params = load_params(args.params)

    import mlflow

    from tasks import tracking

    with tracking.stage_run("train_policy", params.rl.model_dump()) as run:
        def log_fn(row: dict, step: int) -> None:
            mlflow.log_metrics({k: float(v) for k, v in row.items() if k != "step" and isinstance(v, (int, float)) and math.isfinite(v)}, step=step)

        summary = train_policy(params, policy_dir=args.policy, log_fn=log_fn)
        mlflow.log_metrics(tracking.metric_dict(summary))
        mlflow.log_artifacts(PLOTS_DIR, artifact_path="plots")
        tracking.log_policy_model(OUT_DIR, run.info.run_id, params, aliases=("candidate",))
    print(f"train_policy: {summary}")


if __name__ == "__main__":
    main()
