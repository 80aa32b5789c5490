"""Sampling shards on Ray actors, each holding the policy loaded once.

``compute.ray_address``: ``null`` starts a local Ray cluster in this process (its workers see
this checkout through ``PYTHONPATH``); an address joins a running cluster (``ray start
--head`` on the head node; prmflow installed on every node), checked for reachability first.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from prmflow.compute.shards import Shard
from prmflow.config import ComputeConfig, ConfigError, ModelConfig

CODE_ROOT = Path(__file__).resolve().parents[2]
"""The checkout whose ``prmflow`` the actors of a local cluster import."""


def _ray():
    try:
        import ray
    except ImportError as e:
        raise ConfigError("compute.backend: 'ray' needs the ray package (pip install 'prmflow[ray]')") from e
    return ray


def check_address(address: str, timeout_s: float = 5.0) -> None:
    """Fail unless ``address`` (``host:port`` or ``ray://host:port``; ``auto`` is Ray's to
    resolve) accepts a TCP connection, with a message naming ``compute.ray_address``.

    >>> check_address("no-port")
    Traceback (most recent call last):
    ...
    prmflow.config.ConfigError: compute.ray_address: 'no-port' is not host:port, ray://host:port or auto
    """
    if address == "auto":
        return
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"compute.ray_address: {address!r} is not host:port, ray://host:port or auto")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise ConfigError(f"compute.ray_address: cannot reach the Ray cluster at {address!r} ({e})") from None


def connect(compute: ComputeConfig) -> None:
    """Join ``compute.ray_address`` or start a local cluster (once per process)."""
    ray = _ray()
    if ray.is_initialized():
        return
    if compute.ray_address is None:
        cpus = max(1, round(compute.workers * compute.cpus_per_worker))
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
        return
    check_address(compute.ray_address)
    ray.init(address=compute.ray_address, log_to_driver=False, configure_logging=False)


class ShardWorker:
    """A Ray actor: the policy loaded once, sampling the shards it is sent."""

    def __init__(self, model_dir: str, model_cfg: dict, threads: int):
        import torch

        from prmflow.lm.models import count_parameters, load_causal_lm, load_tokenizer

        torch.set_num_threads(threads)
        self.tokenizer = load_tokenizer(model_dir)
        self.model = load_causal_lm(model_dir, ModelConfig.model_validate(model_cfg))
        self.num_parameters = count_parameters(self.model)

    def parameters(self) -> int:
        return self.num_parameters

    def sample(self, k: int, prompts: list[str], seed: int | None, kw: dict):
        from prmflow.lm.sampling import sample

        kw = dict(kw)
        n = kw.pop("n")
        return k, sample(self.model, self.tokenizer, prompts, n, seed=seed, **kw)


@contextlib.contextmanager
def actor_pool(compute: ComputeConfig, model_dir, model_cfg: ModelConfig) -> Iterator[tuple]:
    """``(run, num_parameters)``: ``run`` samples shards on ``compute.workers`` actors that each
    loaded ``model_dir``; the actors are stopped on exit."""
    ray = _ray()
    from ray.util import ActorPool

    connect(compute)
    options = dict(num_cpus=compute.cpus_per_worker, num_gpus=compute.gpus_per_worker)
    if compute.ray_address is None:  # a local cluster runs this checkout's code
        path = os.pathsep.join(p for p in (str(CODE_ROOT), os.environ.get("PYTHONPATH")) if p)
        options["runtime_env"] = {"env_vars": {"PYTHONPATH": path}}
    remote = ray.remote(ShardWorker).options(**options)
    threads = max(1, int(compute.cpus_per_worker))
    model_dir = str(Path(model_dir).resolve())
    actors = [remote.remote(model_dir, model_cfg.model_dump(), threads) for _ in range(compute.workers)]
    try:
        num_parameters = ray.get(actors[0].parameters.remote())

        def run(prompts: list[list[str]], shards: list[Shard], kw: dict, progress):
            pool = ActorPool(actors)
            for k, (p, s) in enumerate(zip(prompts, shards)):
                pool.submit(lambda a, job: a.sample.remote(*job), (k, p, s.seed, kw))
            parts = [None] * len(shards)
            while pool.has_next():
                k, part = pool.get_next_unordered()
                parts[k] = part
                if progress is not None:
                    progress(len(part.texts))
            return parts

        yield run, num_parameters
    finally:
        for a in actors:
            ray.kill(a)
