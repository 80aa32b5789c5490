"""Stage ``train_prm``: train the process reward model and measure it against a baseline.

1. Data: our step labels (``data/labels``, ``prm.use_own_labels``) and/or external stepwise
   supervision (``prm.extra_data``, validated by :mod:`tasks.prm_data`: a bad record stops the
   stage naming file, line and field). Records are split by prompt: ``prm.eval_fraction`` of the
   prompts are held out.
2. Model (:class:`reward.prm_scorer.PRMModel`): the ``prm.init`` causal LM (the warm-started
   policy by default, frozen) with a *factored value head*: an MC label estimates "the prefix is
   right" x "the policy finishes from there", so the head models it as
   ``sigmoid(correctness) * sigmoid(progress)``, correctness from the log of the lowest
   probability the LM gives a result token up to / within the step (``prm.features``),
   progress from the last hidden state; the score is the correctness factor.
3. Training: the transformers ``Trainer``, BCE at step ends only, on the soft MC fractions
   (``prm.soft_labels``; never rounded) or on hard labels; the head and the backbone have their
   own learning rates (``prm.backbone_learning_rate: 0`` freezes the backbone).
4. Threshold: ``prm.threshold``, or the one with the best first-error F1 on the held-out labels
   ("good" = any rollout reached the answer: ``soft_labels > 0``); with ``prm.calibrate`` the
   scores are mapped so that it sits at 0.5.
5. Evaluation, for the learned PRM and for the training-free
   :class:`reward.prm_scorer.PolicyConfidenceScorer` on the policy (same threshold rule):
   step ROC-AUC and bad-step F1, ProcessBench first-error F1, on the held-out records (against
   their labels, and against the oracle where there is one) and on fresh policy solutions of
   the first ``prm.eval_problems`` curated eval problems (synthetic: oracle labels); best-of-N
   reranking of ``prm.best_of_n`` samples per eval problem (PRM min / product / last) against
   majority vote, a random pick and pass@N.

Why this design (measured on the default task: 1,200 mc_soft-labelled solutions of a 0.87M
policy at 37% probe accuracy, whose labels agree with the oracle on 79-81% of steps; 960 train
/ 240 held-out solutions, 300 steps x 32, 2 shared CPU cores; step AUC against the oracle on
1,600 fresh eval-problem samples; policy confidence alone: AUC 0.962, first-error F1 0.83):

====================================================  ==========  ==============  ========
head (features, backbone)                             chain AUC   first-error F1  train s
====================================================  ==========  ==============  ========
token classification (hidden, fine-tuned, lr 1e-3)    0.62        0.41            116
linear probe (hidden, frozen, lr 1e-2)                0.60        0.40            50
value head (hidden + confidences, frozen)             0.85        0.68            40
  same, hard labels instead of soft                   0.78        0.59            47
factored head (hidden + confidences, frozen)          0.89        0.67            57
value head (confidences, frozen)                      0.96        0.83            46
factored head (confidences, frozen)  [default]        0.96        0.83            41
  same, backbone fine-tuned at 1e-4 / 5e-4            0.91 / 0.75 0.70 / 0.42     125
====================================================  ==========  ==============  ========

Best-of-8 on 200 eval problems: 0.375 by min for the default head and for policy confidence,
0.17 for the hidden-state heads; majority vote 0.32, random pick 0.215, pass@8 0.585.

Hidden states carry little that a linear head can read about correctness at this scale, and
they let the head fit the labels' noise (and, with soft labels, chain length); the policy's
own confidence is near the ceiling of what these labels can teach (a logistic regression on
six confidence features fitted to *oracle* labels reached 0.963). So the learned PRM matches
the confidence baseline rather than beating it; its gain is a threshold and a calibration
learned from labels, and it is the place where a larger backbone or more labels can add more.

Outputs: ``models/prm/`` (atomically; backbone + tokenizer + ``prm_head.safetensors`` +
``prm_config.json``), ``metrics/prm.json`` (flat keys), ``plots/prm/roc.csv`` and
``plots/prm/best_of_n.csv``. The CLI logs to the stage's MLflow run and registers ``prmflow-prm``.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from reward.parse import extract_answer
from tasks.config import Params, load_params
from tasks.io import atomic_dir, atomic_write_json, atomic_write_text

OUT_DIR = "models/prm"
METRICS_PATH = "metrics/prm.json"
PLOTS_DIR = "plots/prm"

LogFn = Callable[[dict, int], None]
"""``log_fn(metrics, step)``: training curve (MLflow in the CLI)."""


# ---------------------------------------------------------------------------------------------
# Data


def load_records(params: Params, labels_dir: str | Path | None) -> list[dict]:
    """Training pool: own labels (with ``oracle_labels`` where known) then external records."""
    from tasks.prm_data import own_label_records, read_stepwise

    cfg = params.prm
    records: list[dict] = []
    if cfg.use_own_labels:
        from tasks.label import load_labels

        if labels_dir is None or not Path(labels_dir).exists():
            raise FileNotFoundError(f"{labels_dir}: no step labels; run the label stage or set prm.use_own_labels: false")
        records += own_label_records(load_labels(labels_dir))
    if cfg.history_dir and Path(cfg.history_dir).is_dir():
        from tasks.label import load_labels

        for old in sorted(d for d in Path(cfg.history_dir).iterdir() if d.is_dir()):
            records += own_label_records(load_labels(old))
    if cfg.extra_data:
        records += read_stepwise(cfg.extra_data)
    if not records:
        raise ValueError("no PRM training records: prm.use_own_labels is false and prm.extra_data is not set")
    return records


def split_by_prompt(records: list[dict], eval_fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """``(train, held_out)``: all solutions of one prompt land on the same side (no leakage).

    At least one prompt is held out, and one kept, when there are two or more.
    """
    prompts = sorted({r["prompt"] for r in records})
    random.Random(seed).shuffle(prompts)
    n_held = min(max(1, round(eval_fraction * len(prompts))), len(prompts) - 1) if len(prompts) > 1 else 0
    held = set(prompts[:n_held])
    return [r for r in records if r["prompt"] not in held], [r for r in records if r["prompt"] in held]


# ---------------------------------------------------------------------------------------------
# Model and training


def build_model(params: Params, policy_dir: str | Path):
    """``(PRMModel, tokenizer)`` from ``prm.init`` (``policy``: ``policy_dir``)."""
    from reward.prm_scorer import PRMModel
    from tasks.modeling import load_causal_lm, load_tokenizer, resolve_device

    cfg = params.prm
    src = str(policy_dir) if cfg.init == "policy" else cfg.init
    device = resolve_device(params.model.device)
    # fp32 weights: Trainer's bf16 autocast handles GPU speed, and the optimizer needs fp32.
    backbone = load_causal_lm(src, params.model.model_copy(update={"dtype": "float32"}), device)
    tokenizer = load_tokenizer(src)
    tokenizer.padding_side = "right"
    torch.manual_seed(cfg.seed)
    model = PRMModel(backbone, tokenizer, cfg.features, cfg.head_hidden, factored=cfg.head == "factored").to(device)
    return model, tokenizer


def train_model(model, tokenizer, records: list[dict], params: Params, work_dir: Path, log_fn: LogFn | None = None) -> dict:
    """Train ``model`` in place with the transformers ``Trainer``; return its train metrics."""
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from tasks.modeling import resolve_device
    from tasks.prm_data import StepwiseDataset, collate_steps

    cfg = params.prm
    ds = StepwiseDataset(records, tokenizer, soft=cfg.soft_labels, max_length=getattr(model.config, "max_position_embeddings", None))
    if not len(ds) or cfg.max_steps == 0:
        return {"train_steps": 0, "train_records": len(ds), "train_loss": float("nan"), "train_runtime_s": 0.0}
    train_backbone = cfg.backbone_learning_rate > 0
    model.backbone.requires_grad_(train_backbone)
    groups = [{"params": model.head_parameters(), "lr": cfg.learning_rate}]
    if train_backbone:
        groups.append({"params": [p for p in model.backbone.parameters()], "lr": cfg.backbone_learning_rate})
    optimizer = torch.optim.AdamW(groups, weight_decay=0.0)
    device = resolve_device(params.model.device)
    args = TrainingArguments(
        output_dir=str(work_dir / "trainer"),
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        warmup_steps=cfg.warmup_steps,
        lr_scheduler_type="cosine",
        logging_steps=max(1, min(25, cfg.max_steps // 10)),
        save_strategy="no",
        report_to=[],
        seed=cfg.seed,
        data_seed=cfg.seed,
        use_cpu=device.type == "cpu",
        bf16=device.type == "cuda" and torch.cuda.is_bf16_supported(),
        dataloader_num_workers=0,
        remove_unused_columns=False,
        disable_tqdm=True,
    )
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    class LogLoss(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if log_fn and logs and "loss" in logs:
                log_fn({"train/loss": float(logs["loss"])}, state.global_step)

    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=ds,
        data_collator=lambda batch: collate_steps(batch, pad_id),
        optimizers=(optimizer, None),
        callbacks=[LogLoss()],
    )
    result = trainer.train()
    model.eval()
    return {
        "train_steps": int(trainer.state.global_step),
        "train_records": len(ds),
        "train_loss": float(result.training_loss),
        "train_runtime_s": float(result.metrics["train_runtime"]),
    }


# ---------------------------------------------------------------------------------------------
# Evaluation


@dataclass
class Chains:
    """``n`` policy samples for each eval problem, with oracle step labels where known."""

    problems: list[dict]
    prompts: list[str]
    texts: list[str]
    n: int
    oracle: list[list[bool]] | None

    def groups(self, values: list) -> list[list]:
        return [values[i * self.n : (i + 1) * self.n] for i in range(len(self.problems))]


def sample_chains(model, tokenizer, problems: list[dict], params: Params) -> Chains:
    """``prm.best_of_n`` samples (temperature 1) per problem from the policy."""
    from tasks.modeling import format_prompt
    from tasks.sampling import sample
    from tasks.synthetic import oracle_step_labels

    cfg = params.prm
    prompts = [format_prompt(p["question"], params.model) for p in problems]
    out = sample(model, tokenizer, prompts, cfg.best_of_n, temperature=1.0, max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size_eval, seed=cfg.seed)
    oracle = None
    if problems and all(p.get("source") == "synthetic" for p in problems):
        qs = [p["question"] for p in problems for _ in range(cfg.best_of_n)]
        oracle = [oracle_step_labels(q, t, params.data.modulus) for q, t in zip(qs, out.texts)]
    expanded = [p for p in prompts for _ in range(cfg.best_of_n)]
    return Chains(problems, expanded, out.texts, cfg.best_of_n, oracle)


def label_metrics(scores: list[list[float]], labels: list[list[bool]], threshold: float, prefix: str) -> dict[str, float]:
    """Step AUC / bad-step F1 and first-error F1 of ``scores`` against ``labels``, flat keys."""
    from tasks.prm_metrics import first_error_f1, step_metrics

    out = {}
    for k, v in step_metrics(scores, labels, threshold).items():
        if v is not None:
            out[f"{prefix}.step_{k}" if k == "auc" else f"{prefix}.{k}"] = v
    fe = first_error_f1(scores, labels, threshold)
    out.update({f"{prefix}.first_error_{k}": v for k, v in fe.items() if not (isinstance(v, float) and math.isnan(v))})
    return out


def raw_scores(scorer, held: list[dict], chains: Chains, batch_size: int) -> dict[str, list[list[float]]]:
    """A scorer's step scores on the held-out records and on the eval chains."""
    held_scores = scorer.score_steps([r["prompt"] for r in held], [r["completions"] for r in held], batch_size) if held else []
    chain_scores = scorer.score(chains.prompts, chains.texts, batch_size) if chains.texts else []
    return {"held": held_scores, "chains": chain_scores}


