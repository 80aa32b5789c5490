"""RL checkpoints: a killed run resumes where it stopped, and only the run that wrote one does.

A checkpoint holds the policy (HF format), the optimizer state, the torch RNG state, the step
and the history of per-step metrics, plus a fingerprint of the run's inputs (RL params, start
policy, PRM): a checkpoint with another fingerprint is ignored.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from prmflow.config import RLConfig
from prmflow.io import atomic_dir

STATE_FILE = "trainer_state.pt"
PROGRESS_FILE = "progress.json"


def fingerprint(rl: RLConfig, policy_dir: Path, prm_dir: Path | None, extra: dict | None = None) -> str:
    """Identity of a training run: its RL params, ``extra`` settings that change its rewards
    (the solution format) and the bytes of its start policy and PRM."""
    payload = [rl.model_dump(), extra] if extra else rl.model_dump()  # no extra: the same fingerprint as before
    h = hashlib.sha256(json.dumps(payload, sort_keys=True).encode())
    for d in (policy_dir, prm_dir):
        if d is not None and d.exists():
            for f in sorted(d.glob("*.safetensors")) + sorted(d.glob("*.json")):
                h.update(f.name.encode())
                h.update(str(f.stat().st_size).encode())
                h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()[:16]


def save(ckpt_dir: Path, model, tokenizer, optimizer, step: int, history: list[dict], fp: str) -> None:
    with atomic_dir(ckpt_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        torch.save({"optimizer": optimizer.state_dict(), "rng": torch.get_rng_state()}, tmp / STATE_FILE)
        (tmp / PROGRESS_FILE).write_text(json.dumps({"step": step, "fingerprint": fp, "history": history}))


def load(ckpt_dir: Path, fp: str) -> dict | None:
    """``{"step", "fingerprint", "history"}`` of the checkpoint in ``ckpt_dir`` if it is this
    run's (same fingerprint), else ``None``."""
    prog = ckpt_dir / PROGRESS_FILE
    if not prog.exists():
        return None
    state = json.loads(prog.read_text())
    return state if state.get("fingerprint") == fp else None


def restore(ckpt_dir: Path, optimizer) -> None:
    """Load the optimizer state and the torch RNG state saved with the checkpoint.

    Each RL step also reseeds its own sampling (``rl.seed`` and the step), so a resumed run
    replays the killed run's next step exactly; restoring the RNG keeps that true for any
    random draw made outside the seeded sampling too."""
    ts = torch.load(ckpt_dir / STATE_FILE, weights_only=False)
    optimizer.load_state_dict(ts["optimizer"])
    torch.set_rng_state(ts["rng"])
