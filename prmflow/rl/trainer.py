"""The pieces of one GRPO-family RL step, and the learning curve.

One step: draw ``prompts_per_step`` train problems (seeded by the step, so a resumed run replays
the same data), sample ``group_size`` completions each (:func:`rollout`), turn them into
per-token advantages (:class:`prmflow.rl.rewarder.Rewarder`) and a :class:`~prmflow.rl.batch.Batch`,
then take ``updates_per_step`` clipped policy-gradient steps on it (:func:`optimise`).

Loss and advantages are written here and in ``reward/`` rather than taken from TRL because
step-level process advantages (DeepSeekMath sum / PURE min credit) need per-token advantages
that TRL's GRPOTrainer does not support; sampling, models and optimisation are torch/transformers.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

import torch

from prmflow.compute import distributed
from prmflow.config import Params, RLConfig
from prmflow.io import atomic_write_text
from prmflow.lm.decode import fast_path_unsupported
from prmflow.lm.logprobs import sequence_logprobs
from prmflow.lm.precision import cpu_autocast
from prmflow.lm.prompts import format_prompt
from prmflow.lm.sampling import Samples, sample
from prmflow.lm.shared_prefix import completion_logprobs
from prmflow.plots import Panel, save
from prmflow.rl.batch import Batch, build_batch, micro_batches
from prmflow.rl.loss import clipped_policy_loss, kl_k3, loss_normaliser, masked_mean
from prmflow.rl.rewarder import Rewarder
from reward.hybrid import step_credit
from reward.outcome import verify
from reward.parse import SolutionFormat
from reward.process import process_rewards


class TrainingDiverged(RuntimeError):
    """The loss or gradients became NaN/inf; the last good checkpoint is kept."""


def mean(xs) -> float:
    xs = list(xs)
    return float(sum(xs) / len(xs)) if xs else 0.0


class PieceDecoder:
    """Each token's text, memoised (the step-end search reads completions token by token)."""

    def __init__(self, tokenizer):
        self.tokenizer, self.cache = tokenizer, {}

    def __call__(self, ids: list[int]) -> list[str]:
        for t in ids:
            if t not in self.cache:
                self.cache[t] = self.tokenizer.decode([t], skip_special_tokens=True)  # EOS is no text
        return [self.cache[t] for t in ids]


@dataclass
class Rollout:
    """One RL step's samples, rewards and batch (``None``: no group to learn from)."""

    samples: Samples
    answers: list[str]
    batch: Batch | None
    stats: dict


def learning_rate(step: int, rl: RLConfig) -> float:
    """The learning rate of RL step ``step`` (0-based): linear warm-up from 0 over
    ``lr_warmup_steps``, then constant or decaying (linear/cosine) to ``min_lr_ratio`` x
    ``learning_rate`` at the end. With ``min_lr_ratio: 0`` these are exactly the transformers
    schedules TRL uses (``constant_with_warmup``, ``linear``, ``cosine``), step for step.

    >>> from prmflow.config import RLConfig
    >>> rl = RLConfig(learning_rate=1.0, lr_warmup_steps=2, lr_schedule="linear", min_lr_ratio=0.5, steps=6)
    >>> [learning_rate(s, rl) for s in range(6)]
    [0.0, 0.5, 1.0, 0.875, 0.75, 0.625]
    """
    if step < rl.lr_warmup_steps:
        return rl.learning_rate * step / rl.lr_warmup_steps
    if rl.lr_schedule == "constant":
        return rl.learning_rate
    span = max(1, rl.steps - rl.lr_warmup_steps)
    frac = min(1.0, (step - rl.lr_warmup_steps) / span)  # progress through the decay
    decay = 1 - frac if rl.lr_schedule == "linear" else 0.5 * (1 + math.cos(math.pi * frac))
    return rl.learning_rate * (rl.min_lr_ratio + (1 - rl.min_lr_ratio) * decay)


