"""Curation: from source records to clean, disjoint train and eval splits.

For each split, in this order (each step counted, see :data:`COUNT_KEYS`):

1. read every record of the source, validating it (:mod:`prmflow.problems.sources`); a bad one
   stops the stage (``data.on_error: fail``) or is quarantined with its reason (``quarantine``);
2. drop repeated questions (lowercased, whitespace collapsed), keeping the first;
3. train only: drop questions that are in the eval split (decontamination);
4. keep ``data.min_steps <= difficulty <= data.max_steps``. The rule applies only to records
   with reference steps: a source without steps (difficulty 0) says nothing about difficulty,
   so its problems are all kept;
5. keep the first ``data.num_train`` / ``data.num_eval``.

Eval comes from its own source (synthetic: ``data.eval_seed``; files: ``data.eval_path``; HF:
``data.hf_eval_split``); a file source without one (or HF with the same split for both) gets a
seeded random eval split of ``num_eval`` carved from the cleaned train problems. The synthetic
generator repeats short chains, so it generates more until dedupe leaves ``num_*`` problems (or
the problem space runs out). Counts per split add up::

    read = rejected + duplicates + contaminated + filtered_difficulty + carved_to_eval + over_cap + kept
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from prmflow.config import DataConfig
from prmflow.problems.sources import DataError, hf_name, iter_file, iter_hf, normalize_question, resolve_source, synthetic_problems

COUNT_KEYS = ("read", "rejected", "duplicates", "contaminated", "filtered_difficulty", "carved_to_eval", "over_cap", "kept")


def collect(items: Iterable[dict | DataError], split: str, on_error: str, counts: dict, rejects: list[dict]) -> list[dict]:
    """Good records of a source; errors raise (``fail``) or are appended to ``rejects``."""
    good = []
    for item in items:
        counts["read"] += 1
        if isinstance(item, DataError):
            if on_error == "fail":
                raise item
            counts["rejected"] += 1
            rejects.append({"split": split, **item.to_dict()})
        else:
            good.append(item)
    return good


def dedupe(records: list[dict]) -> tuple[list[dict], int]:
    """First record of each normalised question; returns (kept, number dropped)."""
    seen, out = set(), []
    for r in records:
        key = normalize_question(r["question"])
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out, len(records) - len(out)


def decontaminate(records: list[dict], against: Iterable[dict]) -> tuple[list[dict], int]:
    """Drop records whose normalised question is in ``against``."""
    banned = {normalize_question(r["question"]) for r in against}
    out = [r for r in records if normalize_question(r["question"]) not in banned]
    return out, len(records) - len(out)


def in_difficulty(record: dict, min_steps: int, max_steps: int) -> bool:
    """Records without reference steps carry no difficulty and always pass."""
    return not record["steps"] or min_steps <= record["difficulty"] <= max_steps


def clean(records: list[dict], d: DataConfig, counts: dict, against: list[dict] = ()) -> list[dict]:
    """Dedupe, decontaminate against ``against``, filter by difficulty (counting each)."""
    records, counts["duplicates"] = dedupe(records)
    records, counts["contaminated"] = decontaminate(records, against)
    kept = [r for r in records if in_difficulty(r, d.min_steps, d.max_steps)]
    counts["filtered_difficulty"] = len(records) - len(kept)
    return kept


def cap(records: list[dict], n: int, counts: dict) -> list[dict]:
    counts["over_cap"] = max(0, len(records) - n)
    counts["kept"] = min(n, len(records))
    return records[:n]


def carve(pool: list[dict], n: int, seed: int, train_counts: dict, eval_counts: dict) -> tuple[list[dict], list[dict]]:
    """Seeded random ``n`` of ``pool`` as eval (in pool order), the rest as train."""
    chosen = set(random.Random(seed).sample(range(len(pool)), n))
    train_counts["carved_to_eval"] = eval_counts["read"] = n
    return [r for i, r in enumerate(pool) if i in chosen], [r for i, r in enumerate(pool) if i not in chosen]


# --------------------------------------------------------------------------- sources -> splits


def synthetic_split(n: int, seed: int, d: DataConfig, counts: dict, against: list[dict] = ()) -> list[dict]:
    """``n`` unique synthetic problems: generate, clean, and generate more while dedupe or
    decontamination leaves fewer than ``n``, until the problem space runs out."""
    num, before = (n + n // 10 + 16 if n else 0), -1
    while True:
        counts.update(dict.fromkeys(COUNT_KEYS, 0), read=num)
        pool = clean(synthetic_problems(num, seed, d), d, counts, against)
        if len(pool) >= n or len(pool) == before or num > 64 * n:
            return cap(pool, n, counts)
        before, num = len(pool), num * 2


def _sources(d: DataConfig):
    """(train items, eval items or ``None`` to carve), as lazy iterators."""
    if d.source == "hf":
        train = iter_hf(d.hf_name, d.hf_config, d.hf_train_split, d.columns, d.hf_revision)
        same = d.hf_eval_split == d.hf_train_split
        return train, None if same else iter_hf(d.hf_name, d.hf_config, d.hf_eval_split, d.columns, d.hf_revision)
    train = iter_file(d.path, d.source, d.columns)
    return train, iter_file(d.eval_path, d.source, d.columns) if d.eval_path else None


def eval_source(d: DataConfig) -> str:
    """Where the eval problems come from, for messages: their own file or split, else the source
    they are carved from."""
    if d.source == "hf":
        return hf_name(d.hf_name, d.hf_config, d.hf_eval_split)
    return d.eval_path or d.path or d.source


def file_splits(d: DataConfig, counts: dict, rejects: list[dict]) -> tuple[list[dict], list[dict]]:
    tc, ec = counts["train"], counts["eval"]
    train_items, eval_items = _sources(d)
    if eval_items is not None:
        eval_ = cap(clean(collect(eval_items, "eval", d.on_error, ec, rejects), d, ec), d.num_eval, ec)
        pool = clean(collect(train_items, "train", d.on_error, tc, rejects), d, tc, against=eval_)
    else:
        pool = clean(collect(train_items, "train", d.on_error, tc, rejects), d, tc)
        n_eval = min(d.num_eval, len(pool))
        if d.num_train > 0 and n_eval >= len(pool):
            raise DataError(
                d.path or d.hf_name,
                f"only {len(pool)} usable problems: carving an eval split of {d.num_eval} leaves none to "
                "train on; lower data.num_eval or give an eval source (data.eval_path / data.hf_eval_split)",
            )
        eval_, pool = carve(pool, n_eval, d.eval_seed, tc, ec)
        ec["kept"] = len(eval_)
    return cap(pool, d.num_train, tc), eval_


def _readable(path: Path) -> bool:
    """Does the extension name a reader (``.jsonl``, ``.json``, ``.parquet``, any case)?"""
    try:
        resolve_source(path)
    except DataError:
        return False
    return True


def incoming_files(folder: str | Path | None) -> tuple[list[Path], list[str]]:
    """``(problem files, names of everything else)`` in ``data.incoming_dir``, both sorted.

    The rest is listed (folders with a trailing ``/``) so that the metrics can say what was
    not read: a file dropped with a wrong extension is never dropped silently.
    """
    if not folder or not Path(folder).is_dir():
        return [], []
    files, ignored = [], []
    for p in sorted(Path(folder).iterdir()):
        if p.is_file() and _readable(p):
            files.append(p)
        else:
            ignored.append(p.name + ("/" if p.is_dir() else ""))
    return files, ignored


def difficulty_histogram(records: list[dict]) -> dict[str, int]:
    hist = Counter(r["difficulty"] for r in records)
    return {str(k): hist[k] for k in sorted(hist)}


def add_incoming(train: list[dict], eval_: list[dict], d: DataConfig, rejects: list[dict]) -> tuple[list[dict], dict | None]:
    """Append the problems of the files in ``data.incoming_dir`` to ``train`` (validated, deduped
    against train, decontaminated against eval); returns (train, their counts or ``None`` when
    the folder holds nothing). The counts add ``files`` read, ``ignored_files`` and ``ignored``
    (their names)."""
    files, ignored = incoming_files(d.incoming_dir)
    if not files and not ignored:
        return train, None
    counts = dict.fromkeys(COUNT_KEYS, 0)
    items = (item for f in files for item in iter_file(f, "auto", d.columns))
    new = clean(collect(items, "incoming", d.on_error, counts, rejects), d, counts, against=eval_)
    train, dup = dedupe(train + new)
    counts["duplicates"] += dup
    counts["kept"] = len(new) - dup
    counts.update(files=len(files), ignored_files=len(ignored), ignored=ignored)
    return train, counts


def curate_splits(d: DataConfig) -> tuple[dict[str, list[dict]], dict[str, dict], list[dict]]:
    """``({"train", "eval"} records, counts per split, rejected records)`` for ``data``.

    Raises :class:`DataError` when a split ends up empty, naming the source and the counts.
    """
    counts = {s: dict.fromkeys(COUNT_KEYS, 0) for s in ("train", "eval")}
    rejects: list[dict] = []
    if d.source == "synthetic":
        eval_ = synthetic_split(d.num_eval, d.eval_seed, d, counts["eval"])
        train = synthetic_split(d.num_train, d.train_seed, d, counts["train"], against=eval_)
    else:
        train, eval_ = file_splits(d, counts, rejects)
    where = d.path or d.hf_name or d.source
    if not eval_:
        raise DataError(eval_source(d), f"no eval problems left after curation: {counts['eval']}")
    train, incoming = add_incoming(train, eval_, d, rejects)
    if incoming is not None:
        counts["incoming"] = incoming
    if d.num_train > 0 and not train:
        raise DataError(where, f"no train problems left after curation: {counts['train']}")
    overlap = {normalize_question(r["question"]) for r in train} & {normalize_question(r["question"]) for r in eval_}
    if overlap:  # cannot happen by construction; a check that survives python -O
        raise AssertionError(f"train and eval share {len(overlap)} questions, e.g. {sorted(overlap)[:3]}")
    return {"train": train, "eval": eval_}, counts, rejects
