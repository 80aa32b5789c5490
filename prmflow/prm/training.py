"""Training the learned PRM: its data pool, the held-out split, the model, the Trainer run.

The PRM (:class:`prmflow.prm.model.PRMModel`) is the ``prm.init`` causal LM (the start policy by
default, frozen) with a head trained by the transformers ``Trainer``: BCE at step ends only, on
the soft MC fractions (``prm.soft_labels``, never rounded) or on hard labels; the head and the
backbone have their own learning rates (``prm.backbone_learning_rate: 0`` freezes the backbone).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from pathlib import Path

import torch

from prmflow import workspace
from prmflow.compute import distributed
from prmflow.config import ConfigError, Params
from prmflow.lm.models import load_causal_lm, load_tokenizer, resolve_device
from prmflow.prm.data import StepwiseDataset, collate_steps, own_label_records, read_stepwise
from prmflow.prm.model import PRMModel, backbone_reference

LogFn = Callable[[dict, int], None]
"""``log_fn(metrics, step)``: training curve (MLflow in the CLI)."""


def load_records(params: Params, labels_dir: str | Path | None, history_dir: str | Path | None = None) -> tuple[list[dict], dict[str, int]]:
    """Training pool: own labels (with ``oracle_labels`` where known), earlier iterations' labels
    (one folder each under ``history_dir``), then external records; and its counts:
    ``records_read = records + dropped_no_steps`` (label rows without a step; external records
    with none are refused by validation instead)."""
    cfg = params.prm
    records: list[dict] = []
    read = 0
    label_dirs = []
    if cfg.use_own_labels:
        if labels_dir is None or not Path(labels_dir).exists():
            raise FileNotFoundError(f"{labels_dir}: no step labels; run the label stage or set prm.use_own_labels: false")
        label_dirs.append(Path(labels_dir))
    if history_dir is not None:
        if not Path(history_dir).is_dir():
            raise FileNotFoundError(f"{history_dir}: earlier iterations' labels not found (flow_state.yaml: label_history)")
        label_dirs += sorted(d for d in Path(history_dir).iterdir() if d.is_dir())
    for d in label_dirs:
        ds = workspace.load_labels(d)
        read += len(ds)
        records += own_label_records(ds)
    dropped = read - len(records)
    if cfg.extra_data:
        extra = read_stepwise(cfg.extra_data)
        read += len(extra)
        records += extra
    if not records:
        raise ValueError("no PRM training records: prm.use_own_labels is false and prm.extra_data is not set")
    return records, {"records_read": read, "dropped_no_steps": dropped, "records": len(records)}


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


def frozen_backbone_dir(params: Params, policy_dir: str | Path) -> Path | None:
    """The local model folder the PRM's backbone is loaded from when training leaves it frozen
    (``prm.backbone_learning_rate: 0``): the PRM references it instead of copying it. ``None``
    when the backbone is trained (it is a new model) or comes from the Hub."""
    cfg = params.prm
    src = Path(policy_dir if cfg.init == "policy" else cfg.init)
    return src if cfg.backbone_learning_rate == 0 and (src / "config.json").is_file() else None


def save_prm(model: PRMModel, tokenizer, path: Path, out_dir: str | Path, threshold: float, params: Params, policy_dir) -> bool:
    """Save the trained PRM into ``path`` (the atomic temporary folder of ``out_dir``), its
    frozen backbone referenced rather than copied (:func:`frozen_backbone_dir`); returns whether
    it was referenced."""
    cfg, frozen = params.prm, frozen_backbone_dir(params, policy_dir)
    extra = {"calibrated": cfg.calibrate and threshold != 0.5, "init": cfg.init, "soft_labels": cfg.soft_labels}
    extra["step_split"] = params.data.step_split
    model.save(path, tokenizer, threshold, extra, backbone_reference(frozen, out_dir) if frozen else None)
    return frozen is not None


def build_model(params: Params, policy_dir: str | Path):
    """``(PRMModel, tokenizer)`` from ``prm.init`` (``policy``: ``policy_dir``)."""
    cfg = params.prm
    src = str(policy_dir) if cfg.init == "policy" else cfg.init
    device = resolve_device(params.model.device)
    # fp32 weights: Trainer's bf16 autocast handles GPU speed, and the optimizer needs fp32; the
    # model's own attention kernel, the one its scorers load it with (PRMModel.load).
    backbone = load_causal_lm(src, params.model.model_copy(update={"dtype": "float32", "cpu_attention": None}), device)
    tokenizer = load_tokenizer(src)
    tokenizer.padding_side = "right"
    torch.manual_seed(cfg.seed)
    sep = params.data.solution_format().joiner  # steps joined as the label stage and the scorers join them
    model = PRMModel(backbone, tokenizer, cfg.features, cfg.head_hidden, sep=sep, factored=cfg.head == "factored").to(device)
    return model, tokenizer


CACHE_LIMIT_BYTES = 2 * 1024**3
"""Most memory a frozen backbone's cached outputs may take (:func:`cache_backbone`)."""