def process_weight(step: int, rl: RLConfig) -> float:
    """The process weight of RL step ``step`` (0-based) under ``rl.process_weight_schedule``:
    ``weights.process`` throughout, decaying linearly from it at step 0 to 0 at ``rl.steps``, or
    0 before ``rl.process_weight_delay`` of the steps and ``weights.process`` from there.

    >>> from prmflow.config import RLConfig
    >>> rl = RLConfig(steps=4, weights={"process": 0.5}, process_weight_schedule="linear_decay")
    >>> [process_weight(s, rl) for s in range(4)]
    [0.5, 0.375, 0.25, 0.125]
    >>> rl = RLConfig(steps=4, weights={"process": 0.5}, process_weight_schedule="delayed", process_weight_delay=0.5)
    >>> [process_weight(s, rl) for s in range(4)]
    [0.0, 0.0, 0.5, 0.5]
    """
    w = rl.weight("process")
    if rl.process_weight_schedule == "constant" or rl.steps == 0:
        return w
    if rl.process_weight_schedule == "delayed":
        return w if step >= rl.process_weight_delay * rl.steps else 0.0
    return w * (1 - step / rl.steps)


def informative_groups(right: list[bool], group_size: int) -> list[int]:
    """Indices of the groups (rows ``i*G .. i*G+G-1``) whose outcomes differ: the only ones with
    a nonzero GRPO advantage.

    >>> informative_groups([True, False, True, True, False, False], 2)
    [0]
    """
    groups = [right[i : i + group_size] for i in range(0, len(right), group_size)]
    return [i for i, g in enumerate(groups) if 0 < sum(g) < len(g)]


