"""Policies that sample in shards (:mod:`prmflow.compute.shards`), here or on Ray.

:func:`policy_sampler` opens the policy in a model folder for sampling, by ``compute.backend``:
``local`` loads it in this process and samples the shards one after the other; ``ray`` loads it
once in each of ``compute.workers`` Ray actors and spreads the shards over them
(:mod:`prmflow.compute.ray_backend`). Both return the same samples for the same seeds.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from prmflow.compute.shards import Shard, merge, plan_shards
from prmflow.config import ComputeConfig, ModelConfig
from prmflow.lm.models import count_parameters, load_causal_lm, load_tokenizer
from prmflow.lm.prompts import adds_special_tokens
from prmflow.lm.sampling import Samples, sample

RunShards = Callable[[list[list[str]], list[Shard], dict, Callable[[int], None] | None], list[Samples]]
"""``run(prompts_per_shard, shards, sample_kwargs, progress) -> samples per shard``."""


class ShardedPolicy:
    """``sample(prompts, n, ...)`` as :func:`prmflow.lm.sampling.sample`, shard by shard
    (:func:`prmflow.compute.shards.plan_shards`); ``run`` samples the shards somewhere."""

    def __init__(self, tokenizer, run: RunShards, num_parameters: int):
        self.tokenizer, self.run, self.num_parameters = tokenizer, run, num_parameters

    def sample(
        self,
        prompts: list[str],
        n: int = 1,
        *,
        temperature: float = 1.0,
        top_p: float = 1.0,
        greedy: bool = False,
        max_new_tokens: int = 96,
        batch_size: int = 128,
        seed: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Samples:
        if not prompts:
            return Samples([], n)
        enc = self.tokenizer(prompts, add_special_tokens=adds_special_tokens(self.tokenizer, prompts))["input_ids"]
        shards = plan_shards([len(ids) for ids in enc], n, batch_size, seed, greedy)
        kw = dict(n=n, temperature=temperature, top_p=top_p, greedy=greedy, max_new_tokens=max_new_tokens, batch_size=batch_size)
        parts = self.run([[prompts[i] for i in s.index] for s in shards], shards, kw, progress)
        return merge(prompts, n, shards, parts)


def local_runner(model, tokenizer) -> RunShards:
    """Shards sampled one after the other by ``model`` in this process."""

    def run(prompts: list[list[str]], shards: list[Shard], kw: dict, progress) -> list[Samples]:
        kw = dict(kw)
        n = kw.pop("n")
        return [sample(model, tokenizer, p, n, seed=s.seed, progress=progress, **kw) for p, s in zip(prompts, shards)]

    return run


def local_policy(model, tokenizer) -> ShardedPolicy:
    """A policy already loaded in this process, sampled in shards."""
    return ShardedPolicy(tokenizer, local_runner(model, tokenizer), count_parameters(model))


@contextlib.contextmanager
def policy_sampler(compute: ComputeConfig, model_dir: str | Path, model_cfg: ModelConfig) -> Iterator[ShardedPolicy]:
    """The policy in ``model_dir``, ready to sample on ``compute.backend`` (Ray actors are
    stopped on exit)."""
    tokenizer = load_tokenizer(model_dir)
    if compute.backend == "local":
        yield local_policy(load_causal_lm(model_dir, model_cfg), tokenizer)
        return
    from prmflow.compute import ray_backend

    with ray_backend.actor_pool(compute, model_dir, model_cfg) as (run, num_parameters):
        yield ShardedPolicy(tokenizer, run, num_parameters)


def connect(compute: ComputeConfig) -> None:
    """Check ``compute`` before any work: with ``backend: ray``, join (or start) the cluster;
    an unreachable ``compute.ray_address`` fails here, naming it."""
    if compute.backend == "ray":
        from prmflow.compute import ray_backend

        ray_backend.connect(compute)
