"""The warm start's SFT: packing by hand, document masking, a few packed steps through the Trainer."""

from __future__ import annotations

import pytest

from prmflow.lm.sft import pack_rows


def test_pack_rows_first_fit():
    items = [([1, 2, 3], [-100, 2, 3]), ([4, 5], [-100, 5]), ([6, 7], [6, 7]), ([8], [8])]
    rows = pack_rows(items, 4)
    # [1,2,3] opens row A; [4,5] does not fit A: row B; [6,7] fits B; [8] fits A
    assert rows == [
        ([1, 2, 3, 8], [-100, 2, 3, 8], [0, 1, 2, 0]),
        ([4, 5, 6, 7], [-100, 5, 6, 7], [0, 1, 0, 1]),
    ]


def test_pack_rows_closes_the_fullest_row_when_too_many_are_open():
    items = [([1, 2, 3], [1, 2, 3]), ([4, 5], [4, 5]), ([6, 7, 8], [6, 7, 8])]
    # one open row at most: [4,5] closes A ([1,2,3], the fullest), [6,7,8] closes B
    rows = pack_rows(items, 4, open_rows=1)
    assert [r[0] for r in rows] == [[1, 2, 3], [4, 5], [6, 7, 8]]


def test_an_example_longer_than_a_row_is_a_row_by_itself():
    rows = pack_rows([([1], [1]), ([2, 3, 4], [2, 3, 4]), ([5], [5])], 2)
    assert rows == [([2, 3, 4], [2, 3, 4], [0, 1, 2]), ([1, 5], [1, 5], [0, 0])]


def test_collate_pads_each_row_to_the_batch_as_its_own_document():
    from prmflow.lm.sft import _collate_packed

    batch = _collate_packed(pad_id=9)([([1, 2, 3], [-100, 2, 3], [0, 1, 2]), ([4], [4], [0])])
    assert batch["input_ids"].tolist() == [[1, 2, 3], [4, 9, 9]]
    assert batch["labels"].tolist() == [[-100, 2, 3], [4, -100, -100]]
    assert batch["position_ids"].tolist() == [[0, 1, 2], [0, 0, 1]]  # the padding restarts: no one attends to it
    assert batch["use_cache"] is False and "attention_mask" not in batch


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_a_packed_row_computes_what_each_example_computes_alone(attn):
    # Document masking: with position ids restarting per example, no attention mask and no KV
    # cache, transformers attends within each example only, so the logits match its own.
    import torch

    from prmflow.config import ModelConfig
    from prmflow.lm.models import build_tiny_model, build_tokenizer
    from prmflow.lm.sft import _collate_packed

    torch.set_num_threads(1)
    tok = build_tokenizer(100)
    model = build_tiny_model(tok, ModelConfig(), seed=0).eval()
    model.set_attn_implementation(attn)
    a = tok("a=7;b=a*3;b=?\nb=7*3=21\n#### 21")["input_ids"]
    b = tok("a=2;a=?\n#### 2")["input_ids"]
    batch = _collate_packed(tok.pad_token_id)(pack_rows([(a, a), (b, b)], len(a) + len(b)) + [(a, a, list(range(len(a))))])
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
        alone_a = model(input_ids=torch.tensor([a])).logits[0]
        alone_b = model(input_ids=torch.tensor([b])).logits[0]
    torch.testing.assert_close(packed[0, : len(a)], alone_a, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(packed[0, len(a) : len(a) + len(b)], alone_b, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(packed[1, : len(a)], alone_a, atol=1e-4, rtol=1e-4)  # row 1: a, then padding


@pytest.mark.parametrize(
    "recipe",
    [
        ["warmstart.pack_length=128", "warmstart.cpu_attention=eager", "warmstart.cpu_bf16=true"],  # the packed recipe (default)
        ["warmstart.pack_length=0", "warmstart.cpu_attention=null", "warmstart.cpu_bf16=false"],  # one example per row, fp32
    ],
    ids=["packed", "one_per_row"],
)
def test_sft_trains_and_keeps_the_models_attention(tmp_path, recipe):
    import torch

    from prmflow.config import load_params
    from prmflow.lm.models import build_tiny_model, build_tokenizer
    from prmflow.lm.sft import sft
    from prmflow.problems import synthetic
    from tests.conftest import MICRO, ROOT

    torch.set_num_threads(1)
    overrides = [f"model.tiny.{k}={v}" for k, v in MICRO["model"]["tiny"].items()]
    params = load_params(
        ROOT / "params.yaml", overrides + recipe + ["warmstart.max_steps=3", "warmstart.batch_size=4", "warmstart.target_accuracy=null"]
    )
    assert bool(params.warmstart.pack_length) == params.warmstart.cpu_bf16 == (recipe[0] != "warmstart.pack_length=0")
    tok = build_tokenizer(params.data.modulus)
    model = build_tiny_model(tok, params.model, seed=0)
    before = model.config._attn_implementation
    pairs = [(p["question"] + "\n", p["answer"]) for p in synthetic.problems(40, 0, params.data)]
    res = sft(model, tok, pairs, params, tmp_path)
    assert res["sft_steps"] == 3 and res["train_loss"] > 0
    assert model.config._attn_implementation == before
