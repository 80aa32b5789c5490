"""Process reward scorers: one score in [0, 1] per reasoning step ("is the solution still right
up to here"), for batches of (prompt, solution) strings, on CPU or GPU.

A solution is split into steps with :func:`reward.parse.split_steps` (its final-answer line is not
a step) and encoded as ``prompt + step_0 + SEP + step_1 + SEP + ...``, where ``SEP`` is the
newline that ends a step in the solution format. The score of step ``k`` is read at the last
token of its separator (:func:`encode_steps` returns those positions). Training
(``tasks/train_prm.py``) and scoring share this one encoding, so what the model learned to read
is what it reads.

Two scorers with the same ``score`` API:

- :class:`PolicyConfidenceScorer` (training-free baseline): step ``k`` scores the lowest
  probability the policy gave to any result token (a token with a digit) of steps ``0..k``.
- :class:`PRMScorer`: the learned PRM written by ``tasks/train_prm.py``.

Pure inputs and outputs; the only I/O is loading weights in ``from_pretrained``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from reward.parse import split_steps

STEP_SEPARATOR = "\n"
PRM_CONFIG = "prm_config.json"
"""Written next to the weights: which scorer kind, and how it encodes steps."""


# ----------------------------------------------------------------------------------- encoding


def step_end_positions(token_ids: Sequence[int], sep_id: int, start: int = 0) -> list[int]:
    """Positions (0-based) of ``sep_id`` at or after ``start``: one per step ending there.

    ``start`` skips the prompt, whose own newlines end no step.

    >>> step_end_positions([5, 9, 7, 9, 8, 9], sep_id=9, start=2)
    [3, 5]
    """
    return [i for i in range(start, len(token_ids)) if token_ids[i] == sep_id]


@dataclass
class Encoded:
    """One (prompt, steps) pair as token ids, and where each step's score is read."""

    ids: list[int]
    ends: list[int]
    """Index in ``ids`` of each step's last separator token (``len(ends) == number of steps``)."""
    prompt_len: int


def encode_steps(tokenizer, prompt: str, steps: Sequence[str], sep: str = STEP_SEPARATOR) -> Encoded:
    """Token ids of ``prompt + step_0 + sep + step_1 + sep + ...`` and each step's end position.

    Pieces are tokenized separately and concatenated, so a step boundary is a token boundary
    for any tokenizer (a BPE merge across it would otherwise move the score). The prompt gets
    the tokenizer's special tokens, as in :func:`tasks.sampling.sample`.
    """
    ids = list(tokenizer(prompt)["input_ids"])
    prompt_len = len(ids)
    sep_ids = tokenizer(sep, add_special_tokens=False)["input_ids"]
    if not sep_ids:
        raise ValueError(f"step separator {sep!r} encodes to no token")
    ends = []
    for step in steps:
        ids += tokenizer(step, add_special_tokens=False)["input_ids"] + sep_ids
        ends.append(len(ids) - 1)
    return Encoded(ids, ends, prompt_len)