def reachable(held: list[dict]) -> list[list[bool]]:
    """Held-out step labels "good = some rollout reached the answer" (``soft_labels > 0``):
    the prefix-correctness the oracle defines, for any labelling method."""
    return [[s > 0 for s in r["soft_labels"]] for r in held]


def choose_threshold(held_scores: list[list[float]], held: list[dict], fixed: float | None) -> float:
    """``fixed``, or the raw score threshold with the best first-error F1 on the held-out records."""
    from tasks.prm_metrics import best_threshold

    if fixed is not None:
        return fixed
    return best_threshold(held_scores, reachable(held)) if held else 0.5


def scorer_metrics(name: str, scores: dict[str, list[list[float]]], held: list[dict], chains: Chains, threshold: float) -> dict[str, float]:
    """All metrics of one scorer's ``scores`` (flat keys under ``name.``), judged at ``threshold``."""
    from tasks.prm_metrics import best_of_n

    m: dict[str, float] = {}
    held_scores, chain_scores = scores["held"], scores["chains"]
    if held:
        m.update(label_metrics(held_scores, [r["labels"] for r in held], threshold, f"{name}.heldout"))
        m.update(label_metrics(held_scores, reachable(held), threshold, f"{name}.heldout_reach"))
        with_oracle = [i for i, r in enumerate(held) if r.get("oracle_labels")]
        if with_oracle:
            m.update(label_metrics([held_scores[i] for i in with_oracle], [held[i]["oracle_labels"] for i in with_oracle], threshold, f"{name}.heldout_oracle"))
    if chains.oracle is not None:
        keep = [i for i, s in enumerate(chain_scores) if s]
        m.update(label_metrics([chain_scores[i] for i in keep], [chains.oracle[i] for i in keep], threshold, f"{name}.chains"))
    if chains.texts:
        bon = best_of_n(chains.groups(chain_scores), chains.groups([extract_answer(t) for t in chains.texts]), [str(p["final_answer"]) for p in chains.problems])
        m.update({f"{name}.best_of_{chains.n}.{k}": v for k, v in bon.items() if k.startswith("prm_")})
        m.update({f"best_of_{chains.n}.{k}": v for k, v in bon.items() if not k.startswith("prm_")})
    return m


