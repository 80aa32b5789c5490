"""Sampling for the label stage: a rollout function over the policy that counts its cost.

:class:`PolicySampler` is a :data:`prmflow.labeling.solutions.RolloutFn` over a policy that
samples in shards, here or on Ray (:mod:`prmflow.compute.samplers`), counting sequences, tokens, sequences cut at the token budget
(``truncated``) and seconds, and reporting progress (a callback, or tqdm on stderr). :func:`rollout_token_budget` caps rollouts.
:func:`sample_solutions` and :func:`rollout_sampler` are the label stage's two samplers, and
:func:`completer_policy` the model behind the second (``label.completer``), shared with the
benchmarks that re-run the stage (``benchmarks/label_rollouts.py``).
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterator

from prmflow.compute.samplers import ShardedPolicy, policy_sampler
from prmflow.config import ConfigError, LabelConfig, Params
from prmflow.labeling.solutions import Solution, make_solutions
from prmflow.lm.folders import check_model_folder
from prmflow.lm.models import load_tokenizer
from prmflow.lm.prompts import format_prompt
from prmflow.lm.sampling import Samples

Progress = Callable[[int, int, str], None]
"""``progress(done, total, desc)``: sequences sampled so far in the current phase."""


@contextlib.contextmanager
def _progress_bar(total: int, desc: str, progress: Progress | None) -> Iterator[Callable[[int], None]]:
    """A ``tick(n_finished)`` callback: ``progress(done, total, desc)`` if given, else tqdm on stderr."""
    if progress is not None:
        done = 0

        def tick(n: int) -> None:
            nonlocal done
            done += n
            progress(done, total, desc)

        progress(0, total, desc)
        yield tick
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, desc=desc, unit="seq", file=sys.stderr, mininterval=2.0, leave=False) as bar:
        yield bar.update


class PolicySampler:
    """A :data:`RolloutFn` over ``policy`` (:class:`prmflow.compute.samplers.ShardedPolicy`),
    counting sequences, tokens, truncated sequences and time."""

    def __init__(
        self,
        policy: ShardedPolicy,
        cfg: LabelConfig,
        max_new_tokens: int,
        progress: Progress | None = None,
        temperature: float | None = None,
    ):
        self.policy, self.cfg = policy, cfg
        self.max_new_tokens = max_new_tokens
        self.temperature = cfg.temperature if temperature is None else temperature
        self.progress = progress
        self.sequences = self.tokens = self.truncated = 0
        self.seconds = 0.0

    def __call__(self, prompts: list[str], n: int, *, seed: int, desc: str = "sampling") -> list[str]:
        return self.sample(prompts, n, seed=seed, desc=desc).texts

    def sample(self, prompts: list[str], n: int, *, seed: int, desc: str = "sampling") -> Samples:
        """``n`` completions per prompt, with which ones finished (ended with EOS)."""
        t0 = time.perf_counter()
        with _progress_bar(len(prompts) * n, desc, self.progress) as tick:
            out = self.policy.sample(
                prompts,
                n,
                temperature=self.temperature,
                max_new_tokens=self.max_new_tokens,
                batch_size=self.cfg.batch_size,
                seed=seed,
                progress=tick,
            )
        self.seconds += time.perf_counter() - t0
        self.sequences += len(out.texts)
        self.tokens += sum(out.num_tokens)
        self.truncated += sum(not f for f in out.finished)
        return out

    def stats(self, prefix: str) -> dict[str, float]:
        s = max(self.seconds, 1e-9)
        return {
            f"{prefix}.sequences": self.sequences,
            f"{prefix}.tokens": self.tokens,
            f"{prefix}.time_s": round(self.seconds, 3),
            f"{prefix}.tokens_per_s": round(self.tokens / s, 1),
            f"{prefix}.sequences_per_s": round(self.sequences / s, 1),
            f"{prefix}.truncated": self.truncated,
            f"{prefix}.truncation_rate": self.truncated / self.sequences if self.sequences else 0.0,
        }


def rollout_token_budget(problems: list[dict], tokenizer, cfg: LabelConfig) -> int:
    """New-token cap for rollouts: ``label.rollout_max_new_tokens``, or by default the longest
    reference answer (steps + answer line) in tokens, +25% and +4 for slack and EOS, capped at
    ``label.max_new_tokens``. A rollout continues a prefix, so it needs less than a whole
    solution; one that runs past this is almost surely not converging on the answer."""
    if cfg.rollout_max_new_tokens is not None:
        return cfg.rollout_max_new_tokens
    longest = max((len(tokenizer(p["answer"], add_special_tokens=False)["input_ids"]) for p in problems), default=0)
    return min(cfg.max_new_tokens, math.ceil(1.25 * longest) + 4)


def sample_solutions(
    policy: ShardedPolicy, problems: list[dict], params: Params, tokenizer, progress: Progress | None = None
) -> tuple[list[Solution], PolicySampler]:
    """The policy's ``label.samples_per_problem`` solutions to each problem (seed ``label.seed``),
    split into steps and judged; and the sampler that drew them, for its cost."""
    cfg = params.label
    solver = PolicySampler(policy, cfg, cfg.max_new_tokens, progress)
    prompts = [format_prompt(p["question"], params.model, tokenizer) for p in problems]
    out = solver.sample(prompts, cfg.samples_per_problem, seed=cfg.seed, desc="solutions")
    fmt = params.data.solution_format()
    return make_solutions(problems, out.texts, cfg.samples_per_problem, prompts, fmt, params.data.modulus, out.finished), solver


def rollout_sampler(
    policy: ShardedPolicy, problems: list[dict], tokenizer, cfg: LabelConfig, progress: Progress | None = None
) -> PolicySampler:
    """The sampler of completions from step prefixes: :func:`rollout_token_budget` new tokens at
    ``label.rollout_temperature``."""
    return PolicySampler(policy, cfg, rollout_token_budget(problems, tokenizer, cfg), progress, temperature=cfg.rollout_temperature)


def completer_tokenizer(name: str):
    """``label.completer``'s tokenizer, or a one-line error naming the setting: load it before
    any sampling, so a completer that cannot load fails first."""
    check_model_folder(name, "label.completer")
    try:
        return load_tokenizer(name)
    except OSError as e:  # a Hub id that is neither cached nor reachable
        raise ConfigError(
            f"label.completer: {name}: not a local folder, and not loadable from the Hugging Face Hub ({str(e).splitlines()[0]})"
        ) from None


@contextlib.contextmanager
def completer_policy(params: Params, policy: ShardedPolicy) -> Iterator[ShardedPolicy]:
    """The model that draws the rollouts: ``label.completer`` loaded beside ``policy`` (stopped
    on exit), or ``policy`` itself when it is ``None``."""
    if params.label.completer is None:
        yield policy
        return
    with policy_sampler(params.compute, params.label.completer, params.model) as completer:
        yield completer
