"""Process reward scorers: one score in [0, 1] per reasoning step ("is the solution still right
up to here"), for batches of (prompt, solution) strings, on CPU or GPU.

Two scorers with the same ``score`` API, both reading steps through :mod:`prmflow.prm.encoding`:

- :class:`PolicyConfidenceScorer` (training-free baseline): step ``k`` scores the lowest
  probability the policy gave to any result token (a token with a digit) of steps ``0..k``.
- :class:`PRMScorer`: the learned PRM (:class:`prmflow.prm.model.PRMModel`).

:func:`load_scorer` returns the scorer a directory holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from prmflow.lm.logprobs import aligned_logprobs
from prmflow.lm.models import load_tokenizer
from prmflow.prm.encoding import Encoded, encode_steps, pad_right, result_token_mask
from prmflow.prm.model import PRM_CONFIG, PRMModel, read_prm_config
from reward.parse import STEP_JOINERS, split_steps


def next_token_probs(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """``(B, T)``: ``p(x_t | x_<t)`` from causal-LM ``logits`` ``(B, T, V)``; position 0 gets 1."""
    return aligned_logprobs(logits, input_ids).exp()


def running_min_confidence(probs: torch.Tensor, counted: torch.Tensor) -> torch.Tensor:
    """``(B, T)``: at each position, the lowest of ``probs`` over counted positions so far (1 if none).

    ``probs`` ``(B, T)`` in [0, 1]; ``counted`` ``(B, T)`` bool (result tokens of the solution).
    """
    masked = torch.where(counted, probs, torch.ones_like(probs))
    return torch.cummin(masked, dim=1).values


# ----------------------------------------------------------------------------------- scorers


class StepScorer:
    """Shared batching: subclasses map ``(input_ids, attention_mask, prompt_lens)`` to ``(B, T)``
    scores in [0, 1] at every position; this class reads them at the step ends. Steps are
    ``step_split``'s (``data.step_split``), joined by its joiner (:data:`reward.parse.STEP_JOINERS`)."""

    tokenizer = None
    model = None
    max_length: int | None = None
    step_split: str = "line"

    @property
    def sep(self) -> str:
        return STEP_JOINERS[self.step_split]

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _position_scores(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, prompt_lens: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def score_steps(self, prompts: Sequence[str], steps: Sequence[Sequence[str]], batch_size: int = 64) -> list[list[float]]:
        """Per-step scores for pre-split solutions: ``len(out[i]) == len(steps[i])``."""
        if len(prompts) != len(steps):
            raise ValueError(f"{len(prompts)} prompts vs {len(steps)} solutions")
        encoded = self.encode(prompts, steps)
        out: list[list[float]] = [[] for _ in encoded]
        # Longest first: batches of similar length waste less padding; order is restored.
        todo = sorted((i for i, e in enumerate(encoded) if e.ends), key=lambda i: -len(encoded[i].ids))
        was_training = self.model.training
        self.model.eval()
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            ids, mask, plens, ends = self.batch([encoded[i] for i in chunk])
            scores = self._position_scores(ids, mask, plens).float().cpu()
            for row, i in enumerate(chunk):
                out[i] = [min(max(float(scores[row, e]), 0.0), 1.0) for e in ends[row]]
        if was_training:
            self.model.train()
        return out

    def encode(self, prompts: Sequence[str], steps: Sequence[Sequence[str]]) -> list[Encoded]:
        """Each solution's token ids and step ends, as the scorer reads them."""
        return [encode_steps(self.tokenizer, p, s, self.sep) for p, s in zip(prompts, steps)]

    def batch(self, encoded: Sequence[Encoded]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[list[int]]]:
        """Right-padded ``input_ids``, ``attention_mask`` and prompt lengths on the scorer's
        device, and each row's step-end positions. A solution longer than the model's context
        is cut, and a step that ends past it is read at the last position that fits."""
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        seqs = [self._truncate(e.ids) for e in encoded]
        ids, mask = pad_right(seqs, pad_id)
        plens = torch.tensor([e.prompt_len for e in encoded])
        ends = [[min(end, len(seq) - 1) for end in e.ends] for e, seq in zip(encoded, seqs)]
        return ids.to(self.device), mask.to(self.device), plens.to(self.device), ends

    def score(
        self, prompts: Sequence[str], solutions: Sequence[str], batch_size: int = 64, finished: Sequence[bool] | None = None
    ) -> list[list[float]]:
        """Per-step scores of each solution (``[]`` for a solution without steps). ``finished[i]``
        false: solution ``i`` was cut at the token budget, and its cut-off last step is not scored."""
        finished = [True] * len(solutions) if finished is None else finished
        return self.score_steps(prompts, [split_steps(s, self.step_split, f) for s, f in zip(solutions, finished)], batch_size)

    def _truncate(self, ids: list[int]) -> list[int]:
        return ids if self.max_length is None else ids[: self.max_length]


def _max_length(config) -> int | None:
    return getattr(config, "max_position_embeddings", None)


class PolicyConfidenceScorer(StepScorer):
    """Training-free baseline: step ``k`` scores ``min p(x_t | x_<t)`` over the result tokens
    (tokens with a digit) of steps ``0..k``, under the (SFT) policy.

    Why it works: the policy is unsure where it errs, and a wrong carried value or result is a
    token the policy would not have written given the prefix (measured AUC ~0.99 on the synthetic
    task, ``../shared/design.md``). Non-digit tokens (variable names, operators) are ignored so
    that free wording in real solutions is not mistaken for an error.
    """

    def __init__(self, model, tokenizer, all_tokens: bool = False, step_split: str = "line"):
        self.model, self.tokenizer = model, tokenizer
        self.max_length = _max_length(model.config)
        self.counted_vocab = None if all_tokens else result_token_mask(tokenizer)
        self.step_split = step_split

    @classmethod
    def from_pretrained(
        cls, path: str | Path, device: str | torch.device | None = None, all_tokens: bool = False, step_split: str = "line"
    ) -> PolicyConfidenceScorer:
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(str(path)).to(device or "cpu")
        return cls(model, load_tokenizer(path), all_tokens, step_split)

    def _position_scores(self, input_ids, attention_mask, prompt_lens):
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits
        probs = next_token_probs(logits, input_ids)
        pos = torch.arange(input_ids.shape[1], device=input_ids.device)[None, :]
        counted = (pos >= prompt_lens[:, None]) & attention_mask.bool()
        if self.counted_vocab is not None:
            counted &= self.counted_vocab.to(input_ids.device)[input_ids]
        return running_min_confidence(probs, counted)


def calibrate(p: torch.Tensor, threshold: float) -> torch.Tensor:
    """Monotone piecewise-linear map of [0, 1] onto itself sending ``threshold`` to 0.5.

    Rankings (AUC, best-of-N by min/last) are unchanged; 0.5 becomes the decision threshold
    that was chosen on held-out data, so "score > 0.5" means "judged right" for every reader.

    >>> calibrate(torch.tensor([0.0, 0.1, 0.2, 0.6, 1.0]), 0.2).tolist()
    [0.0, 0.25, 0.5, 0.75, 1.0]
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    lo = p / (2 * threshold)
    hi = 0.5 + (p - threshold) / (2 * (1 - threshold))
    return torch.where(p < threshold, lo, hi).clamp(0.0, 1.0)


class PRMScorer(StepScorer):
    """The learned PRM (:class:`PRMModel`) behind the :class:`StepScorer` API.

    ``threshold`` (from :data:`PRM_CONFIG`) is the raw probability that separates right from
    wrong steps; with ``calibrated`` the scores are mapped by :func:`calibrate` so that it
    sits at 0.5.
    """

    def __init__(self, model: PRMModel, tokenizer, threshold: float = 0.5, calibrated: bool = False, step_split: str = "line"):
        self.model, self.tokenizer = model, tokenizer
        self.max_length = _max_length(model.backbone.config)
        self.threshold, self.calibrated = float(threshold), calibrated
        self.step_split = step_split

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> PRMScorer:
        """The PRM saved in ``path``, reading steps as it was trained to (its ``step_split``)."""
        model, tok, cfg = PRMModel.load(path, device, dtype)
        return cls(model, tok, cfg.get("threshold", 0.5), cfg.get("calibrated", False), cfg.get("step_split", "line"))

    def _position_scores(self, input_ids, attention_mask, prompt_lens):
        p = torch.sigmoid(self.model(input_ids, attention_mask, prompt_lens)["logits"].float())
        return calibrate(p, self.threshold) if self.calibrated and self.threshold != 0.5 else p


def load_scorer(path: str | Path, device: str | torch.device | None = None, step_split: str = "line") -> StepScorer:
    """The scorer a directory holds: a learned PRM (``prm_config.json`` kind ``learned``, with its
    own step split), or policy confidence (kind ``policy_confidence``, or a plain causal-LM
    directory without ``prm_config.json``) reading ``step_split`` steps."""
    path = Path(path)
    kind = read_prm_config(path).get("kind") if (path / PRM_CONFIG).exists() else "policy_confidence"
    if kind == "learned":
        return PRMScorer.from_pretrained(path, device)
    if kind == "policy_confidence":
        return PolicyConfidenceScorer.from_pretrained(path, device, step_split=step_split)
    raise ValueError(f"{path / PRM_CONFIG}: unknown scorer kind {kind!r}")
