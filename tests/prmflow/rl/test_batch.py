import torch

from prmflow.rl.batch import build_batch


def test_build_batch_masks_completion_tokens_only():
    b = build_batch([[5, 6], [7]], [[1, 2, 3], [4]], [torch.tensor([1.0, 2.0, 3.0]), torch.tensor([-1.0])], pad_id=0)
    ids, attn, cmask, adv = b.input_ids, b.attention_mask, b.completion_mask, b.advantages
    assert ids.tolist() == [[5, 6, 1, 2, 3], [7, 4, 0, 0, 0]]
    assert attn.tolist() == [[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]]
    assert cmask.tolist() == [[0, 0, 1, 1, 1], [0, 1, 0, 0, 0]]
    assert adv.tolist() == [[0, 0, 1, 2, 3], [0, -1, 0, 0, 0]]
