"""Fingerprints of what the pipeline reads from outside DVC: files, folders, Hugging Face revisions.

``data.path`` or a local ``model.name_or_path`` are params, not DVC deps, so a file replaced at
the same path would go unnoticed. The ``inputs`` stage (run every time, in well under a second)
writes these fingerprints to small files that ``curate``, ``warmstart`` and ``evaluate`` depend
on; when the content is the same the fingerprint file is byte-identical and DVC skips the stage.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from prmflow.config import Params

_SHA_RE = re.compile(r"^[0-9a-f]{40}$")


def file_digest(path: str | Path) -> str:
    """``sha256:<hex>`` of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def dir_digest(path: str | Path) -> str:
    """``sha256:<hex>`` over every file of a folder (relative names and bytes, sorted)."""
    root, h = Path(path), hashlib.sha256()
    for f in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        h.update(str(f.relative_to(root)).encode() + b"\0" + file_digest(f).encode() + b"\n")
    return "sha256:" + h.hexdigest()


def path_digest(path: str | Path) -> dict:
    """``{"path", "digest"}`` of a local file or folder; ``{"path", "missing": True}`` when absent
    (the stage that reads it reports the error, naming the setting)."""
    p = Path(path)
    if p.is_file():
        return {"path": str(path), "digest": file_digest(p)}
    if p.is_dir():
        return {"path": str(path), "digest": dir_digest(p)}
    return {"path": str(path), "missing": True}


def hub_revision(repo_id: str, revision: str | None, repo_type: str) -> dict:
    """The commit a Hub repo's ``revision`` resolves to (``{"repo", "revision", "commit"}``).

    A 40-hex revision is already a commit. Otherwise the Hub is asked (unless offline); without
    an answer the commit is ``None`` and ``resolved`` says why, so the fingerprint still changes
    when the requested revision does.
    """
    out = {"repo": repo_id, "type": repo_type, "revision": revision or "main"}
    if revision and _SHA_RE.match(revision):
        return {**out, "commit": revision}
    if os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE"):
        return {**out, "commit": None, "resolved": "offline (HF_HUB_OFFLINE)"}
    try:
        from huggingface_hub import HfApi

        info = HfApi().repo_info(repo_id, revision=revision, repo_type=repo_type, timeout=10)
        return {**out, "commit": info.sha}
    except Exception as e:  # noqa: BLE001 - no network, no such repo: recorded, the loader reports it
        return {**out, "commit": None, "resolved": f"not resolved: {type(e).__name__}"}


def data_inputs(params: Params) -> dict:
    """What ``curate`` reads from outside the workspace (``data/incoming`` is a DVC dep itself)."""
    d = params.data
    out: dict = {"source": d.source}
    if d.source == "hf" and d.hf_name:
        out["hf"] = hub_revision(d.hf_name, d.hf_revision, "dataset")
    for key in ("path", "eval_path"):
        if getattr(d, key):
            out[key] = path_digest(getattr(d, key))
    return out


def model_fingerprint(name: str, revision: str | None = None) -> dict:
    """A model named by a local folder (its digest) or an HF id (its commit)."""
    return path_digest(name) if Path(name).exists() else hub_revision(name, revision, "model")


def model_inputs(params: Params) -> dict:
    """The starting checkpoint ``warmstart`` reads: a local folder's digest or a Hub commit."""
    name = params.model.name_or_path
    if name is None:
        return {"model": "tiny default (built from model.tiny)"}
    return {"model": model_fingerprint(name, params.model.revision)}


def completer_inputs(params: Params) -> dict:
    """The rollout model ``label`` reads (``label.completer``), if not the policy itself."""
    name = params.label.completer
    return {"completer": model_fingerprint(name) if name else "the labelled policy"}


def extra_eval_inputs(params: Params) -> dict:
    """The extra eval file ``evaluate`` reads, if any."""
    extra = params.evaluate.extra_eval
    return {"extra_eval": path_digest(extra) if extra else None}