def evaluate_scorer(scorer, name: str, held: list[dict], chains: Chains, cfg) -> tuple[dict[str, float], dict[str, list[list[float]]], float]:
    """``(metrics, scores, raw threshold)`` of one scorer, the threshold rule and calibration
    of ``cfg`` (:class:`tasks.config.PrmConfig`) applied as the saved PRM would apply them."""
    from tasks.prm_metrics import calibrate_scores

    scores = raw_scores(scorer, held, chains, cfg.batch_size_eval)
    t = choose_threshold(scores["held"], held, cfg.threshold)
    judged_at = t
    if cfg.calibrate and t != 0.5:
        scores = {k: calibrate_scores(v, t) for k, v in scores.items()}
        judged_at = 0.5
    m = scorer_metrics(name, scores, held, chains, judged_at)
    m[f"{name}.threshold"] = t
    return m, scores, t


def best_of_n_curve(chains: Chains, scores_by_name: dict[str, list[list[float]]]) -> str:
    """CSV: accuracy of each selection rule using the first n samples, n = 1, 2, 4, .., N."""
    from tasks.prm_metrics import best_of_n

    ns = sorted({min(2**i, chains.n) for i in range(chains.n.bit_length() + 1)})
    answers = chains.groups([extract_answer(t) for t in chains.texts])
    targets = [str(p["final_answer"]) for p in chains.problems]
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


