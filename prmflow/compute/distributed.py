"""Training on several processes: ``torchrun --nproc_per_node N`` with DDP (gloo on CPU, nccl
on GPU). Every rank runs the same loop; rank 0 alone writes outputs, checkpoints and MLflow.

RL: each rank samples whole shards of the step's prompts (:func:`my_shards`), computes its
loss over its rows scaled so that DDP's gradient average is the gradient of the loss over the
whole global batch (:func:`loss_scale`), and the per-step metrics are pooled over the ranks
(:func:`pool_stats`). Outside ``torchrun`` (or with one process) all of this is the identity.
"""

from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist

from prmflow.compute.shards import shard_seed
from prmflow.lm.sampling import Samples, sample


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def init() -> int:
    """Join the process group ``torchrun`` describes (``WORLD_SIZE`` > 1); returns the world size."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not active():
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(minutes=30))
    return world_size()


def close() -> None:
    if active():
        dist.destroy_process_group()


def barrier() -> None:
    if active():
        dist.barrier()


def wrap(model):
    """``model`` under DDP (gradients all-reduced in ``backward``) when distributed, else itself."""
    if not active():
        return model
    from torch.nn.parallel import DistributedDataParallel

    device = next(model.parameters()).device
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def my_shards(num_prompts: int, shard_prompts: int | None, ranks: int, me: int) -> list[list[int]]:
    """The shards (lists of prompt indices) rank ``me`` of ``ranks`` samples: shard ``j`` is
    prompts ``j*size .. (j+1)*size-1`` and goes to rank ``j % ranks``; ``size`` is
    ``shard_prompts``, or ``num_prompts / ranks`` when ``None``. Raises unless the shards
    split evenly over the ranks (equal rows per rank, hence the same loss as one process).

    >>> my_shards(4, None, 1, 0), my_shards(4, None, 2, 1), my_shards(4, 1, 2, 0)
    ([[0, 1, 2, 3]], [[2, 3]], [[0], [2]])
    >>> my_shards(4, 3, 2, 0)
    Traceback (most recent call last):
    ...
    ValueError: compute.rl_shard_prompts: 3 does not split rl.prompts_per_step (4) into whole shards for each of 2 processes
    """
    size = shard_prompts or max(1, num_prompts // ranks)
    if ranks > 1 and (num_prompts % size or (num_prompts // size) % ranks):
        what = f"compute.rl_shard_prompts: {shard_prompts}" if shard_prompts else f"rl.prompts_per_step: {num_prompts}"
        raise ValueError(f"{what} does not split rl.prompts_per_step ({num_prompts}) into whole shards for each of {ranks} processes")
    shards = [list(range(i, i + size)) for i in range(0, num_prompts, size)]
    return shards[me::ranks]


def _all_sum(x: float) -> float:
    t = torch.tensor([float(x)], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item())


def loss_scale(mine: float) -> float:
    """Factor for this rank's loss so that DDP's mean of the ranks' gradients is the gradient of
    the loss over all ranks' rows: ``ranks x (this rank's share of the normaliser)``, ``mine``
    being this rank's normaliser (:func:`prmflow.rl.loss.loss_normaliser`: its tokens or rows)."""
    if not active():
        return 1.0
    return world_size() * mine / max(_all_sum(mine), 1e-12)


SUMMED = ("sampling/groups", "sampling/informative_groups", "reward/steps_scored", "reward/steps_credited", "reward/steps_without_end", "reward/step_ends_without_score")
"""Per-step counts, added over the ranks; other metrics are means over equal shares: averaged."""


def pool_stats(row: dict) -> dict:
    """One step's metrics over all ranks (counts summed, the rest averaged)."""
    if not active():
        return row
    rows: list[dict] = [None] * world_size()
    dist.all_gather_object(rows, row)
    out = {}
    for key, value in row.items():
        vals = [r[key] for r in rows if key in r]
        if key == "step" or isinstance(value, bool) or not isinstance(value, (int, float)):
            out[key] = value
        else:
            out[key] = sum(vals) if key in SUMMED else sum(vals) / len(vals)
    return out


def sample_my_share(model, tokenizer, prompts: list[str], n: int, *, seed: int, shard_prompts: int | None, **kw) -> tuple[list[int], Samples]:
    """This rank's prompts (indices into ``prompts``) and their samples, shard by shard
    (:func:`my_shards`; shard ``j`` seeded with :func:`prmflow.compute.shards.shard_seed`), so
    that the ranks' samples together are one process's with the same ``shard_prompts``. One
    process without ``shard_prompts`` samples all prompts in one call seeded ``seed``."""
    ranks, me = world_size(), rank()
    if ranks == 1 and shard_prompts is None:
        return list(range(len(prompts))), sample(model, tokenizer, prompts, n, seed=seed, **kw)
    mine = my_shards(len(prompts), shard_prompts, ranks, me)
    index: list[int] = []
    out = Samples([], n)
    for t, shard in enumerate(mine):
        index += shard
        out = out + sample(model, tokenizer, [prompts[i] for i in shard], n, seed=shard_seed(seed, me + t * ranks), **kw)
    return index, out
