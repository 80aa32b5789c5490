"""prmflow.lm.shared_prefix: one copy of a prompt's K/V for all its rows gives the attention (and
the samples) of a copy per row, and the model's own attention kernel comes back afterwards."""

import pytest
import torch
from transformers.models.llama.modeling_llama import eager_attention_forward

from prmflow.config import ModelConfig
from prmflow.lm import decode, shared_prefix
from prmflow.lm.models import build_tiny_model, build_tokenizer
from prmflow.lm.sampling import sample
from prmflow.problems.synthetic import generate_problems


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class _Module(torch.nn.Module):
    """What an attention function reads of its module."""

    def __init__(self, heads, kv_heads):
        super().__init__()
        self.layer_idx = 0
        self.num_key_value_groups = heads // kv_heads


class _Layer:
    def __init__(self, keys, values):
        self.keys, self.values, self.length = keys, values, keys.shape[2]


class _Cache:
    def __init__(self, keys, values):
        self.layers = [_Layer(keys, values)]


@pytest.mark.parametrize("kv_heads", [4, 2])  # 2: grouped-query attention, 2 query heads per K/V head
def test_attention_equals_eager_over_copied_prefix(kv_heads):
    """3 prompts (5 slots, left padding 2/0/1) with 3, 1 and 2 rows; each row has 4 generated
    tokens of its own. Against eager attention over each row's copy of its prompt's K/V followed
    by its own: all rows, then rows 0, 2, 3 and 5 after the others were dropped."""
    torch.manual_seed(0)
    H, D, P, t = 4, 8, 5, 4
    group = torch.tensor([0, 0, 0, 1, 2, 2])
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 1, 1, 1, 1]])
    kp, vp = torch.randn(3, kv_heads, P, D), torch.randn(3, kv_heads, P, D)
    kg, vg = torch.randn(6, kv_heads, t, D), torch.randn(6, kv_heads, t, D)
    q = torch.randn(6, H, 1, D)
    module = _Module(H, kv_heads)
    pre = shared_prefix.Prefix.of_cache(_Cache(kp, vp), mask, group, torch.float32)
    assert pre.n == 3 and pre.slot.tolist() == [0, 1, 2, 3, 6, 7] and not pre.dense

    def reference(rows):
        keys = torch.cat([kp[group[rows]], kg[rows]], dim=2)
        values = torch.cat([vp[group[rows]], vg[rows]], dim=2)
        keep = torch.cat([mask[group[rows]], torch.ones(len(rows), t, dtype=mask.dtype)], dim=1).bool()
        additive = torch.zeros(keep.shape).masked_fill_(~keep, torch.finfo(torch.float32).min)[:, None, None, :]
        return eager_attention_forward(module, q[rows], keys, values, additive, scaling=D**-0.5)[0]

    got, _ = shared_prefix.attention(module, q, kg, vg, None, scaling=D**-0.5, shared_prefix=pre)
    assert got.shape == (6, 1, H, D)
    torch.testing.assert_close(got, reference(torch.arange(6)), rtol=1e-5, atol=1e-6)

    live = torch.tensor([0, 2, 3, 5])
    pre.keep_rows(live)
    got, _ = shared_prefix.attention(module, q[live], kg[live], vg[live], None, scaling=D**-0.5, shared_prefix=pre)
    torch.testing.assert_close(got, reference(live), rtol=1e-5, atol=1e-6)


def test_dense_layout():
    """Two prompts with two rows each: every slot is a row, no scatter needed."""
    mask = torch.ones(2, 3, dtype=torch.long)
    pre = shared_prefix.Prefix.of_cache(
        _Cache(torch.zeros(2, 1, 3, 4), torch.zeros(2, 1, 3, 4)), mask, torch.tensor([0, 0, 1, 1]), torch.float32
    )
    assert pre.dense and pre.n == 2 and pre.slot.tolist() == [0, 1, 2, 3]
    x = torch.arange(4.0)[:, None]
    assert pre.to_slots(x) is x and pre.from_slots(x) is x


def test_attention_needs_the_prefix():
    with pytest.raises(RuntimeError, match="shared_prefix"):
        shared_prefix.attention(_Module(4, 4), torch.zeros(1, 4, 1, 8), torch.zeros(1, 4, 1, 8), torch.zeros(1, 4, 1, 8), None, 1.0)


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer(100)


@pytest.fixture(scope="module")
def prompts():
    return [p["question"] + "\n" for p in generate_problems(10, 5, 2, 8)]  # left-padded batches