def length_informative_groups(right: list[bool], n_tokens: list[int], group_size: int) -> list[int]:
    """Indices of the groups whose outcomes differ, or that are all right with lengths that
    differ: under a group length term those have a nonzero advantage too. Right solutions that
    write the same steps are the same text, so their lengths differ only where their steps do
    (on ``dag``: where one computes distractors the other skips).

    >>> length_informative_groups([True, False, True, True, True, True, False, False], [5, 5, 9, 9, 7, 9, 3, 8], 2)
    [0, 2]
    """
    keep = []
    for i in range(0, len(right), group_size):
        ok, lens = right[i : i + group_size], n_tokens[i : i + group_size]
        if 0 < sum(ok) < len(ok) or (all(ok) and len(set(lens)) > 1):
            keep.append(i // group_size)
    return keep


def process_informative_groups(
    right: list[bool], step_scores: list[list[float]], group_size: int, step_mode: bool, agg: str = "min"
) -> list[int]:
    """Indices of the groups with a nonzero advantage under outcome + process reward: their
    outcomes differ, or their process signal does. In step modes that is any two step scores of
    the group (step advantages are normalised over all the group's step scores); in sequence
    mode, the solutions' aggregated (``agg``) scores. A group all wrong whose steps differ is kept:
    its step credit is the only thing it can teach.

    >>> process_informative_groups([False] * 4, [[1.0, 0.0], [1.0, 1.0], [0.0], [0.0]], 2, step_mode=True)
    [0]
    >>> process_informative_groups([False] * 4, [[1.0, 0.0], [1.0, 1.0], [0.0], [0.0]], 2, step_mode=False)
    [0]
    """
    out = []
    for g in range(0, len(right), group_size):
        outcomes, scores = right[g : g + group_size], step_scores[g : g + group_size]
        signal = {x for s in scores for x in s} if step_mode else set(process_rewards(scores, agg))
        if 0 < sum(outcomes) < len(outcomes) or len(signal) > 1:
            out.append(g // group_size)
    return out


def process_groups(right: list[bool], step_scores: list[list[float]], rl: RLConfig) -> list[int]:
    """:func:`process_informative_groups` under ``rl``'s group size, credit mode and aggregation."""
    return process_informative_groups(right, step_scores, rl.group_size, step_credit(rl.process_mode) is not None, rl.process_agg)


def draw(model, tokenizer, train: list[dict], step: int, params: Params, scorer=None) -> tuple[list[dict], Samples, dict]:
    """The step's problems and their groups of completions, and sampling stats.

    With ``rl.dynamic_sampling`` only groups with a nonzero advantage are kept (a group whose
    rewards are all equal teaches nothing under GRPO): problems are drawn again, up to
    ``rl.max_sampling_rounds`` rounds of ``rl.prompts_per_round``, until ``prompts_per_step``
    such groups are found (the first ones, in draw order). A group
    counts when its outcomes differ, or, with ``rl.filter_groups_by: process`` and the process
    term on, when ``scorer``'s step scores differ (:func:`process_informative_groups`; with
    ``outcome`` an all-wrong group is dropped whatever its steps), or with ``outcome_or_length``
    also when it is all right and its lengths differ (:func:`length_informative_groups`); ``outcome_then_process``
    keeps the groups whose outcomes differ first and fills the places they leave after the last
    round with groups whose step scores differ (:func:`fill_by_process`: only then, and only as
    many as it needs, are the others scored). Each round's draw and seed depend only on
    ``rl.seed`` and the step, so a resumed run replays them.
    """
    rl = params.rl
    rng = random.Random(rl.seed * 1_000_003 + step)  # per-step seed: resume replays the same data
    order = (
        rng.sample(range(len(train)), len(train))
        if rl.dynamic_sampling
        else rng.sample(range(len(train)), min(rl.prompts_per_step, len(train)))
    )
    by_process = scorer is not None and rl.filter_groups_by != "outcome" and rl.weight("process") > 0
    kept: list[dict] = []
    spare: list[tuple[dict, Samples, list[bool]]] = []  # outcome_then_process: groups whose outcomes agree
    samples: Samples | None = None
    stats = {"sampling/rounds": 0.0, "sampling/groups": 0.0}
    per_round = rl.prompts_per_round
    for rnd in range(rl.max_sampling_rounds if rl.dynamic_sampling else 1):
        probs = [train[i] for i in order[rnd * per_round : (rnd + 1) * per_round]]
        if not probs:
            break
        prompts = [format_prompt(p["question"], params.model, tokenizer) for p in probs]
        mine, s = distributed.sample_my_share(  # under torchrun: this rank's shards of the prompts
            model,
            tokenizer,
            prompts,
            rl.group_size,
            temperature=rl.temperature,
            max_new_tokens=rl.max_new_tokens,
            batch_size=512,
            seed=rl.seed * 7919 + step + 1_000_003 * rnd,
            shard_prompts=params.compute.rl_shard_prompts,
        )
        probs = [probs[i] for i in mine]
        keep = list(range(len(probs)))
        if rl.dynamic_sampling:
            right = [
                verify(t, p["final_answer"], rules=params.data.solution_format().answer_rules)
                for i, p in enumerate(probs)
                for t in s.group(i)
            ]
            keep = informative_groups(right, rl.group_size)
            if rl.filter_groups_by == "outcome_or_length":
                extra = length_informative_groups(right, list(s.num_tokens), rl.group_size)
                stats["sampling/kept_by_length"] = stats.get("sampling/kept_by_length", 0.0) + len(set(extra) - set(keep))
                keep = extra
            if by_process and rl.filter_groups_by == "process":
                scores = scorer.score([q for q in s.prompts for _ in range(rl.group_size)], s.texts, finished=s.finished)
                extra = process_groups(right, scores, rl)
                stats["sampling/kept_by_process"] = stats.get("sampling/kept_by_process", 0.0) + len(set(extra) - set(keep))
                keep = extra
            elif by_process:  # outcome_then_process: held back until the rounds are over
                G, outcome_kept = rl.group_size, set(keep)
                spare += [(probs[i], s.groups([i]), right[i * G : (i + 1) * G]) for i in range(len(probs)) if i not in outcome_kept]
            if rnd == 0:
                stats["train/accuracy_drawn"] = sum(right) / len(right)  # before any filtering
            keep = keep[: rl.prompts_per_step - len(kept)]
        stats["sampling/rounds"] += 1
        stats["sampling/groups"] += len(probs)
        kept += [probs[i] for i in keep]
        samples = s.groups(keep) if samples is None else samples + s.groups(keep)
        if len(kept) >= rl.prompts_per_step:
            break
    stats["sampling/informative_groups"] = float(len(kept))
    if by_process and rl.filter_groups_by == "outcome_then_process":
        fill, stats["sampling/process_scored_groups"] = fill_by_process(spare, rl.prompts_per_step - len(kept), scorer, rl)
        stats["sampling/kept_by_process"] = float(len(fill))
        for prob, group in fill:
            kept.append(prob)
            samples = group if samples is None else samples + group
    return kept, samples, stats


def fill_by_process(
    spare: list[tuple[dict, Samples, list[bool]]], places: int, scorer, rl: RLConfig
) -> tuple[list[tuple[dict, Samples]], float]:
    """Up to ``places`` of the ``spare`` groups (problem, samples, outcomes) whose step scores
    differ, in order, and how many groups were scored to find them: the groups are scored
    ``rl.prompts_per_step`` at a time, and scoring stops once the places are filled (a Monte-Carlo
    scorer samples rollouts for every group it scores)."""
    fill: list[tuple[dict, Samples]] = []
    scored = 0
    for c in range(0, len(spare), rl.prompts_per_step):
        if len(fill) >= places:
            break
        chunk = spare[c : c + rl.prompts_per_step]
        joined = sum((group for _, group, _ in chunk[1:]), chunk[0][1])
        scores = scorer.score([q for q in joined.prompts for _ in range(rl.group_size)], joined.texts, finished=joined.finished)
        right = [r for _, _, outcomes in chunk for r in outcomes]
        found = process_groups(right, scores, rl)
        fill += [(chunk[i][0], chunk[i][1]) for i in found][: places - len(fill)]
        scored += len(chunk)
    return fill, float(scored)


def rollout(model, tokenizer, rewarder: Rewarder, pieces: PieceDecoder, train: list[dict], step: int, params: Params) -> Rollout:
    """Sample the step's groups and build its batch (on the model's device)."""
    G = params.rl.group_size
    probs, s, sampling_stats = draw(model, tokenizer, train, step, params, rewarder.scorer)
    answers = [p["final_answer"] for p in probs for _ in range(G)]
    expanded = [q for q in s.prompts for _ in range(G)]
    if not probs:  # dynamic sampling found no group with differing outcomes: nothing to learn from
        return Rollout(s, answers, None, {**sampling_stats, "reward/sequence": 0.0, "reward/outcome": 0.0})
    scheduled = process_weight(step, params.rl) if params.rl.process_weight_schedule != "constant" else None
    monitor = step % params.rl.prm_monitor_every == 0 or step + 1 == params.rl.steps  # the PRM's monitor stats, term off
    token_adv, stats = rewarder(
        expanded, s.texts, answers, s.num_tokens, [pieces(c) for c in s.completion_ids], s.finished, scheduled, monitor
    )
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    batch = build_batch(s.prompt_ids, s.completion_ids, token_adv, pad_id).to(next(model.parameters()).device)
    return Rollout(s, answers, batch, {**stats, **sampling_stats})


def update_logprobs(model, b: Batch, shared: bool, with_entropy: bool = False):
    """``(logp, entropy)`` of ``model`` on ``b``'s rows (completion positions are what the loss
    reads); ``shared``: each prompt run once for all its rows (``rl.shared_prompt``)."""
    if shared:
        return completion_logprobs(model, b.input_ids, b.attention_mask, b.prompt_len, with_entropy=with_entropy)
    return sequence_logprobs(model, b.input_ids, b.attention_mask, with_entropy=with_entropy)


def optimise(model, optimizer, ref, batch: Batch, rl: RLConfig, step: int, last_good: str) -> dict[str, float]:
    """``rl.updates_per_step`` clipped policy-gradient steps on random row chunks of ``batch``.

    The ratio is against the sampling policy's log-probs. With one update per batch the policy
    being updated *is* the sampling policy, so those are the update's own log-probs (detached:
    ratio 1, as TRL does with ``num_iterations=1``) and no extra forward pass is needed; with
    more, one no-grad pass before the first update records them. With ``rl.kl_coef > 0`` a k3
    KL to ``ref`` is added. Each update runs as micro-batches of ``rl.micro_batch_size`` rows of
    similar length whose gradients add up to the update's (:func:`micro_batches`); with
    ``rl.shared_prompt`` a micro-batch holds whole groups and runs each prompt once for all its
    rows (:func:`update_logprobs`). On CPU with
    ``rl.cpu_bf16`` the forward passes run under bf16 autocast (the loss, weights and optimizer
    state stay fp32). Raises :class:`TrainingDiverged` on a non-finite loss or gradient
    (``last_good`` says where the last good checkpoint is).
    """
    on_policy = rl.updates_per_step == 1
    shared = rl.shared_prompt and not distributed.active() and fast_path_unsupported(model) is None
    with torch.no_grad(), cpu_autocast(model, rl.cpu_bf16):  # every pass of the update in one precision
        old_logp = None if on_policy else update_logprobs(model, batch, shared)[0]
        ref_logp = update_logprobs(ref, batch, shared)[0] if ref is not None else None
    model.train()
    stats: dict[str, float] = {}
    for idx in torch.randperm(batch.input_ids.shape[0]).chunk(rl.updates_per_step):
        b = batch.rows(idx)
        scale = distributed.loss_scale(loss_normaliser(b.completion_mask, rl.loss_agg))  # under DDP: the global batch's loss
        kl_scale = distributed.loss_scale(loss_normaliser(b.completion_mask, "token_mean"))
        tokens = float(b.completion_mask.sum().clamp(min=1))
        total = dict.fromkeys(("loss", "entropy", "clip_frac") + (("kl",) if ref_logp is not None else ()), 0.0)
        optimizer.zero_grad(set_to_none=True)
        for rows, width, share in micro_batches(b, rl.micro_batch_size, rl.loss_agg, by_prompt=shared):  # gradients add up
            m = b.rows(rows, width)
            with cpu_autocast(model, rl.cpu_bf16):
                logp, ent = update_logprobs(model, m, shared, with_entropy=True)
            part, ls = clipped_policy_loss(
                logp,
                logp.detach() if on_policy else old_logp[idx][rows, :width],
                m.advantages,
                m.completion_mask,
                rl.clip_eps_low,
                rl.clip_eps_high,
                agg=rl.loss_agg,
                max_len=rl.max_new_tokens,
            )
            loss = part * share * scale
            weight = float(m.completion_mask.sum()) / tokens  # token-weighted means of the stats
            if ref_logp is not None:
                kl = masked_mean(kl_k3(logp, ref_logp[idx][rows, :width]), m.completion_mask)
                loss = loss + rl.kl_coef * kl * weight * kl_scale
                total["kl"] += float(kl.detach()) * weight
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"train_policy: loss is {float(loss.detach())} at RL step {step + 1}; stopping. The last good checkpoint ({last_good}) is kept."
                )
            loss.backward()
            total["loss"] += float(loss.detach())
            total["entropy"] += float(masked_mean(ent.detach(), m.completion_mask)) * weight
            total["clip_frac"] += float(ls.get("clip_frac", 0.0)) * weight
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), rl.max_grad_norm)
        if not torch.isfinite(grad_norm):
            raise TrainingDiverged(
                f"train_policy: gradient norm is {float(grad_norm)} at RL step {step + 1}; stopping. The last good checkpoint ({last_good}) is kept."
            )
        optimizer.step()
        stats.update(total, grad_norm=float(grad_norm))
    model.eval()
    return stats


