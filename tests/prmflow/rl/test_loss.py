import math

import pytest
import torch

from prmflow.lm.logprobs import entropy_from_logits, token_logprobs
from prmflow.rl.loss import clipped_policy_loss, kl_k3, masked_mean


def test_token_logprobs_and_entropy():
    # row [0, ln 3] -> softmax [1/4, 3/4]; uniform row [0, 0] -> [1/2, 1/2]
    logits = torch.tensor([[[0.0, math.log(3.0)], [0.0, 0.0]]], dtype=torch.float16)
    lp = token_logprobs(logits, torch.tensor([[1, 0]]))
    assert lp.dtype == torch.float32
    assert lp.tolist()[0] == pytest.approx([math.log(0.75), math.log(0.5)], abs=1e-3)
    # H([1/4, 3/4]) = -(0.25 ln 0.25 + 0.75 ln 0.75) = 0.562335; H(uniform 2) = ln 2
    assert entropy_from_logits(logits).tolist()[0] == pytest.approx([0.562335, math.log(2)], abs=1e-3)


def test_masked_mean():
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    m = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    assert float(masked_mean(x, m)) == pytest.approx(1.5)  # (1 + 2) / 2
    assert masked_mean(x, m, dim=-1).tolist() == pytest.approx([1.5, 0.0])  # empty row: 0 / clamp(0, 1)


def test_kl_k3():
    a = torch.tensor([[-1.0, -2.0]])
    assert kl_k3(a, a).tolist() == [[0.0, 0.0]]
    # d = ref - logp = ln 2: exp(d) - d - 1 = 2 - 0.693147 - 1 = 0.306853
    out = kl_k3(torch.tensor([[0.0]]), torch.tensor([[math.log(2.0)]]))
    assert float(out) == pytest.approx(1 - math.log(2.0), abs=1e-6)


def test_clipped_loss_one_clipped_token_and_gradients():
    # ratios [1, 1.5, 0.5], adv [1, 1, 1], eps_low 0.2, eps_high 0.28:
    #   t0: min(1, 1) = 1                      -> loss -1,    grad -ratio*adv/3 = -1/3
    #   t1: min(1.5, clip 1.28) = 1.28 clipped -> loss -1.28, grad 0
    #   t2: min(0.5, clip 0.8) = 0.5 (clip does not change the loss) -> -0.5, grad -0.5/3
    # token_mean = -(1 + 1.28 + 0.5) / 3 = -0.926667; clip_frac 1/3; ratio_mean (1+1.5+0.5)/3 = 1
    old = torch.zeros(1, 3)
    logp = torch.tensor([[0.0, math.log(1.5), math.log(0.5)]], requires_grad=True)
    loss, stats = clipped_policy_loss(logp, old, torch.ones(1, 3), torch.ones(1, 3), 0.2, 0.28)
    assert float(loss.detach()) == pytest.approx(-2.78 / 3, abs=1e-6)
    assert stats["clip_frac"] == pytest.approx(1 / 3)
    assert stats["ratio_mean"] == pytest.approx(1.0, abs=1e-6)
    loss.backward()
    assert logp.grad.tolist()[0] == pytest.approx([-1 / 3, 0.0, -0.5 / 3], abs=1e-6)


def test_clipped_loss_negative_advantage_clips_low():
    # ratio 0.5, adv -1: min(-0.5, clip 0.8 * -1 = -0.8) = -0.8 -> loss 0.8, clipped
    # ratio 1.5, adv -1: min(-1.5, -1.28) = -1.5 -> loss 1.5, not clipped; masked out anyway
    logp = torch.tensor([[math.log(0.5), math.log(1.5)]])
    loss, stats = clipped_policy_loss(logp, torch.zeros(1, 2), -torch.ones(1, 2), torch.tensor([[1.0, 0.0]]), 0.2, 0.28)
    assert float(loss) == pytest.approx(0.8, abs=1e-6)
    assert stats["clip_frac"] == 1.0
    assert stats["ratio_mean"] == pytest.approx(0.5)


def test_loss_aggregations():
    # ratio 1 everywhere, adv = -L so the token losses are L = [[1,2,3],[4,5,6]]
    # mask [[1,1,0],[1,1,1]]
    #   token_mean: (1+2+4+5+6)/5 = 3.6
    #   seq_mean_token_mean: ((1+2)/2 + (4+5+6)/3)/2 = (1.5 + 5)/2 = 3.25
    #   dr_grpo, max_len 4: ((1+2)/4 + 15/4)/2 = (0.75 + 3.75)/2 = 2.25
    L = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    m = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    z = torch.zeros(2, 3)
    expected = {"token_mean": 3.6, "seq_mean_token_mean": 3.25, "dr_grpo": 2.25}
    for agg, want in expected.items():
        loss, stats = clipped_policy_loss(z, z, -L, m, 0.2, 0.28, agg=agg, max_len=4)
        assert float(loss) == pytest.approx(want), agg
        assert stats["clip_frac"] == 0.0


def test_seq_mean_skips_rows_without_completion_tokens():
    # row 2 has no masked tokens: the mean is over row 1 only -> (1+2)/2 = 1.5
    L = torch.tensor([[1.0, 2.0], [9.0, 9.0]])
    z = torch.zeros(2, 2)
    loss, _ = clipped_policy_loss(z, z, -L, torch.tensor([[1.0, 1.0], [0.0, 0.0]]), 0.2, 0.2, agg="seq_mean_token_mean")
    assert float(loss) == pytest.approx(1.5)


def test_bad_aggregation_arguments():
    z = torch.zeros(1, 2)
    with pytest.raises(ValueError):
        clipped_policy_loss(z, z, z, z, 0.2, 0.2, agg="dr_grpo")
    with pytest.raises(ValueError):
        clipped_policy_loss(z, z, z, z, 0.2, 0.2, agg="sum")
