"""Stage ``warmstart``: the policy RL starts from, written to ``models/base``.

- Default (``model.name_or_path: null``): build the word-level tokenizer and a tiny Llama from a
  config, then SFT it on synthetic solutions with the transformers ``Trainer``. The step budget
  is chosen so the policy is *imperfect on purpose* (measured learning curve in the README):
  RL needs headroom, and failures need partly-right prefixes for a PRM to credit.
- Real model (HF id or local path): load it; SFT on the curated train split when
  ``warmstart.enabled``, else save it as is. Never builds a tokenizer.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import torch

from tasks import tracking
from tasks.config import Params, load_params
from tasks.io import atomic_dir, atomic_write_json, atomic_write_text
from tasks.modeling import (
    build_tiny_model,
    build_tokenizer,
    count_parameters,
    format_prompt,
    load_causal_lm,
    load_tokenizer,
    resolve_device,
)
from tasks.synthetic import generate_problems

OUT_DIR = "models/base"


def sft_examples(params: Params, curated_dir: str | Path) -> tuple[list[tuple[str, str]], list[dict]]:
    """(prompt, solution) pairs to train on, and a probe set to measure the learning curve.

    Synthetic: fresh problems from ``warmstart.seed`` (more variety than the curated train set)
    and a probe set from ``seed + 1000``, both minus any question in the eval split, so
    evaluation stays uncontaminated. Other sources: the curated train split, its last
    ``probe_problems`` held out as the probe.
    """
    from tasks.curate import load_curated

    w = params.warmstart
    curated = load_curated(curated_dir)
    if params.data.source == "synthetic":
        eval_questions = set(curated["eval"]["question"])
        d = params.data
        probs = generate_problems(w.num_examples, w.seed, d.min_steps, d.max_steps, d.modulus)
        rows = [(p["question"], p["answer"]) for p in probs if p["question"] not in eval_questions]
        probe = generate_problems(w.probe_problems, w.seed + 1000, d.min_steps, d.max_steps, d.modulus)
        probe = [p for p in probe if p["question"] not in eval_questions]
    else:
        train = list(curated["train"])
        n_probe = min(w.probe_problems, len(train) // 5) if w.target_accuracy is not None else 0
        probe = train[len(train) - n_probe :] if n_probe else []
        rows = [(p["question"], p["answer"]) for p in train[: len(train) - n_probe]]
    if not rows:
        raise ValueError(f"{curated_dir}: no training problems for the warm start")
    return [(format_prompt(q, params.model), a) for q, a in rows], probe


def probe_accuracy(model, tokenizer, probe: list[dict], params: Params) -> float:
    """Greedy final-answer accuracy on the probe problems."""
    from reward.parse import extract_answer
    from tasks.sampling import sample

    prompts = [format_prompt(p["question"], params.model) for p in probe]
    out = sample(model, tokenizer, prompts, greedy=True, max_new_tokens=params.evaluate.max_new_tokens, batch_size=256)
    return sum(extract_answer(t) == p["final_answer"] for t, p in zip(out.texts, probe)) / max(1, len(probe))


class _SFTDataset(torch.utils.data.Dataset):
    """Prompt + solution + EOS; loss only on the solution tokens."""

    def __init__(self, pairs: list[tuple[str, str]], tokenizer, max_len: int):
        self.items = []
        eos = tokenizer.eos_token_id
        for prompt, solution in pairs:
            p = tokenizer(prompt)["input_ids"]
            s = tokenizer(solution, add_special_tokens=False)["input_ids"] + [eos]
            ids = (p + s)[:max_len]
            labels = ([-100] * len(p) + s)[:max_len]
            self.items.append((ids, labels))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def _collate(pad_id: int):
    def collate(batch):
        n = max(len(ids) for ids, _ in batch)
        input_ids = torch.full((len(batch), n), pad_id, dtype=torch.long)
        labels = torch.full((len(batch), n), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), n), dtype=torch.long)
        for i, (ids, lab) in enumerate(batch):
            input_ids[i, : len(ids)] = torch.tensor(ids)
            labels[i, : len(lab)] = torch.tensor(lab)
            mask[i, : len(ids)] = 1
        return {"input_ids": input_ids, "labels": labels, "attention_mask": mask}

    return collate


def _stop_at_accuracy(tokenizer, probe: list[dict], params: Params, curve: list[tuple[int, float]]):
    """A ``TrainerCallback`` that measures probe accuracy and stops at the target."""
    from transformers import TrainerCallback

    w = params.warmstart

    class StopAtAccuracy(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            if state.global_step % w.check_every:
                return
            acc = probe_accuracy(model, tokenizer, probe, params)
            curve.append((state.global_step, acc))
            print(f"warmstart: step {state.global_step} probe accuracy {acc:.3f}", flush=True)
            if acc >= w.target_accuracy:
                control.should_training_stop = True

    return StopAtAccuracy()


def sft(model, tokenizer, pairs, params: Params, work_dir: Path, report_to_mlflow: bool, probe: list[dict] | None = None) -> dict:
    """Supervised fine-tuning with the transformers ``Trainer``; returns its train metrics.

    With ``warmstart.target_accuracy`` and a probe set, training stops once the probe accuracy
    reaches the target; the measured curve is returned as ``probe_curve``.
    """
    from transformers import Trainer, TrainingArguments

    w = params.warmstart
    max_len = getattr(model.config, "max_position_embeddings", 1024)
    ds = _SFTDataset(pairs, tokenizer, min(max_len, 1024))
    device = resolve_device(params.model.device)
    args = TrainingArguments(
        output_dir=str(work_dir / "trainer"),
        max_steps=w.max_steps,
        per_device_train_batch_size=w.batch_size,
        learning_rate=w.learning_rate,
        warmup_steps=w.warmup_steps,
        weight_decay=w.weight_decay,
        lr_scheduler_type=w.lr_scheduler,
        logging_steps=25,
        save_strategy="no",
        report_to=["mlflow"] if report_to_mlflow else [],
        seed=w.seed,
        data_seed=w.seed,
        use_cpu=device.type == "cpu",
        bf16=device.type == "cuda" and torch.cuda.is_bf16_supported(),
        dataloader_num_workers=0,
        remove_unused_columns=False,
    )
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    curve: list[tuple[int, float]] = []
    callbacks = [_stop_at_accuracy(tokenizer, probe, params, curve)] if probe and w.target_accuracy else []
    trainer = Trainer(model=model, args=args, train_dataset=ds, data_collator=_collate(pad_id), callbacks=callbacks)
    result = trainer.train()
    out = {
        "train_loss": float(result.training_loss),
        "train_runtime_s": float(result.metrics["train_runtime"]),
        "sft_steps": int(trainer.state.global_step),
        "probe_curve": curve,
    }
    if probe:
        out["probe_accuracy"] = curve[-1][1] if curve and curve[-1][0] == out["sft_steps"] else probe_accuracy(model, tokenizer, probe, params)
    return out


def warmstart(params: Params, curated_dir="data/curated", out_dir=OUT_DIR, metrics_path="metrics/warmstart.json", plots_dir="plots/warmstart", report_to_mlflow=False) -> dict:
    """Build or load the policy, SFT it if configured, and save it (atomically) to ``out_dir``."""
    t0 = time.time()
    random.seed(params.warmstart.seed)
    torch.manual_seed(params.warmstart.seed)
    with atomic_dir(out_dir) as tmp:
        if params.model.name_or_path is None:
            tokenizer = build_tokenizer(params.data.modulus)
            model = build_tiny_model(tokenizer, params.model, seed=params.warmstart.seed)
            model.to(resolve_device(params.model.device))
            do_sft = True  # a random tiny model is useless without it
        else:
            tokenizer = load_tokenizer(params.model.name_or_path)
            model = load_causal_lm(params.model.name_or_path, params.model)
            do_sft = params.warmstart.enabled and params.warmstart.max_steps > 0
        metrics = {"num_parameters": count_parameters(model), "sft_steps": 0}
        curve: list = []
        if do_sft:
            pairs, probe = sft_examples(params, curated_dir)
            res = sft(model, tokenizer, pairs, params, tmp, report_to_mlflow, probe)
            curve = res.pop("probe_curve")
            metrics.update(res, sft_examples=len(pairs))
        import shutil

        shutil.rmtree(tmp / "trainer", ignore_errors=True)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    metrics["wall_time_s"] = round(time.time() - t0, 2)
    atomic_write_json(metrics_path, metrics)
    rows = "step,probe_accuracy\n" + "".join(f"{s},{a:.4f}\n" for s, a in curve)
    atomic_write_text(Path(plots_dir) / "probe_curve.csv", rows)
    return metrics


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m tasks.warmstart", description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    section = {"model": params.model.model_dump(), "warmstart": params.warmstart.model_dump()}
    with tracking.stage_run("warmstart", section) as run:
        import mlflow

        metrics = warmstart(params, report_to_mlflow=True)
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        mlflow.log_artifacts("plots/warmstart", artifact_path="plots")
        tracking.log_policy_model(OUT_DIR, run.info.run_id, params, aliases=("base",))
    print(f"warmstart: {metrics}")


if __name__ == "__main__":
    main()