def greedy_accuracy(model, tokenizer, problems: list[dict], params: Params) -> tuple[float, float]:
    """Greedy accuracy and mean steps on ``problems`` (for the learning curve)."""
    prompts = [format_prompt(p["question"], params.model, tokenizer) for p in problems]
    s = sample(model, tokenizer, prompts, 1, greedy=True, max_new_tokens=params.rl.max_new_tokens, batch_size=256)
    fmt = params.data.solution_format()
    acc = mean([float(verify(t, p["final_answer"], rules=fmt.answer_rules)) for t, p in zip(s.texts, problems)])
    return acc, mean([len(fmt.steps(t, f)) for t, f in zip(s.texts, s.finished)])


def step_row(step: int, r: Rollout, loss_stats: dict, fmt: SolutionFormat = SolutionFormat()) -> dict:
    """The per-step metrics row (MLflow, the history, the learning curve)."""
    return {
        "step": step + 1,
        **r.stats,
        **loss_stats,
        "train/accuracy": r.stats.get("train/accuracy_drawn", r.stats["reward/outcome"]),  # before dynamic sampling's filter
        "train/mean_tokens": mean(r.samples.num_tokens),
        "train/mean_steps": mean([len(fmt.steps(t, f)) for t, f in zip(r.samples.texts, r.samples.finished)]),
    }


