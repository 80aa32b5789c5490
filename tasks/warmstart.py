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
from tasks.io import atomic_dir, atomic_write_json
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


def sft_examples(params: Params, curated_dir: str | Path) -> list[tuple[str, str]]:
    """(prompt, solution) pairs to train on.

    Synthetic: fresh problems from ``warmstart.seed`` (more variety than the curated train set),
    minus any question that is in the eval split, so evaluation stays uncontaminated.
    Other sources: the curated train split.
    """
    from tasks.curate import load_curated

    curated = load_curated(curated_dir)
    if params.data.source == "synthetic":
        eval_questions = set(curated["eval"]["question"])
        d = params.data
        probs = generate_problems(
            params.warmstart.num_examples, params.warmstart.seed, d.min_steps, d.max_steps, d.modulus
        )
        rows = [(p["question"], p["answer"]) for p in probs if p["question"] not in eval_questions]
    else:
        rows = list(zip(curated["train"]["question"], curated["train"]["answer"]))
    if not rows:
        raise ValueError(f"{curated_dir}: no training problems for the warm start")
    return [(format_prompt(q, params.model), a) for q, a in rows]


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


def sft(model, tokenizer, pairs, params: Params, work_dir: Path, report_to_mlflow: bool) -> dict:
    """Supervised fine-tuning with the transformers ``Trainer``; returns its train metrics."""
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
    trainer = Trainer(model=model, args=args, train_dataset=ds, data_collator=_collate(pad_id))
    result = trainer.train()
    return {"train_loss": float(result.training_loss), "train_runtime_s": float(result.metrics["train_runtime"])}


def warmstart(params: Params, curated_dir="data/curated", out_dir=OUT_DIR, metrics_path="metrics/warmstart.json", report_to_mlflow=False) -> dict:
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
        if do_sft:
            pairs = sft_examples(params, curated_dir)
            metrics.update(sft(model, tokenizer, pairs, params, tmp, report_to_mlflow))
            metrics.update(sft_steps=params.warmstart.max_steps, sft_examples=len(pairs))
        import shutil

        shutil.rmtree(tmp / "trainer", ignore_errors=True)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    metrics["wall_time_s"] = round(time.time() - t0, 2)
    atomic_write_json(metrics_path, metrics)
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
        tracking.log_policy_model(OUT_DIR, run.info.run_id, params)
    print(f"warmstart: {metrics}")


if __name__ == "__main__":
    main()