@pytest.mark.parametrize("arch", ["llama_eager", "qwen2_sdpa"])
@pytest.mark.parametrize("n,batch_size", [(4, 40), (3, 8)])  # 8 rows of 3-row groups: groups split across batches
def test_sampled_rows_same_as_copied_prefix(request, tok, prompts, monkeypatch, arch, n, batch_size):
    """The same seed gives the same samples as the copied prefix (the sums differ only in order),
    with rows finishing early and being dropped; the model's attention kernel is restored."""
    from transformers import AutoModelForCausalLM

    if arch == "qwen2_sdpa":
        model = request.getfixturevalue("qwen2")
    else:
        config = build_tiny_model(tok, ModelConfig()).config
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(config, attn_implementation="eager").eval()
    own = model.config._attn_implementation
    calls = []
    real = decode.decode_chunk

    def spy(*args, share_prefix=False, **kw):
        calls.append(share_prefix)
        return real(*args, share_prefix=share_prefix and not copied, **kw)

    monkeypatch.setattr("prmflow.lm.sampling.decode_chunk", spy)
    kw = dict(temperature=1.0, max_new_tokens=20, batch_size=batch_size, seed=3)
    copied = True
    want = sample(model, tok, prompts, n, **kw)
    copied = False
    got = sample(model, tok, prompts, n, **kw)
    assert all(calls)  # sampled rows ask for the shared prefix
    assert 0 < sum(got.finished) < len(got.finished)  # some rows stop early, so rows get dropped
    assert got.completion_ids == want.completion_ids and got.texts == want.texts
    assert model.config._attn_implementation == own


def test_greedy_keeps_the_copied_prefix(tok, prompts, monkeypatch):
    model = build_tiny_model(tok, ModelConfig(), seed=0).eval()
    calls = []
    real = decode.decode_chunk
    monkeypatch.setattr("prmflow.lm.sampling.decode_chunk", lambda *a, **k: calls.append(k["share_prefix"]) or real(*a, **k))
    sample(model, tok, prompts[:3], 2, greedy=True, max_new_tokens=4, batch_size=6)
    assert calls == [False]


def test_kernel_restored_after_an_error(tok, prompts, monkeypatch):
    model = build_tiny_model(tok, ModelConfig(), seed=0).eval()
    own = model.config._attn_implementation

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(decode, "_next_tokens", boom)
    with pytest.raises(KeyboardInterrupt):
        sample(model, tok, prompts[:3], 2, max_new_tokens=4, batch_size=6, seed=0)
    assert model.config._attn_implementation == own


@pytest.mark.parametrize("arch", ["llama_eager", "qwen2_sdpa"])
def test_completion_logprobs_equal_rows_run_whole(request, tok, arch):
    """Each prompt run once for its rows: the log-probs, entropies and gradient of every row run
    whole, on the completion positions (0 elsewhere); 3 prompts of different lengths, rows
    interleaved, completions of different lengths."""
    from prmflow.lm.logprobs import sequence_logprobs
    from prmflow.rl.batch import build_batch

    model = request.getfixturevalue("qwen2") if arch == "qwen2_sdpa" else build_tiny_model(tok, ModelConfig(), seed=0)
    model.train()
    own = model.config._attn_implementation
    gen = torch.Generator().manual_seed(0)
    prompts = [torch.randint(5, 90, (n,), generator=gen).tolist() for n in (7, 3, 11)]
    rows = [prompts[i % 3] for i in range(8)]
    completions = [torch.randint(5, 90, (n,), generator=gen).tolist() for n in (4, 9, 1, 6, 12, 2, 5, 8)]
    b = build_batch(rows, completions, [torch.ones(len(c)) for c in completions], tok.pad_token_id)

    want, want_ent = sequence_logprobs(model, b.input_ids, b.attention_mask, with_entropy=True)
    (want * b.completion_mask).sum().backward()
    want_grad = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    got, got_ent = shared_prefix.completion_logprobs(model, b.input_ids, b.attention_mask, b.prompt_len, with_entropy=True)
    (got * b.completion_mask).sum().backward()

    on = b.completion_mask.bool()
    torch.testing.assert_close(got[on], want[on], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got_ent[on], want_ent[on], rtol=1e-5, atol=1e-5)
    assert not got[~on].any() and not got_ent[~on].any()
    # atol 1e-5 on gradients up to ~1e-1: fp32 sums in another order (2e-6 apart on an AVX2-only CPU)
    assert max(w.abs().max() for w in want_grad) > 1e-2
    for g, w in zip((p.grad for p in model.parameters()), want_grad):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-5)
    assert model.config._attn_implementation == own


def test_rows_ending_at_their_first_token(tok, prompts):
    """Rows that end at the first token are dropped before any generated K/V exists (the row
    cache is still empty then); the same seed gives the copied prefix's tokens. The end token is
    one that a quarter or more, but not all, of the rows draw first."""
    model = build_tiny_model(tok, ModelConfig(), seed=0).eval()
    enc = tok(prompts[:4], return_tensors="pt", padding=True)
    group = torch.arange(4).repeat_interleave(4)
    kw = dict(max_new_tokens=6, pad_id=tok.pad_token_id, greedy=False, temperature=0.05, top_p=1.0, eager_mask=False, sync_every=1)

    def run(seed, eos, share):
        torch.manual_seed(seed)
        with torch.inference_mode():
            return decode.decode_chunk(model, enc["input_ids"], enc["attention_mask"], group, eos_id=eos, share_prefix=share, **kw)

    for seed in range(50):
        counts = torch.bincount(run(seed, -1, False)[:, 0])
        if 4 <= int(counts.max()) < 16:
            break
    eos = int(counts.argmax())
    want = run(seed, eos, False)
    assert 4 <= int((want[:, 0] == eos).sum()) < 16
    assert torch.equal(run(seed, eos, True), want)
