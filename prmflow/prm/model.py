"""The learned PRM: a causal-LM backbone and a head that scores each step end.

``forward`` gives one logit per position ("is the solution still right up to here"); the head
reads the features in :data:`FEATURES`. ``save``/``load`` write and read a PRM directory: the
backbone and tokenizer (``save_pretrained``), the head (``prm_head.safetensors``) and
``prm_config.json`` (kind, features, threshold). A frozen backbone read from a model folder is
not copied: ``prm_config.json`` references it (``backbone``: its path, relative to the PRM
folder and absolute, and its content digest), and loading checks the digest, so that a PRM of a
7B policy costs megabytes, not another 15 GB.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch

from prmflow.lm.folders import model_digest
from prmflow.lm.logprobs import aligned_logprobs
from prmflow.lm.models import load_tokenizer, resolve_dtype
from prmflow.prm.encoding import STEP_SEPARATOR, result_token_mask

PRM_CONFIG = "prm_config.json"
"""Written next to the weights: which scorer kind, and how it encodes steps."""
HEAD_WEIGHTS = "prm_head.safetensors"

CONFIDENCE_FLOOR = -20.0
"""Log-probabilities below this are clipped (features stay in a range a linear head can use)."""
FEATURES = ("hidden", "confidence", "step_confidence")
"""What the learned PRM's head may read at a step end:

- ``hidden``: the backbone's last hidden state ``(H,)``;
- ``confidence``: log of the lowest probability of any result token of steps ``0..k`` (the
  :class:`PolicyConfidenceScorer` score, in log space);