def progress_line(row: dict, steps: int) -> str:
    """One line of the run's log per step."""
    line = f"rl step {row['step']}/{steps} reward={row['reward/sequence']:.3f} acc={row['train/accuracy']:.3f} tokens={row['train/mean_tokens']:.1f}"
    return line + (f" eval_acc={row['eval/greedy_acc']:.3f}" if "eval/greedy_acc" in row else "")


STEP_COUNTS = ("reward/steps_scored", "reward/steps_credited", "reward/steps_without_end", "reward/step_ends_without_score")
"""Per-RL-step counts of :func:`prmflow.rl.rewarder.step_credit_counts`, totalled by :func:`summarize`."""


def summarize(history: list[dict], rl: RLConfig) -> dict:
    """The stage's metrics: means over the last (up to) 10 steps, the eval curve's ends, and
    ``total_<count>`` of each step-credit count over the run (:data:`STEP_COUNTS`)."""
    last = [h for h in history if "reward/sequence" in h][-max(1, min(10, len(history))) :]
    evals = [h for h in history if "eval/greedy_acc" in h]
    out = {"steps": rl.steps}
    for key in (
        "reward/sequence",
        "reward/outcome",
        "reward/process",
        "reward/process_step",
        "train/accuracy",
        "train/mean_tokens",
        "train/mean_steps",
        "train/truncated",
        "monitor/prm_outcome_disagreement",
        "monitor/step_inflation",
        "entropy",
    ):
        vals = [h[key] for h in last if key in h]
        if vals:
            out[f"final_{key.replace('/', '_')}"] = sum(vals) / len(vals)
    if evals:
        out["eval_greedy_acc_start"] = evals[0]["eval/greedy_acc"]
        out["eval_greedy_acc_end"] = evals[-1]["eval/greedy_acc"]
    for key in STEP_COUNTS:  # over the whole run: a step cut from the credit counts wherever it happened
        vals = [h[key] for h in history if key in h]
        if vals:
            out[f"total_{key.split('/', 1)[1]}"] = sum(vals)
    return out