def roc_csv(curves: dict[str, list[tuple[float, float]]]) -> str:
    rows = ["scorer,fpr,tpr"] + [f"{name},{f:.4f},{t:.4f}" for name, pts in curves.items() for f, t in pts]
    return "\n".join(rows) + "\n"


# ---------------------------------------------------------------------------------------------
# The stage


def train_prm(params: Params, policy_dir="models/base", labels_dir="data/labels", curated_dir="data/curated", out_dir=OUT_DIR, metrics_path=METRICS_PATH, plots_dir=PLOTS_DIR, log_fn: LogFn | None = None) -> dict:
    """Run the stage: train, choose the threshold, evaluate both scorers, write the outputs."""
    from reward.prm_scorer import PolicyConfidenceScorer, PRMScorer
    from tasks.curate import load_curated
    from tasks.modeling import load_causal_lm, load_tokenizer
    from tasks.prm_metrics import roc_curve

    t0 = time.time()
    cfg = params.prm
    random.seed(cfg.seed)
    records = load_records(params, labels_dir)
    train_recs, held = split_by_prompt(records, cfg.eval_fraction, cfg.seed)
    model, tokenizer = build_model(params, policy_dir)
    metrics: dict = {
        "records": len(records),
        "train_records": len(train_recs),
        "heldout_records": len(held),
        "train_steps_labelled": sum(len(r["completions"]) for r in train_recs),
        "soft_labels": cfg.soft_labels,
    }
    with atomic_dir(out_dir) as tmp:
        metrics.update(train_model(model, tokenizer, train_recs, params, tmp, log_fn))
        import shutil

        shutil.rmtree(tmp / "trainer", ignore_errors=True)

        # Eval chains: fresh samples of the policy on eval problems (never labelled or trained on).
        policy = load_causal_lm(policy_dir, params.model, next(model.parameters()).device)
        ptok = load_tokenizer(policy_dir)
        problems = list(load_curated(curated_dir)["eval"])[: cfg.eval_problems]
        t1 = time.time()
        chains = sample_chains(policy, ptok, problems, params)
        metrics["sampling_time_s"] = round(time.time() - t1, 2)

        prm = PRMScorer(model, tokenizer, threshold=0.5, calibrated=False)
        conf = PolicyConfidenceScorer(policy, ptok)
        t1 = time.time()
        m_prm, s_prm, threshold = evaluate_scorer(prm, "prm", held, chains, cfg)
        metrics["prm_eval_time_s"] = round(time.time() - t1, 2)
        m_conf, s_conf, _ = evaluate_scorer(conf, "confidence", held, chains, cfg)
        metrics.update(m_prm)
        metrics.update(m_conf)
        model.save(tmp, tokenizer, threshold=threshold, extra={"calibrated": cfg.calibrate and threshold != 0.5, "init": cfg.init, "soft_labels": cfg.soft_labels})

    curves: dict[str, list] = {}
    for name, s in (("prm", s_prm), ("confidence", s_conf)):
        if chains.oracle is not None:
            keep = [i for i, x in enumerate(s["chains"]) if x]
            curves[name] = roc_curve([s["chains"][i] for i in keep], [chains.oracle[i] for i in keep])
        elif held:
            curves[name] = roc_curve(s["held"], reachable(held))
    atomic_write_text(Path(plots_dir) / "roc.csv", roc_csv(curves))
    if chains.texts:
        atomic_write_text(Path(plots_dir) / "best_of_n.csv", best_of_n_curve(chains, {"prm": s_prm["chains"], "confidence": s_conf["chains"]}))
    metrics["wall_time_s"] = round(time.time() - t0, 2)
    atomic_write_json(metrics_path, metrics)
    return metrics