- ``step_confidence``: the same, over the result tokens of step ``k`` alone.
"""


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

    accepts_loss_kwargs = True
    """The ``Trainer`` passes ``num_items_in_batch`` (step ends over all ranks under ``torchrun``)."""

    def __init__(
        self,
        backbone,
        tokenizer,
        features: Sequence[str] = ("hidden", "confidence"),
        head_hidden: int = 0,
        sep: str = STEP_SEPARATOR,
        factored: bool = False,
    ):
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
        self._cache: dict[tuple[int, ...], tuple[torch.Tensor, torch.Tensor | None]] | None = None  # see cached_backbone

    @property
    def config(self):  # what Trainer and callers look for on a model
        return self.backbone.config

    def head_config(self) -> dict:
        return {"features": list(self.features), "head_hidden": self.head_hidden, "sep": self.sep, "factored": self.factored}

    def head_parameters(self) -> list[torch.nn.Parameter]:
        """Everything but the backbone (what a fresh head trains at its own learning rate)."""
        return [p for n, p in self.named_parameters() if not n.startswith("backbone.")]

    @contextlib.contextmanager
    def cached_backbone(self) -> Iterator[None]:
        """Within the block the frozen backbone runs once per distinct solution: its outputs are
        kept per row (right padding: a row's outputs do not depend on the batch) and reused
        when the row comes back, so training the head for many epochs costs one backbone pass
        per record. Only valid while the backbone is not trained."""
        if any(p.requires_grad for p in self.backbone.parameters()):
            raise ValueError("cached_backbone: the backbone is trained, its outputs change every step")
        self._cache = {}
        try:
            yield
        finally:
            self._cache = None

    def _run_backbone(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, need_hidden: bool):
        out = self.backbone(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=need_hidden)
        return aligned_logprobs(out.logits, input_ids), out.hidden_states[-1].float() if need_hidden else None

    def _backbone_outputs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, need_hidden: bool):
        """``(logp (B, T), hidden (B, T, H) or None)``: the backbone's log-prob of each token
        (:func:`aligned_logprobs`) and last hidden state, from :meth:`cached_backbone`'s cache
        where it holds the row."""
        if self._cache is None:
            return self._run_backbone(input_ids, attention_mask, need_hidden)
        lengths = attention_mask.sum(dim=1).tolist()
        keys = [tuple(input_ids[b, :n].tolist()) for b, n in enumerate(lengths)]
        missing = [b for b, k in enumerate(keys) if k not in self._cache]
        if missing:
            width = max(lengths[b] for b in missing)
            with torch.no_grad():
                logp, hidden = self._run_backbone(input_ids[missing, :width], attention_mask[missing, :width], need_hidden)
            for i, b in enumerate(missing):
                n = lengths[b]
                self._cache[keys[b]] = (logp[i, :n], hidden[i, :n] if hidden is not None else None)
        logp = input_ids.new_zeros(input_ids.shape, dtype=torch.float32)
        hidden = None
        for b, k in enumerate(keys):
            row_logp, row_hidden = self._cache[k]
            logp[b, : len(row_logp)] = row_logp
            if need_hidden:
                if hidden is None:
                    hidden = row_logp.new_zeros((*input_ids.shape, row_hidden.shape[-1]))
                hidden[b, : len(row_hidden)] = row_hidden
        return logp, hidden

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        prompt_lens: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> dict:
        """``input_ids``/``attention_mask`` ``(B, T)`` right-padded, ``prompt_lens`` ``(B,)``
        (prompt tokens are not the solution's; ``None``: no prompt), ``labels`` ``(B, T)``.
        The loss is the mean over labelled positions, or their sum over ``num_items_in_batch``
        (the ``Trainer``'s count over the global batch, so that DDP's gradient average is the
        global batch's)."""
        need_hidden = "hidden" in self.features or self.factored
        logp, hidden = self._backbone_outputs(input_ids, attention_mask, need_hidden)
        feats = []
        if "hidden" in self.features:
            feats.append(hidden)
        if any(f != "hidden" for f in self.features):
            pos = torch.arange(input_ids.shape[1], device=input_ids.device)[None, :]
            plens = prompt_lens if prompt_lens is not None else torch.zeros(len(input_ids), dtype=torch.long, device=input_ids.device)
            solution = (pos >= plens[:, None]) & attention_mask.bool()
            counted = solution & self.counted_vocab[input_ids]
            conf = confidence_features(logp, counted, solution & (input_ids == self.sep_id))
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
                loss = factored_bce(logits[keep], result["progress_logits"][keep], y, reduction="sum")
            else:
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logits[keep], y, reduction="sum")
            result["loss"] = loss / (num_items_in_batch if num_items_in_batch is not None else keep.sum().clamp(min=1))
        return result

    def save(self, path: str | Path, tokenizer, threshold: float = 0.5, extra: dict | None = None, backbone_ref: dict | None = None) -> None:
        """Write the backbone (``save_pretrained``: ``config.json`` + weights; with
        ``backbone_ref`` (:func:`backbone_reference`) its ``config.json`` only), the tokenizer,
        the head (``prm_head.safetensors``) and :data:`PRM_CONFIG` into directory ``path``."""
        from safetensors.torch import save_file

        path = Path(path)
        if backbone_ref is None:
            self.backbone.save_pretrained(path)
        else:  # the folder still reads as a model (config.json), its weights stay where they are
            self.backbone.config.save_pretrained(path)
        tokenizer.save_pretrained(path)
        head = {n: p.detach().float().cpu().contiguous() for n, p in self.named_parameters() if not n.startswith("backbone.")}
        save_file(head, str(path / HEAD_WEIGHTS))
        cfg = {"kind": "learned", "threshold": float(threshold), **self.head_config(), **(extra or {})}
        if backbone_ref is not None:
            cfg["backbone"] = backbone_ref
        (path / PRM_CONFIG).write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(
        cls, path: str | Path, device: str | torch.device | None = None, dtype: torch.dtype | None = None
    ) -> tuple[PRMModel, object, dict]:
        """Inverse of :meth:`save`: ``(model, tokenizer, prm_config)``, in eval mode on ``device``."""
        from safetensors.torch import load_file
        from transformers import AutoModelForCausalLM

        path = Path(path)
        cfg = read_prm_config(path)
        if cfg.get("kind") != "learned":
            raise ValueError(f"{path / PRM_CONFIG}: kind {cfg.get('kind')!r} is not a learned PRM (use load_scorer)")
        device = torch.device(device or "cpu")
        tok = load_tokenizer(path)
        src = referenced_backbone(path, cfg["backbone"]) if "backbone" in cfg else path
        backbone = AutoModelForCausalLM.from_pretrained(str(src), dtype=dtype or resolve_dtype("auto", device))
        model = cls(backbone, tok, cfg["features"], cfg.get("head_hidden", 0), cfg.get("sep", STEP_SEPARATOR), cfg.get("factored", False))
        weights = load_file(str(path / HEAD_WEIGHTS))
        model.load_state_dict(weights, strict=False)
        missing = {n for n, _ in model.named_parameters() if not n.startswith("backbone.")} - set(weights)
        if missing:
            raise ValueError(f"{path / HEAD_WEIGHTS}: missing {sorted(missing)}")
        return model.to(device).eval(), tok, cfg


def backbone_reference(backbone_dir: str | Path, prm_dir: str | Path) -> dict:
    """How a PRM in ``prm_dir`` refers to the frozen backbone in ``backbone_dir``: the path
    relative to the PRM folder (a moved project keeps it) and absolute (an MLflow copy of the PRM
    folder on this machine finds it), and :func:`prmflow.lm.folders.model_digest`."""
    src = Path(backbone_dir).resolve()
    return {"path": os.path.relpath(src, Path(prm_dir).resolve()), "abs_path": str(src), "digest": model_digest(src)}


def referenced_backbone(prm_dir: str | Path, ref: dict) -> Path:
    """The folder a :func:`backbone_reference` points at, once its digest is checked: a backbone
    that changed since the PRM was trained would silently give other features than its head
    learned, so it fails, saying what to re-run."""
    where = [(Path(prm_dir) / ref["path"]).resolve(), Path(ref["abs_path"])]
    found = next((p for p in where if (p / "config.json").is_file()), None)
    if found is None:
        raise FileNotFoundError(f"{Path(prm_dir) / PRM_CONFIG}: its frozen backbone is not at {where[0]} nor {where[1]}")
    digest = model_digest(found)
    if digest != ref["digest"]:
        raise ValueError(
            f"{Path(prm_dir) / PRM_CONFIG}: the frozen backbone {found} changed since this PRM was trained "
            f"({ref['digest'][:19]} then, {digest[:19]} now): re-run train_prm"
        )
    return found


def factored_bce(correct_logits: torch.Tensor, progress_logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """BCE of ``p = sigmoid(correct) * sigmoid(progress)`` against ``targets`` in [0, 1], stably.

    The factored value head: a Monte-Carlo label estimates "the policy reaches the answer from
    here" = "the prefix is right" x "the policy finishes from a right prefix". A weak policy's
    label of a right prefix is low on a long chain; the progress factor (from hidden states)
    absorbs that, so the correctness factor, which the scorer returns, is not pulled down by
    chain length. All shapes ``(N,)``.
    """
    logp = torch.nn.functional.logsigmoid(correct_logits) + torch.nn.functional.logsigmoid(progress_logits)
    log1mp = torch.log(-torch.expm1(logp.clamp(max=-1e-6)))
    loss = -(targets * logp + (1 - targets) * log1mp)
    return loss.sum() if reduction == "sum" else loss.mean()


def read_prm_config(path: str | Path) -> dict:
    f = Path(path) / PRM_CONFIG
    if not f.exists():
        raise FileNotFoundError(f"{f}: not found (not a PRM directory written by tasks/train_prm.py)")
    return json.loads(f.read_text())