def pad_right(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to ``(B, T)`` ``input_ids`` and ``attention_mask`` (long tensors).

    Right padding keeps every real token at its natural position; nothing is generated here.
    """
    n = max((len(s) for s in seqs), default=0)
    ids = torch.full((len(seqs), max(n, 1)), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), max(n, 1)), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.as_tensor(list(s), dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids, mask


def result_token_mask(tokenizer) -> torch.Tensor:
    """``(V,)`` bool: vocabulary entries whose text holds a digit (the "result" tokens)."""
    vocab = tokenizer.get_vocab()
    mask = torch.zeros(max(len(tokenizer), max(vocab.values()) + 1), dtype=torch.bool)
    for tok, i in vocab.items():
        text = tokenizer.convert_tokens_to_string([tok])
        mask[i] = any(c.isdigit() for c in text)
    return mask


def next_token_probs(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """``(B, T)``: ``p(x_t | x_<t)`` from causal-LM ``logits`` ``(B, T, V)``; position 0 gets 1."""
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    tok = logp.gather(-1, input_ids[:, 1:, None]).squeeze(-1)
    return torch.cat([torch.ones_like(tok[:, :1]), tok.exp()], dim=1)


def running_min_confidence(probs: torch.Tensor, counted: torch.Tensor) -> torch.Tensor:
    """``(B, T)``: at each position, the lowest of ``probs`` over counted positions so far (1 if none).

    ``probs`` ``(B, T)`` in [0, 1]; ``counted`` ``(B, T)`` bool (result tokens of the solution).
    """
    masked = torch.where(counted, probs, torch.ones_like(probs))
    return torch.cummin(masked, dim=1).values


# ----------------------------------------------------------------------------------- scorers


class StepScorer:
    """Shared batching: subclasses map ``(input_ids, attention_mask, prompt_lens)`` to ``(B, T)``
    scores in [0, 1] at every position; this class reads them at the step ends."""

    tokenizer = None
    model = None
    max_length: int | None = None

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
        encoded = [encode_steps(self.tokenizer, p, s) for p, s in zip(prompts, steps)]
        out: list[list[float]] = [[] for _ in encoded]
        # Longest first: batches of similar length waste less padding; order is restored.
        todo = sorted((i for i, e in enumerate(encoded) if e.ends), key=lambda i: -len(encoded[i].ids))
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        was_training = self.model.training
        self.model.eval()
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            seqs = [self._truncate(encoded[i].ids) for i in chunk]
            ids, mask = pad_right(seqs, pad_id)
            plens = torch.tensor([encoded[i].prompt_len for i in chunk])
            scores = self._position_scores(ids.to(self.device), mask.to(self.device), plens.to(self.device)).float().cpu()
            for row, i in enumerate(chunk):
                last = len(seqs[row]) - 1
                # A step that ends past the model's context gets the score of the last one that fits.
                ends = [min(e, last) for e in encoded[i].ends]
                out[i] = [min(max(float(scores[row, e]), 0.0), 1.0) for e in ends]
        if was_training:
            self.model.train()
        return out

    def score(self, prompts: Sequence[str], solutions: Sequence[str], batch_size: int = 64) -> list[list[float]]:
        """Per-step scores of each solution (``[]`` for a solution without steps)."""
        return self.score_steps(prompts, [split_steps(s) for s in solutions], batch_size)

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

    def __init__(self, model, tokenizer, all_tokens: bool = False):
        self.model, self.tokenizer = model, tokenizer
        self.max_length = _max_length(model.config)
        self.counted_vocab = None if all_tokens else result_token_mask(tokenizer)

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device | None = None, all_tokens: bool = False) -> "PolicyConfidenceScorer":
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(path))
        model = AutoModelForCausalLM.from_pretrained(str(path)).to(device or "cpu")
        return cls(model, tok, all_tokens)

    def _position_scores(self, input_ids, attention_mask, prompt_lens):
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits
        probs = next_token_probs(logits, input_ids)
        pos = torch.arange(input_ids.shape[1], device=input_ids.device)[None, :]
        counted = (pos >= prompt_lens[:, None]) & attention_mask.bool()
        if self.counted_vocab is not None:
            counted &= self.counted_vocab.to(input_ids.device)[input_ids]
        return running_min_confidence(probs, counted)


# ----------------------------------------------------------------------------------- learned PRM


CONFIDENCE_FLOOR = -20.0
"""Log-probabilities below this are clipped (features stay in a range a linear head can use)."""
FEATURES = ("hidden", "confidence", "step_confidence")
"""What the learned PRM's head may read at a step end:

- ``hidden``: the backbone's last hidden state ``(H,)``;
- ``confidence``: log of the lowest probability of any result token of steps ``0..k`` (the
  :class:`PolicyConfidenceScorer` score, in log space);
- ``step_confidence``: the same, over the result tokens of step ``k`` alone.
"""


def token_logprobs(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """``(B, T)``: ``log p(x_t | x_<t)`` from causal-LM ``logits`` ``(B, T, V)``; position 0 gets 0."""
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    tok = logp.gather(-1, input_ids[:, 1:, None]).squeeze(-1)
    return torch.cat([torch.zeros_like(tok[:, :1]), tok], dim=1)


def confidence_features(logp: torch.Tensor, counted: torch.Tensor, is_sep: torch.Tensor) -> torch.Tensor:
    """``(B, T, 2)``: running min and current-step min of ``logp`` over ``counted`` positions.

    ``logp`` ``(B, T)`` (<= 0), ``counted`` ``(B, T)`` bool (result tokens of the solution),
    ``is_sep`` ``(B, T)`` bool (the last token of each step separator, solution only). Both
    features are 0 where nothing was counted yet, and clipped at :data:`CONFIDENCE_FLOOR`.
    The step min groups a step's tokens with the separator that ends it and is exact at that
    separator (where it is read); elsewhere it may see later tokens of the same step.
    """
    x = torch.where(counted, logp.clamp(min=CONFIDENCE_FLOOR), torch.zeros_like(logp))
    running = torch.cummin(x, dim=1).values
    seg = (torch.cumsum(is_sep.long(), dim=1) - is_sep.long()).clamp(max=x.shape[1] - 1)
    seg_min = torch.zeros_like(x).scatter_reduce(1, seg, x, reduce="amin", include_self=True)
    return torch.stack([running, seg_min.gather(1, seg)], dim=-1)


class PRMModel(torch.nn.Module):
    """A causal-LM backbone and a head that reads each position's features (a value head).

    ``forward`` returns ``{"logits": (B, T)}`` (one logit per position: "is the solution still
    right up to here"), and ``"loss"`` when ``labels`` ``(B, T)`` float targets in [0, 1] are
    given: BCE with logits at positions whose label is not ``-100``, soft targets as they are.
    The head sees ``features`` (see :data:`FEATURES`); ``head_hidden == 0`` is a linear head.
    """

    def __init__(self, backbone, tokenizer, features: Sequence[str] = ("hidden", "confidence"), head_hidden: int = 0, sep: str = STEP_SEPARATOR, factored: bool = False):
        super().__init__()
        unknown = set(features) - set(FEATURES)
        if unknown or not features:
            raise ValueError(f"features must be a non-empty subset of {FEATURES}, got {list(features)}")
        self.backbone = backbone
        self.features = tuple(f for f in FEATURES if f in features)
        self.head_hidden = head_hidden
        self.sep = sep
        self.factored = factored
        hidden_size = backbone.config.get_text_config().hidden_size
        n_in = hidden_size if "hidden" in self.features else 0
        n_in += sum(f != "hidden" for f in self.features)
        if head_hidden:
            self.head = torch.nn.Sequential(torch.nn.Linear(n_in, head_hidden), torch.nn.GELU(), torch.nn.Linear(head_hidden, 1))
        else:
            self.head = torch.nn.Linear(n_in, 1)
            torch.nn.init.zeros_(self.head.weight)
            torch.nn.init.zeros_(self.head.bias)
        self.progress_head = torch.nn.Linear(hidden_size, 1) if factored else None
        if factored:
            torch.nn.init.zeros_(self.progress_head.weight)
            torch.nn.init.zeros_(self.progress_head.bias)
        sep_ids = tokenizer(sep, add_special_tokens=False)["input_ids"]
        if not sep_ids:
            raise ValueError(f"step separator {sep!r} encodes to no token")
        self.sep_id = sep_ids[-1]
        self.register_buffer("counted_vocab", result_token_mask(tokenizer), persistent=False)

    @property
    def config(self):  # what Trainer and callers look for on a model
        return self.backbone.config

    def head_config(self) -> dict:
        return {"features": list(self.features), "head_hidden": self.head_hidden, "sep": self.sep, "factored": self.factored}

    def head_parameters(self) -> list[torch.nn.Parameter]:
        """Everything but the backbone (what a fresh head trains at its own learning rate)."""
        return [p for n, p in self.named_parameters() if not n.startswith("backbone.")]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, prompt_lens: torch.Tensor | None = None, labels: torch.Tensor | None = None) -> dict:
        """``input_ids``/``attention_mask`` ``(B, T)`` right-padded, ``prompt_lens`` ``(B,)``
        (prompt tokens are not the solution's; ``None``: no prompt), ``labels`` ``(B, T)``."""
        need_hidden = "hidden" in self.features or self.factored
        out = self.backbone(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=need_hidden)
        feats = []
        hidden = out.hidden_states[-1].float() if need_hidden else None
        if "hidden" in self.features:
            feats.append(hidden)
        if any(f != "hidden" for f in self.features):
            pos = torch.arange(input_ids.shape[1], device=input_ids.device)[None, :]
            plens = prompt_lens if prompt_lens is not None else torch.zeros(len(input_ids), dtype=torch.long, device=input_ids.device)
            solution = (pos >= plens[:, None]) & attention_mask.bool()
            counted = solution & self.counted_vocab[input_ids]
            conf = confidence_features(token_logprobs(out.logits, input_ids), counted, solution & (input_ids == self.sep_id))
            if "confidence" in self.features:
                feats.append(conf[..., :1])
            if "step_confidence" in self.features:
                feats.append(conf[..., 1:])
        logits = self.head(torch.cat(feats, dim=-1)).squeeze(-1)
        result = {"logits": logits}
        if self.factored:
            result["progress_logits"] = self.progress_head(hidden).squeeze(-1)
        if labels is not None:
            keep = labels != -100
            y = labels[keep].to(logits.dtype)
            if self.factored:
                result["loss"] = factored_bce(logits[keep], result["progress_logits"][keep], y)
            else:
                result["loss"] = torch.nn.functional.binary_cross_entropy_with_logits(logits[keep], y)
        return result

    def save(self, path: str | Path, tokenizer, threshold: float = 0.5, extra: dict | None = None) -> None:
        """Write the backbone (``save_pretrained``: ``config.json`` + weights), the tokenizer,
        the head (``prm_head.safetensors``) and :data:`PRM_CONFIG` into directory ``path``."""
        from safetensors.torch import save_file

        path = Path(path)
        self.backbone.save_pretrained(path)
        tokenizer.save_pretrained(path)
        head = {n: p.detach().float().cpu().contiguous() for n, p in self.named_parameters() if not n.startswith("backbone.")}
        save_file(head, str(path / HEAD_WEIGHTS))
        cfg = {"kind": "learned", "threshold": float(threshold), **self.head_config(), **(extra or {})}
        (path / PRM_CONFIG).write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> tuple["PRMModel", object, dict]:
        """Inverse of :meth:`save`: ``(model, tokenizer, prm_config)``, in eval mode on ``device``."""
        from safetensors.torch import load_file
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(path)
        cfg = read_prm_config(path)
        if cfg.get("kind") != "learned":
            raise ValueError(f"{path / PRM_CONFIG}: kind {cfg.get('kind')!r} is not a learned PRM (use load_scorer)")
        device = torch.device(device or "cpu")
        tok = AutoTokenizer.from_pretrained(str(path))
        backbone = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype or _default_dtype(device))
        model = cls(backbone, tok, cfg["features"], cfg.get("head_hidden", 0), cfg.get("sep", STEP_SEPARATOR), cfg.get("factored", False))
        weights = load_file(str(path / HEAD_WEIGHTS))
        model.load_state_dict(weights, strict=False)
        missing = {n for n, _ in model.named_parameters() if not n.startswith("backbone.")} - set(weights)
        if missing:
            raise ValueError(f"{path / HEAD_WEIGHTS}: missing {sorted(missing)}")
        return model.to(device).eval(), tok, cfg


HEAD_WEIGHTS = "prm_head.safetensors"


def factored_bce(correct_logits: torch.Tensor, progress_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """BCE of ``p = sigmoid(correct) * sigmoid(progress)`` against ``targets`` in [0, 1], stably.

    The factored value head: a Monte-Carlo label estimates "the policy reaches the answer from
    here" = "the prefix is right" x "the policy finishes from a right prefix". A weak policy's
    label of a right prefix is low on a long chain; the progress factor (from hidden states)
    absorbs that, so the correctness factor, which the scorer returns, is not pulled down by
    chain length. All shapes ``(N,)``.
    """
    logp = torch.nn.functional.logsigmoid(correct_logits) + torch.nn.functional.logsigmoid(progress_logits)
    log1mp = torch.log(-torch.expm1(logp.clamp(max=-1e-6)))
    return -(targets * logp + (1 - targets) * log1mp).mean()


def _default_dtype(device: torch.device) -> torch.dtype:
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def read_prm_config(path: str | Path) -> dict:
    f = Path(path) / PRM_CONFIG
    if not f.exists():
        raise FileNotFoundError(f"{f}: not found (not a PRM directory written by tasks/train_prm.py)")
    return json.loads(f.read_text())


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

    def __init__(self, model: PRMModel, tokenizer, threshold: float = 0.5, calibrated: bool = False):
        self.model, self.tokenizer = model, tokenizer
        self.max_length = _max_length(model.backbone.config)
        self.threshold, self.calibrated = float(threshold), calibrated

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> "PRMScorer":
        model, tok, cfg = PRMModel.load(path, device, dtype)
        return cls(model, tok, cfg.get("threshold", 0.5), cfg.get("calibrated", False))

    def _position_scores(self, input_ids, attention_mask, prompt_lens):
        p = torch.sigmoid(self.model(input_ids, attention_mask, prompt_lens)["logits"].float())
        return calibrate(p, self.threshold) if self.calibrated and self.threshold != 0.5 else p


def load_scorer(path: str | Path, device: str | torch.device | None = None) -> StepScorer:
    """The scorer a directory holds: a learned PRM (``prm_config.json`` kind ``learned``), or
    policy confidence (kind ``policy_confidence``, or a plain causal-LM directory without
    ``prm_config.json``)."""
    path = Path(path)
    kind = read_prm_config(path).get("kind") if (path / PRM_CONFIG).exists() else "policy_confidence"
    if kind == "learned":
        return PRMScorer.from_pretrained(path, device)
    if kind == "policy_confidence":
        return PolicyConfidenceScorer.from_pretrained(path, device)
    raise ValueError(f"{path / PRM_CONFIG}: unknown scorer kind {kind!r}")