def write_learning_curve(history: list[dict], plots_dir: str | Path) -> None:
    """CSV for ``dvc plots`` and a PNG (accuracy and length by RL step)."""
    plots_dir = Path(plots_dir)
    keys = ["step", "reward/sequence", "train/accuracy", "train/mean_tokens", "eval/greedy_acc"]
    rows = [",".join(k.replace("/", "_") for k in keys)]
    for h in history:
        rows.append(",".join("" if h.get(k) is None else f"{h[k]:.4f}" if isinstance(h[k], float) else str(h[k]) for k in keys))
    atomic_write_text(plots_dir / "learning_curve.csv", "\n".join(rows) + "\n")
    tr = [h for h in history if "train/accuracy" in h]
    ev = [h for h in history if "eval/greedy_acc" in h]
    save(
        plots_dir / "learning_curve.png",
        Panel(
            "Accuracy",
            "RL step",
            "accuracy",
            [
                ("train (sampled, this step's prompts)", [h["step"] for h in tr], [h["train/accuracy"] for h in tr]),
                ("eval (greedy, fixed eval problems)", [h["step"] for h in ev], [h["eval/greedy_acc"] for h in ev]),
            ],
            ylim=(0, 1.02),
        ),
        Panel(
            "Completion length",
            "RL step",
            "tokens (mean, sampled)",
            [("train", [h["step"] for h in tr], [h["train/mean_tokens"] for h in tr])],
        ),
    )
