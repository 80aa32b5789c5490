"""The workspace's on-disk contracts: where each stage's outputs live and how they are read.

Stages hand data to each other only through these paths and loaders, never by importing one
another. Every writer is atomic (:mod:`prmflow.io`): a stage that crashes leaves the last good
output in place.

========================  =============  ==================================================
path                      written by     what
========================  =============  ==================================================
``data/inputs``           inputs         fingerprints of files and revisions read from outside
``data/curated``          curate         ``DatasetDict`` train/eval of :func:`curated_features`
``data/rejects``          curate         ``rejects.jsonl``: quarantined records with reasons
``data/labels``           label          ``Dataset`` of :func:`label_features` + ``stepwise.jsonl``
``data/label_history``    the flow       earlier iterations' labels, one folder each
``models/base``           warmstart      the policy RL starts from (HF format)
``models/prm``            train_prm      a PRM directory (:mod:`prmflow.prm.model`)
``models/policy``         train_policy   the candidate policy (HF format)
``models/champion``       evaluate       the promoted policy (not a DVC output, see champion)
``models/start``          the flow       snapshot of the champion that iteration k+1 starts from
``metrics/<stage>.json``  each stage     DVC metrics
``plots/<stage>/``        some stages    DVC plots (CSV) and PNG renderings
========================  =============  ==================================================
"""

from __future__ import annotations

import json
from pathlib import Path

from prmflow.io import atomic_dir, write_jsonl

INPUTS = "data/inputs"
CURATED = "data/curated"
REJECTS = "data/rejects"
LABELS = "data/labels"
LABEL_HISTORY = "data/label_history"
BASE = "models/base"
PRM = "models/prm"
POLICY = "models/policy"
POLICY_CKPT = "models/policy_ckpt"
CHAMPION = "models/champion"
START = "models/start"

METRICS = {
    "curate": "metrics/curate.json",
    "warmstart": "metrics/warmstart.json",
    "label": "metrics/label.json",
    "train_prm": "metrics/prm.json",
    "train_policy": "metrics/train_policy.json",
    "evaluate": "metrics/eval.json",
}
PLOTS = {
    "warmstart": "plots/warmstart",
    "label": "plots/label",
    "train_prm": "plots/prm",
    "train_policy": "plots/train_policy",
    "evaluate": "plots/eval",
}


def has_model(path: str | Path) -> bool:
    """Whether ``path`` holds a saved Hugging Face model (its ``config.json``)."""
    return (Path(path) / "config.json").exists()


def read_metrics(stage: str, root: str | Path = ".") -> dict:
    """A stage's metrics file as a dict (``{}`` when the stage has not run)."""
    p = Path(root) / METRICS[stage]
    return json.loads(p.read_text()) if p.exists() else {}


# --------------------------------------------------------------------------- curated problems


def curated_features():
    """Schema of a curated problem (see :mod:`prmflow.problems.sources` for each field)."""
    import datasets

    return datasets.Features(
        {
            "id": datasets.Value("string"),
            "question": datasets.Value("string"),
            "answer": datasets.Value("string"),
            "final_answer": datasets.Value("string"),
            "steps": datasets.List(datasets.Value("string")),
            "source": datasets.Value("string"),
            "difficulty": datasets.Value("int64"),
        }
    )


def save_curated(splits: dict[str, list[dict]], out_dir: str | Path = CURATED) -> None:
    """Write ``{"train": [...], "eval": [...]}`` as a ``DatasetDict``, atomically."""
    import datasets

    dd = datasets.DatasetDict({s: datasets.Dataset.from_list(recs, features=curated_features()) for s, recs in splits.items()})
    quiet = not datasets.utils.are_progress_bars_disabled()
    if quiet:  # a bar per split of a few thousand rows is noise in DVC's log
        datasets.disable_progress_bars()
    try:
        with atomic_dir(out_dir) as tmp:
            dd.save_to_disk(str(tmp))
    finally:
        if quiet:
            datasets.enable_progress_bars()


def load_curated(out_dir: str | Path = CURATED):
    """The curated ``DatasetDict`` (``train``, ``eval``), held in memory (never writes cache
    files into the DVC output folder)."""
    import datasets

    if not (Path(out_dir) / "dataset_dict.json").exists():
        raise FileNotFoundError(f"{out_dir}: no curated data; run the curate stage first (dvc repro curate)")
    return datasets.load_from_disk(str(out_dir), keep_in_memory=True)


def load_split(split: str, n: int | None = None, curated_dir: str | Path = CURATED) -> list[dict]:
    """The first ``n`` problems (all when ``None``) of a curated split, as dicts."""
    ds = load_curated(curated_dir)[split]
    if n is not None:
        ds = ds.select(range(min(n, len(ds))))
    return list(ds)


# --------------------------------------------------------------------------- step labels


def label_features():
    """Schema of a labelled solution: TRL's stepwise supervision (``prompt``, ``completions``,
    ``labels``) plus what the label stage knows about it (see ``tasks/label.py``)."""
    import datasets

    return datasets.Features(
        {
            "id": datasets.Value("string"),
            "prompt": datasets.Value("string"),
            "completions": datasets.List(datasets.Value("string")),
            "labels": datasets.List(datasets.Value("bool")),
            "soft_labels": datasets.List(datasets.Value("float32")),
            "method": datasets.Value("string"),
            "rollouts": datasets.Value("int64"),
            "question": datasets.Value("string"),
            "final_answer": datasets.Value("string"),
            "difficulty": datasets.Value("int64"),
            "source": datasets.Value("string"),
            "correct": datasets.Value("bool"),
            "oracle_labels": datasets.List(datasets.Value("bool")),
        }
    )


LABEL_SAMPLES = "samples.md"
"""Beside the labels: a few labelled solutions, step by step, to check by hand."""


def label_samples(out_dir: str | Path = LABELS) -> Path:
    return Path(out_dir) / LABEL_SAMPLES


def save_labels(rows: list[dict], out_dir: str | Path = LABELS, samples: str | None = None) -> None:
    """Write labelled solutions (a ``Dataset``), ``stepwise.jsonl`` (TRL's three columns) and,
    when given, ``samples.md`` (:func:`prmflow.labeling.report.samples_markdown`)."""
    import datasets

    ds = datasets.Dataset.from_list(rows, features=label_features())
    with atomic_dir(out_dir) as tmp:
        ds.save_to_disk(str(tmp))
        write_jsonl(tmp / "stepwise.jsonl", ({k: r[k] for k in ("prompt", "completions", "labels")} for r in rows))
        if samples is not None:
            (tmp / LABEL_SAMPLES).write_text(samples)


def load_labels(out_dir: str | Path = LABELS):
    """The labelled ``Dataset`` written by :func:`save_labels`."""
    import datasets

    if not Path(out_dir).is_dir():
        raise FileNotFoundError(f"{out_dir}: no step labels; run the label stage first (dvc repro label)")
    return datasets.load_from_disk(str(out_dir), keep_in_memory=True)
