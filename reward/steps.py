"""Where reasoning steps end in a completion's tokens.

The solution format has one step per line and a final answer line (``#### <answer>``) that is
not a step (:func:`reward.parse.split_steps`). RL needs the same steps in token positions, to
give each step's tokens its step credit.
"""

from __future__ import annotations

from reward.parse import FINAL_MARKER


def step_end_positions(token_pieces: list[str]) -> list[int]:
    """Exclusive end index (in tokens) of each reasoning step of a completion.

    ``token_pieces`` are the decoded text of each completion token. A step ends at the token
    whose text closes a non-empty line; the final answer line (``####``) and anything after it
    are not steps, matching :func:`reward.parse.split_steps`. A last step with no newline yet
    (cut at the token budget) has no end.

    >>> step_end_positions(["b=1", "\\n", "c=2", "\\n", "####", " 2"])
    [2, 4]
    """
    ends, line = [], ""
    for i, piece in enumerate(token_pieces):
        parts = piece.split("\n")
        line += parts[0]
        for nxt in parts[1:]:
            text = line.strip()
            if text.startswith(FINAL_MARKER):
                return ends
            if text:
                ends.append(i + 1)
            line = nxt
    return ends