def cache_backbone(model: PRMModel, ds, train_backbone: bool) -> bool:
    """Whether to train with :meth:`PRMModel.cached_backbone`: the backbone is frozen and its
    outputs for every record (a log-prob per token, and the hidden state when the head reads it)
    fit in :data:`CACHE_LIMIT_BYTES`. Measured on the default (320 records, 300 steps of 32):
    the head trains in ~1/10 of the time, since each record was run through the backbone ~30 times."""
    if train_backbone:
        return False
    tokens = sum(len(item["input_ids"]) for item in ds.items)
    per_token = 1 + (model.config.get_text_config().hidden_size if "hidden" in model.features or model.factored else 0)
    if tokens * per_token * 4 > CACHE_LIMIT_BYTES:
        print(f"train_prm: the frozen backbone's outputs ({tokens * per_token * 4 / 1024**3:.1f} GiB) are not cached: over the limit")
        return False
    return True


def train_model(model, tokenizer, records: list[dict], params: Params, work_dir: Path, log_fn: LogFn | None = None) -> dict:
    """Train ``model`` in place with the transformers ``Trainer``; return its train metrics:
    ``train_steps`` (optimizer steps), ``train_loss``, ``train_runtime_s`` and what the model's
    context kept of ``records`` (:class:`StepwiseDataset`'s counts): ``train.records_used``,
    ``train.dropped_no_step_in_context``, ``train.steps_used``, ``train.steps_truncated``."""
    from transformers import Trainer, TrainerCallback, TrainingArguments

    cfg = params.prm
    ds = StepwiseDataset(records, tokenizer, soft=cfg.soft_labels, max_length=getattr(model.config, "max_position_embeddings", None), sep=model.sep)
    counts = {f"train.{k}": v for k, v in ds.counts.items() if k not in ("records_in", "steps_in")}
    if not len(ds) or cfg.max_steps == 0:
        return {"train_steps": 0, **counts, "train_loss": float("nan"), "train_runtime_s": 0.0}
    train_backbone = cfg.backbone_learning_rate > 0
    model.backbone.requires_grad_(train_backbone)
    groups = [{"params": model.head_parameters(), "lr": cfg.learning_rate}]
    if train_backbone:
        groups.append({"params": [p for p in model.backbone.parameters()], "lr": cfg.backbone_learning_rate})
    optimizer = torch.optim.AdamW(groups, weight_decay=0.0)
    device = resolve_device(params.model.device)
    ranks = distributed.world_size()  # under torchrun: the Trainer's DDP; prm.batch_size stays the global batch
    if cfg.batch_size % ranks:
        raise ConfigError(f"prm.batch_size: {cfg.batch_size} does not split evenly over {ranks} processes")
    args = TrainingArguments(
        output_dir=str(work_dir / "trainer"),
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size // ranks,
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
    with model.cached_backbone() if cache_backbone(model, ds, train_backbone) else contextlib.nullcontext():
        result = trainer.train()
    model.eval()
    return {
        "train_steps": int(trainer.state.global_step),
        **counts,
        "train_loss": float(result.training_loss),
        "train_runtime_s": float(result.metrics["train_runtime"]),
    }