def summary_table(m: dict) -> str:
    """Markdown table: the learned PRM against the confidence baseline."""
    n = next((k.split(".")[1] for k in m if k.startswith("prm.best_of_")), None)
    rows = [
        ("step AUC, held-out oracle", "heldout_oracle.step_auc"),
        ("step AUC, eval chains (oracle)", "chains.step_auc"),
        ("bad-step F1, eval chains", "chains.bad_f1"),
        ("first-error F1, held-out labels", "heldout.first_error_f1"),
        ("first-error F1, held-out oracle", "heldout_oracle.first_error_f1"),
        ("first-error F1, eval chains (oracle)", "chains.first_error_f1"),
        ("threshold (raw score)", "threshold"),
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


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m tasks.train_prm", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--policy", default="models/base")
    ap.add_argument("--labels", default="data/labels")
    ap.add_argument("--curated", default="data/curated")
    ap.add_argument("--out", default=OUT_DIR)
    ap.add_argument("-S", "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="DVC-style override, e.g. -S prm.extra_data=path")
    args = ap.parse_args(argv)
    params = load_params(args.params, args.overrides)

    import mlflow

    from tasks import tracking

    with tracking.stage_run("train_prm", params.prm.model_dump()) as run:
        metrics = train_prm(params, policy_dir=args.policy, labels_dir=args.labels, curated_dir=args.curated, out_dir=args.out, log_fn=lambda m, s: mlflow.log_metrics(m, step=s))
        mlflow.log_metrics(tracking.metric_dict(metrics))
        table = summary_table(metrics)
        mlflow.log_text(table, "prm_vs_confidence.md")
        mlflow.log_artifacts(PLOTS_DIR, artifact_path="plots")
        tracking.log_prm_model(args.out, run.info.run_id)
    print(table, end="")


if __name__ == "__main__":
    main()
