"""PRM training data: stepwise-supervision records, their validation, and batch collation.

Stepwise supervision (TRL's PRM format), one record per solution::

    prompt        str          the formatted prompt (``format_prompt(question)``)
    completions   list[str]    the steps, one line each, non-empty
    labels        list[bool]   per step: is the solution still right up to here
    soft_labels   list[float]  optional, in [0, 1] (e.g. the Monte-Carlo success fraction);
                               defaults to ``float(labels)``

Sources: our own labels (``data/labels``, a ``datasets.Dataset`` written by ``tasks/label.py``)
and external JSONL/parquet files in this format (``prm.extra_data``). A bad external record is a
:class:`prmflow.problems.sources.DataError` naming file, line (JSONL, 1-based) or row (parquet, 0-based) and
field; nothing is dropped silently.

Collation: :func:`prmflow.prm.encoding.encode_steps` (the scorer's own encoding) gives each step's
end token; targets sit at those positions only, as floats (soft labels are never rounded), and
every other position is :data:`IGNORE` (``-100.0``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from prmflow.prm.scorers import encode_steps, pad_right
from prmflow.problems.sources import DataError, iter_json_lines

IGNORE = -100.0
"""Target value at positions that are not a step end (masked out of the loss)."""
FIELDS = ("prompt", "completions", "labels")


# ----------------------------------------------------------------------------- validation


def validate_stepwise(raw: Any, file: str, line: int, row: bool = False) -> dict:
    """Check one stepwise record; return ``{prompt, completions, labels, soft_labels}``.

    Raises :class:`DataError` for: a non-object record, a missing field, a prompt that is not a
    non-empty string, completions that are not a non-empty list of non-empty one-line strings,
    labels that are not booleans (``1``/``"true"`` are refused: a silent cast hides a wrong
    column), a labels/completions length mismatch, and soft labels that are not numbers in
    [0, 1] of the same length.
    """

    def err(reason: str, field: str | None = None) -> DataError:
        return DataError(file, reason, line, field, raw, row)

    if not isinstance(raw, Mapping):
        raise err(f"expected an object with {list(FIELDS)}, got {type(raw).__name__}")
    for f in FIELDS:
        if f not in raw:
            raise err(f"missing; record has {sorted(map(str, raw))}", f)
    prompt, steps, labels = raw["prompt"], raw["completions"], raw["labels"]
    if not isinstance(prompt, str) or not prompt.strip():
        raise err("expected a non-empty string" if isinstance(prompt, str) else f"expected a string, got {type(prompt).__name__}", "prompt")
    steps, labels = _as_list(steps), _as_list(labels)
    if steps is None:
        raise err(f"expected a list of strings, got {type(raw['completions']).__name__}", "completions")
    if not steps:
        raise err("no steps (empty list)", "completions")
    for k, s in enumerate(steps):
        if not isinstance(s, str):
            raise err(f"step {k}: expected a string, got {type(s).__name__}", "completions")
        if not s.strip():
            raise err(f"step {k}: empty step", "completions")
        if "\n" in s.strip():
            raise err(f"step {k}: holds a newline (a step is one line: the scorer splits solutions at newlines)", "completions")
    if labels is None:
        raise err(f"expected a list of booleans, got {type(raw['labels']).__name__}", "labels")
    if len(labels) != len(steps):
        raise err(f"{len(labels)} labels for {len(steps)} completions (one label per step)", "labels")
    for k, v in enumerate(labels):
        if not isinstance(v, bool):
            raise err(f"step {k}: expected a boolean, got {type(v).__name__} {v!r}", "labels")
    soft = raw.get("soft_labels")
    if soft is None:
        soft = [float(v) for v in labels]
    else:
        soft = _as_list(soft)
        if soft is None or len(soft) != len(steps):
            n = "not a list" if soft is None else f"{len(soft)} values"
            raise err(f"{n} for {len(steps)} completions (one soft label per step)", "soft_labels")
        for k, v in enumerate(soft):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (0.0 <= float(v) <= 1.0) or math.isnan(float(v)):
                raise err(f"step {k}: expected a number in [0, 1], got {v!r}", "soft_labels")
        soft = [float(v) for v in soft]
    return {"prompt": prompt, "completions": [s.strip() for s in steps], "labels": list(labels), "soft_labels": soft}


def _as_list(x: Any) -> list | None:
    """Lists and tuples (and numpy arrays from parquet) as a list; anything else ``None``."""
    if isinstance(x, (list, tuple)):
        return list(x)
    if hasattr(x, "tolist") and not isinstance(x, (str, bytes)):
        out = x.tolist()
        return out if isinstance(out, list) else None
    return None


# ----------------------------------------------------------------------------- readers


def iter_stepwise(path: str | Path) -> Iterator[dict | DataError]:
    """Records of a stepwise JSONL (``.jsonl``/``.json``) or parquet file; bad ones as errors."""
    path = Path(path)
    if not path.is_file():
        raise DataError(str(path), "file not found" if not path.exists() else "not a file")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        for lineno, obj in iter_json_lines(path):
            if isinstance(obj, DataError):
                yield obj
                continue
            try:
                yield validate_stepwise(obj, str(path), lineno)
            except DataError as e:
                yield e
    elif suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as e:  # pyarrow raises several types for a file that is not parquet
            raise DataError(str(path), f"not a readable parquet file: {e}") from e
        missing = [f for f in FIELDS if f not in table.column_names]
        if missing:
            raise DataError(str(path), f"no column(s) {missing}; columns are {table.column_names}")
        for i, r in enumerate(table.to_pylist()):
            try:
                yield validate_stepwise(r, str(path), i, row=True)
            except DataError as e:
                yield e
    else:
        raise DataError(str(path), f"unknown extension {suffix!r}: stepwise data is .jsonl or .parquet")


def read_stepwise(path: str | Path) -> list[dict]:
    """All records of a stepwise file, raising :class:`DataError` at the first bad one."""
    out = []
    for item in iter_stepwise(path):
        if isinstance(item, DataError):
            raise item
        out.append(item)
    if not out:
        raise DataError(str(path), "no records")
    return out


def own_label_records(ds) -> list[dict]:
    """Records from ``data/labels`` (``tasks/label.py``'s dataset), with their oracle labels.

    Rows without a step are left out: ``len(ds) - len(out)`` of them, which the caller counts
    (:func:`prmflow.prm.training.load_records`)."""
    cols = set(ds.column_names)
    out = []
    for r in ds:
        steps = list(r["completions"])
        if not steps:
            continue
        labels = [bool(x) for x in r["labels"]]
        soft = [float(x) for x in r["soft_labels"]] if "soft_labels" in cols else [float(x) for x in labels]
        rec = {"prompt": r["prompt"], "completions": steps, "labels": labels, "soft_labels": soft}
        if "oracle_labels" in cols:
            rec["oracle_labels"] = [bool(x) for x in r["oracle_labels"]]
        out.append(rec)
    return out


def targets(record: Mapping, soft: bool) -> list[float]:
    """Per-step training targets: the soft labels as they are, or the hard labels as 0/1."""
    return [float(x) for x in (record["soft_labels"] if soft else record["labels"])]


# ----------------------------------------------------------------------------- collation


class StepwiseDataset(torch.utils.data.Dataset):
    """Encoded records: ``{"input_ids": list[int], "prompt_len": int, "step_ends": list[int],
    "targets": list[float]}``.

    Sequences longer than ``max_length`` lose their last tokens and the steps that ended there;
    a record left with no step end is dropped. ``counts`` says how many of each:
    ``records_in = records_used + dropped_no_step_in_context`` and
    ``steps_in = steps_used + steps_truncated`` (a dropped record's steps count as truncated).
    """

    def __init__(self, records: Sequence[Mapping], tokenizer, soft: bool, max_length: int | None = None, sep: str = "\n"):
        self.items = []
        steps_in = 0
        for r in records:
            enc = encode_steps(tokenizer, r["prompt"], r["completions"], sep)
            ys = targets(r, soft)
            ids, ends = enc.ids, enc.ends
            steps_in += len(ends)
            if max_length is not None and len(ids) > max_length:
                ids = ids[:max_length]
                ys = [y for e, y in zip(ends, ys) if e < max_length]
                ends = [e for e in ends if e < max_length]
            if ends:
                self.items.append({"input_ids": ids, "prompt_len": min(enc.prompt_len, len(ids)), "step_ends": ends, "targets": ys})
        steps_used = sum(len(it["step_ends"]) for it in self.items)
        self.counts = {
            "records_in": len(records),
            "records_used": len(self.items),
            "dropped_no_step_in_context": len(records) - len(self.items),
            "steps_in": steps_in,
            "steps_used": steps_used,
            "steps_truncated": steps_in - steps_used,
        }

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


def collate_steps(batch: Sequence[Mapping], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids``/``attention_mask`` ``(B, T)`` (long), ``prompt_lens`` ``(B,)``
    and ``labels`` ``(B, T)`` (float32): the step target at each step end, :data:`IGNORE`
    everywhere else."""
    ids, mask = pad_right([b["input_ids"] for b in batch], pad_id)
    plens = torch.tensor([int(b.get("prompt_len", 0)) for b in batch], dtype=torch.long)
    labels = torch.full(ids.shape, IGNORE, dtype=torch.float32)
    for i, b in enumerate(batch):
        labels[i, list(b["step_ends"])] = torch.tensor(list(b["targets"]), dtype=torch.float32)
    return {"input_ids": ids, "attention_mask": mask, "prompt_lens": plens, "labels": labels}
