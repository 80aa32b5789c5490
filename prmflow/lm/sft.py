"""Supervised fine-tuning (the warm start) with the transformers ``Trainer``.

Loss only on the solution tokens (prompt tokens are labelled -100); optionally stops once the
greedy accuracy on a probe set reaches ``warmstart.target_accuracy`` (measured every
``warmstart.check_every`` steps, the curve returned as ``probe_curve``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from prmflow.config import Params
from prmflow.lm.models import resolve_device
from prmflow.lm.prompts import adds_special_tokens, format_prompt
from prmflow.lm.sampling import sample
from reward.outcome import verify


def probe_accuracy(model, tokenizer, probe: list[dict], params: Params) -> float:
    """Greedy final-answer accuracy on the probe problems."""
    prompts = [format_prompt(p["question"], params.model, tokenizer) for p in probe]
    out = sample(model, tokenizer, prompts, greedy=True, max_new_tokens=params.evaluate.max_new_tokens, batch_size=256)
    rules = params.data.answer_rules
    return sum(verify(t, p["final_answer"], rules=rules) for t, p in zip(out.texts, probe)) / max(1, len(probe))


class _SFTDataset(torch.utils.data.Dataset):
    """Prompt + solution + EOS; loss only on the solution tokens."""

    def __init__(self, pairs: list[tuple[str, str]], tokenizer, max_len: int):
        self.items = []
        eos = tokenizer.eos_token_id
        for prompt, solution in pairs:
            p = tokenizer(prompt, add_special_tokens=adds_special_tokens(tokenizer, [prompt]))["input_ids"]
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


LogFn = Callable[[dict, int], None]
"""``log_fn(metrics, step)``: the training curve (MLflow in the stage's CLI)."""


def _callbacks(tokenizer, probe: list[dict] | None, params: Params, curve: list[tuple[int, float]], log_fn: LogFn | None):
    """``TrainerCallback``s: the loss to ``log_fn``; the probe accuracy measured every
    ``warmstart.check_every`` steps (to ``curve`` and ``log_fn``), stopping at the target."""
    from transformers import TrainerCallback

    w = params.warmstart

    class LogLoss(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if log_fn and logs and "loss" in logs:
                log_fn({"train/loss": float(logs["loss"]), "train/learning_rate": float(logs.get("learning_rate", 0.0))}, state.global_step)

    class StopAtAccuracy(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            if state.global_step % w.check_every:
                return
            acc = probe_accuracy(model, tokenizer, probe, params)
            curve.append((state.global_step, acc))
            if log_fn:
                log_fn({"probe/accuracy": acc}, state.global_step)
            print(f"warmstart: step {state.global_step} probe accuracy {acc:.3f}", flush=True)
            if acc >= w.target_accuracy:
                control.should_training_stop = True

    return [LogLoss()] + ([StopAtAccuracy()] if probe and w.target_accuracy else [])


def sft(model, tokenizer, pairs, params: Params, work_dir: Path, log_fn: LogFn | None = None, probe: list[dict] | None = None) -> dict:
    """Supervised fine-tuning with the transformers ``Trainer``; returns its train metrics.

    With ``warmstart.target_accuracy`` and a probe set, training stops once the probe accuracy
    reaches the target; the measured curve is returned as ``probe_curve``. ``log_fn(metrics,
    step)`` receives the loss and the probe accuracy as they are measured.
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
        report_to=[],
        seed=w.seed,
        data_seed=w.seed,
        use_cpu=device.type == "cpu",
        bf16=device.type == "cuda" and torch.cuda.is_bf16_supported(),
        dataloader_num_workers=0,
        remove_unused_columns=False,
    )
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    curve: list[tuple[int, float]] = []
    callbacks = _callbacks(tokenizer, probe, params, curve, log_fn)
    trainer = Trainer(model=model, args=args, train_dataset=ds, data_collator=_collate(pad_id), callbacks=callbacks)
    result = trainer.train()
    out = {
        "train_loss": float(result.training_loss),
        "train_runtime_s": float(result.metrics["train_runtime"]),
        "sft_steps": int(trainer.state.global_step),
        "probe_curve": curve,
    }
    if probe:
        out["probe_accuracy"] = (
            curve[-1][1] if curve and curve[-1][0] == out["sft_steps"] else probe_accuracy(model, tokenizer, probe, params)
        )
    return out
