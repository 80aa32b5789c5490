"""How a solution is presented to a step scorer: the one encoding training and scoring share.

A solution is split into steps with :func:`reward.parse.split_steps` (its final-answer line is not
a step) and encoded as ``prompt + step_0 + SEP + step_1 + SEP + ...``, where ``SEP`` is the
step split's joiner (:data:`reward.parse.STEP_JOINERS`: the newline that ends a line step, a
blank line after a paragraph, a newline after a sentence). The score of step ``k`` is read at the last
token of its separator (:func:`encode_steps` returns those positions), so what a PRM learned to
read is what it reads when scoring.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from prmflow.lm.prompts import adds_special_tokens

STEP_SEPARATOR = "\n"


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
    the tokenizer's special tokens, as in :func:`prmflow.lm.sampling.sample`.
    """
    ids = list(tokenizer(prompt, add_special_tokens=adds_special_tokens(tokenizer, [prompt]))["input_ids"])
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
