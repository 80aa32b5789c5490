"""Supervised fine-tuning (the warm start) with the transformers ``Trainer``.

Loss only on the solution tokens (prompt tokens are labelled -100); optionally stops once the
greedy accuracy on a probe set reaches ``warmstart.target_accuracy`` (measured every
``warmstart.check_every`` steps once the training loss is below ``warmstart.probe_below_loss``,
the curve returned as ``probe_curve``).

Rows are one example each, padded to the longest of the batch, or with ``warmstart.pack_length``
whole examples packed into rows of up to that many tokens (:func:`pack_rows`), each attending
only to itself: position ids restart per example and, with no attention mask and no KV cache,
transformers builds the block-diagonal mask from them. Packing spends little compute on padding.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import torch

from prmflow.config import Params
from prmflow.lm.models import resolve_device
from prmflow.lm.precision import attention, use_cpu_bf16
from prmflow.lm.prompts import adds_special_tokens, format_prompt
from prmflow.lm.sampling import sample
from reward.outcome import verify


def probe_accuracy(model, tokenizer, probe: list[dict], params: Params) -> float:
    """Greedy final-answer accuracy on the probe problems."""
    prompts = [format_prompt(p["question"], params.model, tokenizer) for p in probe]
    out = sample(model, tokenizer, prompts, greedy=True, max_new_tokens=params.evaluate.max_new_tokens, batch_size=256)
    rules = params.data.answer_rules
    return sum(verify(t, p["final_answer"], rules=rules) for t, p in zip(out.texts, probe)) / max(1, len(probe))


def encode_pairs(pairs: list[tuple[str, str]], tokenizer, max_len: int) -> list[tuple[list[int], list[int]]]:
    """``(ids, labels)`` per (prompt, solution): prompt + solution + EOS, cut at ``max_len``;
    labels -100 on the prompt (loss only on the solution tokens)."""
    items = []
    eos = tokenizer.eos_token_id
    for prompt, solution in pairs:
        p = tokenizer(prompt, add_special_tokens=adds_special_tokens(tokenizer, [prompt]))["input_ids"]
        s = tokenizer(solution, add_special_tokens=False)["input_ids"] + [eos]
        items.append(((p + s)[:max_len], ([-100] * len(p) + s)[:max_len]))
    return items


Packed = tuple[list[int], list[int], list[int]]
"""One packed row: ``(ids, labels, position_ids)``, position ids restarting at 0 per example."""


def pack_rows(items: list[tuple[list[int], list[int]]], length: int, open_rows: int = 16) -> list[Packed]:
    """Pack whole examples, in order, into rows of at most ``length`` tokens (first fit over at
    most ``open_rows`` unfinished rows; when one more is needed, the fullest is closed). An
    example longer than ``length`` is a row by itself. Rows are padded later, per batch
    (:func:`_collate_packed`).

    >>> pack_rows([([1, 2], [-100, 2]), ([3, 4, 5], [-100, 4, 5]), ([6], [6])], 4)
    [([1, 2, 6], [-100, 2, 6], [0, 1, 0]), ([3, 4, 5], [-100, 4, 5], [0, 1, 2])]
    """
    rows: list[Packed] = []
    live: list[Packed] = []
    for ids, labels in items:
        if len(ids) > length:
            rows.append((list(ids), list(labels), list(range(len(ids)))))
            continue
        row = next((r for r in live if len(r[0]) + len(ids) <= length), None)
        if row is None:
            if len(live) == open_rows:
                full = max(live, key=lambda r: len(r[0]))
                live.remove(full)
                rows.append(full)
            row = ([], [], [])
            live.append(row)
        row[0].extend(ids)
        row[1].extend(labels)
        row[2].extend(range(len(ids)))
    return rows + live


def _collate_packed(pad_id: int):
    """Packed rows as tensors, padded to the longest row of the batch (the padding's positions
    restart at 0: one more example, which nothing attends to and no loss reads). No attention
    mask and no KV cache, so that transformers derives the block-diagonal mask from the
    position ids."""

    def collate(batch: list[Packed]) -> dict:
        n = max(len(ids) for ids, _, _ in batch)
        ids = torch.full((len(batch), n), pad_id, dtype=torch.long)
        labels = torch.full((len(batch), n), -100, dtype=torch.long)
        pos = torch.zeros((len(batch), n), dtype=torch.long)
        for i, (row_ids, row_labels, row_pos) in enumerate(batch):
            k = len(row_ids)
            ids[i, :k], labels[i, :k], pos[i, :k] = torch.tensor(row_ids), torch.tensor(row_labels), torch.tensor(row_pos)
            pos[i, k:] = torch.arange(n - k)
        return {"input_ids": ids, "labels": labels, "position_ids": pos, "use_cache": False}

    return collate


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
    ``warmstart.check_every`` steps once the last logged loss (the mean over the last
    ``check_every`` steps) is below ``warmstart.probe_below_loss`` (to ``curve`` and
    ``log_fn``), stopping at the target."""
    from transformers import TrainerCallback

    w = params.warmstart
    last_loss = [float("inf")]

    class LogLoss(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                last_loss[0] = float(logs["loss"])
                if log_fn:
                    log_fn({"train/loss": last_loss[0], "train/learning_rate": float(logs.get("learning_rate", 0.0))}, state.global_step)

    class StopAtAccuracy(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            if state.global_step % w.check_every:
                return
            if w.probe_below_loss is not None and not last_loss[0] < w.probe_below_loss:
                return
            acc = probe_accuracy(model, tokenizer, probe, params)
            curve.append((state.global_step, acc))
            if log_fn:
                log_fn({"probe/accuracy": acc}, state.global_step)
            print(f"warmstart: step {state.global_step} loss {last_loss[0]:.3f} probe accuracy {acc:.3f}", flush=True)
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
    max_len = min(getattr(model.config, "max_position_embeddings", 1024), 1024)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    items = encode_pairs(pairs, tokenizer, max_len)
    if w.pack_length:
        random.Random(w.seed).shuffle(items)  # rows mix lengths; the Trainer shuffles rows
        ds, collate = pack_rows(items, min(w.pack_length, max_len)), _collate_packed(pad_id)
    else:
        ds, collate = items, _collate(pad_id)
    device = resolve_device(params.model.device)
    args = TrainingArguments(
        output_dir=str(work_dir / "trainer"),
        max_steps=w.max_steps,
        per_device_train_batch_size=w.batch_size,
        learning_rate=w.learning_rate,
        warmup_steps=w.warmup_steps,
        weight_decay=w.weight_decay,
        lr_scheduler_type=w.lr_scheduler,
        logging_steps=w.check_every,
        save_strategy="no",
        report_to=[],
        seed=w.seed,
        data_seed=w.seed,
        use_cpu=device.type == "cpu",
        bf16=torch.cuda.is_bf16_supported() if device.type == "cuda" else device.type == "cpu" and use_cpu_bf16(w.cpu_bf16),
        dataloader_num_workers=0,
        remove_unused_columns=False,
    )
    curve: list[tuple[int, float]] = []
    callbacks = _callbacks(tokenizer, probe, params, curve, log_fn)
    trainer = Trainer(model=model, args=args, train_dataset=ds, data_collator=collate, callbacks=callbacks)
    with attention(model, w.cpu_attention if device.type == "cpu" else None):  # saved and sampled as built
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
