import pytest
import torch


@pytest.fixture
def qwen2(tok):
    """A random tiny Qwen2 (q/k/v biases, grouped-query attention: 4 heads on 2 K/V heads, SDPA)
    with the test module's tokenizer ``tok``."""
    from transformers import AutoModelForCausalLM, Qwen2Config

    config = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        max_position_embeddings=192,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config).eval()
