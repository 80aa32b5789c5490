"""Where reasoning steps end in a completion's tokens.

Steps are what :func:`reward.parse.step_spans` finds in the completion's text (one per line by
default; ``data.step_split``), so that RL credits the steps the PRM scored and the label stage
labelled. RL needs them in token positions, to give each step's tokens its step credit.
"""

from __future__ import annotations

from bisect import bisect_right
from itertools import accumulate

from reward.parse import step_spans


def step_end_positions(token_pieces: list[str], mode: str = "line", finished: bool = False) -> list[int]:
    r"""Exclusive end index (in tokens) of each reasoning step of a completion.

    ``token_pieces`` are the decoded text of each completion token (special tokens such as EOS
    decoded as ``""``). A step ends after the token that holds its last character and any
    following tokens that are all boundary (its newline, for lines; a sentence's space usually
    starts the next word's token, which is the next step's); the final answer line (``####``)
    and anything after it are not steps, matching :func:`reward.parse.split_steps`. A last step
    with no boundary after it has an end only when the completion ``finished`` (ended with EOS):
    the last token. One cut at the token budget has none (the caller counts it).

    >>> step_end_positions(["b=1", "\n", "c=2", "\n", "####", " 2"])
    [2, 4]
    >>> step_end_positions(["Half", " is 24.", " So", " 72.", ""], "sentence", finished=True)
    [2, 5]
    """
    text = "".join(token_pieces)
    starts = [0, *accumulate(len(p) for p in token_pieces)]  # char offset where each token starts
    ends = []
    for _, end, close in step_spans(text, mode, finished):
        if close == len(text) and end == close:  # closed by the end of a finished completion
            ends.append(len(token_pieces))
            continue
        k = bisect_right(starts, end - 1)  # one past the token holding the step's last character
        while k < len(token_pieces) and starts[k + 1] <= close:  # tokens that are all boundary
            k += 1
        ends.append(k)
    return ends
