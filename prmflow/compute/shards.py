"""Sampling in shards whose results do not depend on who samples them.

A call ``sample(prompts, n, seed=...)`` is cut into *shards*: runs of whole prompts, at most
``batch_size // n`` per shard (one decode batch each), each sampled by its own
:func:`prmflow.lm.sampling.sample` call seeded with :func:`shard_seed`. A shard's samples depend
only on its prompts and its seed, so the local backend (shards in a loop) and Ray (shards
spread over actors) give the same samples, and so do DDP ranks that each take some shards.

Sampled shards are runs of the prompts sorted by length (little padding, as in ``sample``);
greedy shards keep the prompts' order (``batch_size`` consecutive sequences, as ``generate``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from prmflow.lm.sampling import Samples


@dataclass(frozen=True)
class Shard:
    """Prompts ``index`` (positions in the call's prompt list) sampled with ``seed``."""

    index: list[int]
    seed: int | None


def shard_seed(seed: int | None, k: int) -> int | None:
    """The seed of shard ``k`` of a call seeded ``seed`` (``None``: unseeded, e.g. greedy).

    >>> shard_seed(5, 0) == shard_seed(5, 0) != shard_seed(5, 1)
    True
    >>> shard_seed(None, 3) is None
    True
    """
    if seed is None:
        return None
    return int.from_bytes(hashlib.sha256(f"{seed}/{k}".encode()).digest()[:7], "big")


def plan_shards(lengths: list[int], n: int, batch_size: int, seed: int | None, greedy: bool) -> list[Shard]:
    """Shards of a call over prompts of token ``lengths``: ``max(1, batch_size // n)`` prompts
    each, by length for sampling (ties keep the prompts' order), in order for greedy.

    >>> [s.index for s in plan_shards([5, 1, 3, 2], n=2, batch_size=4, seed=0, greedy=False)]
    [[1, 3], [2, 0]]
    >>> [s.index for s in plan_shards([5, 1, 3], n=1, batch_size=2, seed=None, greedy=True)]
    [[0, 1], [2]]
    """
    order = list(range(len(lengths)))
    if not greedy:
        order.sort(key=lengths.__getitem__)
    size = max(1, batch_size // n)
    return [Shard(order[i : i + size], shard_seed(seed, k)) for k, i in enumerate(range(0, len(order), size))]


def merge(prompts: list[str], n: int, shards: list[Shard], parts: list[Samples]) -> Samples:
    """One :class:`Samples` for ``prompts`` (prompt-major, their order) from each shard's samples."""
    rows: list[tuple | None] = [None] * (len(prompts) * n)
    for shard, part in zip(shards, parts):
        for j, i in enumerate(shard.index):
            for r in range(n):
                k = j * n + r
                rows[i * n + r] = (part.texts[k], part.prompt_ids[k], part.completion_ids[k], part.finished[k])
    return Samples.from_rows(prompts, n, rows)
