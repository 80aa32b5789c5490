"""CPU training speed settings: the attention kernel is swapped and restored; bf16 autocast
computes the same update direction as fp32 and leaves weights and gradients in fp32."""

import pytest
import torch


@pytest.fixture()
def tiny():
    from prmflow.config import ModelConfig
    from prmflow.lm.models import build_tiny_model, build_tokenizer

    torch.set_num_threads(1)
    tok = build_tokenizer(100)
    return build_tiny_model(tok, ModelConfig(), seed=0), tok


def test_the_attention_kernel_is_swapped_inside_and_restored_after_an_error(tiny):
    from prmflow.lm.precision import attention

    model, _ = tiny
    own = model.config._attn_implementation
    other = "eager" if own != "eager" else "sdpa"
    with pytest.raises(RuntimeError, match="boom"):
        with attention(model, other):
            assert model.config._attn_implementation == other
            raise RuntimeError("boom")
    assert model.config._attn_implementation == own
    with attention(model, None):
        assert model.config._attn_implementation == own


def test_bf16_autocast_gives_the_fp32_gradient_direction_in_fp32_tensors(tiny):
    from prmflow.lm.logprobs import sequence_logprobs
    from prmflow.lm.precision import cpu_autocast

    model, tok = tiny
    enc = tok(["a=7;b=a*3;b=?\nb=7*3=21\n#### 21", "a=2;a=?\n#### 2"], return_tensors="pt", padding=True)

    def grad(bf16: bool) -> torch.Tensor:
        model.zero_grad(set_to_none=True)
        with cpu_autocast(model, bf16):
            logp, _ = sequence_logprobs(model, enc["input_ids"], enc["attention_mask"])
        assert logp.dtype == torch.float32
        (-(logp * enc["attention_mask"]).sum()).backward()
        return torch.cat([p.grad.flatten() for p in model.parameters()])

    fp32, bf16 = grad(False), grad(True)
    assert bf16.dtype == torch.float32 and all(p.dtype == torch.float32 for p in model.parameters())
    assert not torch.equal(fp32, bf16)  # autocast really ran the matmuls in bf16
    assert torch.nn.functional.cosine_similarity(fp32, bf16, dim=0) > 0.99


def test_auto_bf16_follows_the_cpu_and_a_bool_is_taken_as_given(tiny, monkeypatch):
    from prmflow.lm import precision

    model, _ = tiny
    for native in (False, True):
        monkeypatch.setattr(precision, "native_cpu_bf16", lambda native=native: native)
        assert precision.use_cpu_bf16("auto") is native
        assert precision.use_cpu_bf16(True) is True and precision.use_cpu_bf16(False) is False
        with precision.cpu_autocast(model, "auto"):
            assert torch.is_autocast_enabled("cpu") is native


def test_native_bf16_is_what_torch_reports_for_this_cpu():
    from prmflow.lm.precision import native_cpu_bf16

    assert native_cpu_bf16() == (torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


@pytest.mark.parametrize("value, expected", [("auto", "auto"), (True, True), (False, False)])
def test_cpu_bf16_accepts_auto_or_a_bool_and_nothing_else(value, expected):
    from pydantic import ValidationError

    from prmflow.config import RLConfig, WarmstartConfig

    for section in (WarmstartConfig, RLConfig):
        assert section(cpu_bf16=value).cpu_bf16 == expected
        for bad in ("sometimes", "false"):  # strict, as every section: YAML types its values
            with pytest.raises(ValidationError, match="cpu_bf16"):
                section(cpu_bf16=bad)
