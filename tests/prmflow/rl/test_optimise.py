"""An update run as micro-batches computes the whole batch's loss and gradient, whether each row
runs whole or each prompt runs once for its rows (``rl.shared_prompt``)."""

import pytest
import torch

from prmflow.config import ModelConfig, Params, TinyModelConfig
from prmflow.lm.models import build_tiny_model, build_tokenizer
from prmflow.rl.batch import build_batch
from prmflow.rl.trainer import optimise


def grads_and_stats(micro: int | None, agg: str, kl: float, shared: bool = True):
    tok = build_tokenizer()
    cfg = ModelConfig(tiny=TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64))
    model, ref = build_tiny_model(tok, cfg, seed=0), build_tiny_model(tok, cfg, seed=1).eval()
    gen = torch.Generator().manual_seed(0)
    lengths = [3, 9, 1, 6, 12, 4, 7]  # completions of very different lengths
    prompts = [[5, 6, 7], [8, 9], [5, 6, 7, 11, 12]] * 2 + [[8, 9]]  # 3 prompts, rows interleaved
    completions = [torch.randint(10, 100, (n,), generator=gen).tolist() for n in lengths]
    adv = [torch.randn(n, generator=gen) for n in lengths]
    batch = build_batch(prompts, completions, adv, tok.pad_token_id)
    rl = Params.model_validate(
        {
            "rl": {
                "micro_batch_size": micro,
                "loss_agg": agg,
                "kl_coef": kl,
                "cpu_bf16": False,
                "max_grad_norm": 1e9,
                "max_new_tokens": 16,
                "shared_prompt": shared,
            }
        }
    ).rl
    stats = optimise(model, torch.optim.SGD(model.parameters(), lr=0.0), ref if kl else None, batch, rl, 0, "nowhere")
    return torch.cat([p.grad.flatten() for p in model.parameters()]), stats


@pytest.mark.parametrize("agg,kl", [("token_mean", 0.0), ("token_mean", 0.1), ("seq_mean_token_mean", 0.0), ("dr_grpo", 0.0)])
def test_micro_batches_add_up_to_the_whole_batch(agg, kl):
    torch.set_num_threads(1)
    whole, s_whole = grads_and_stats(None, agg, kl)
    micro, s_micro = grads_and_stats(2, agg, kl)
    torch.testing.assert_close(micro, whole, atol=1e-6, rtol=1e-4)
    assert set(s_micro) == set(s_whole)
    for key in s_whole:
        assert s_micro[key] == pytest.approx(s_whole[key], rel=1e-4, abs=1e-7), key


@pytest.mark.parametrize("micro", [None, 2, 3])
@pytest.mark.parametrize("kl", [0.0, 0.1])
def test_shared_prompt_update_equals_rows_run_whole(micro, kl):
    """Each prompt once for all its rows: the same gradient and stats as every row run whole
    (the reference and the policy both through it when the KL term is on)."""
    torch.set_num_threads(1)
    whole, s_whole = grads_and_stats(None, "token_mean", kl, shared=False)
    shared, s_shared = grads_and_stats(micro, "token_mean", kl, shared=True)
    torch.testing.assert_close(shared, whole, atol=1e-6, rtol=1e-4)
    for key in s_whole:
        assert s_shared[key] == pytest.approx(s_whole[key], rel=1e-4, abs=1e-7), key
