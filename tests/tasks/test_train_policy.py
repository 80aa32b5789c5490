import torch

from reward.parse import split_steps
from tasks.train_policy import build_batch, step_end_positions


def test_step_end_positions_match_split_steps():
    pieces = ["b", "=", "7", "*", "3", "=", "21", "\n", "c", "=", "17", "\n", "####", " ", "17", "</s>"]
    assert step_end_positions(pieces) == [8, 12]
    assert len(step_end_positions(pieces)) == len(split_steps("".join(pieces[:-1])))


def test_step_end_positions_multi_newline_tokens_and_blank_lines():
    # a BPE-style tokenizer may put ".\n\n" in one token; blank lines are not steps
    pieces = ["x = 1.\n\n", "y", " = 2\n", "\n", "#### 2\n", "z\n"]
    assert step_end_positions(pieces) == [1, 3]
    assert step_end_positions(["no newline at all"]) == []


def test_build_batch_masks_completion_tokens_only():
    ids, attn, cmask, adv = build_batch([[5, 6], [7]], [[1, 2, 3], [4]], [torch.tensor([1.0, 2.0, 3.0]), torch.tensor([-1.0])], pad_id=0)
    assert ids.tolist() == [[5, 6, 1, 2, 3], [7, 4, 0, 0, 0]]
    assert attn.tolist() == [[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]]
    assert cmask.tolist() == [[0, 0, 1, 1, 1], [0, 1, 0, 0, 0]]
    assert adv.tolist() == [[0, 0, 1, 2, 3], [0, -1, 0, 0, 0]]
