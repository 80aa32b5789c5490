"""prmflow.lm.sampling.sample: greedy output identical to generate_sample (HF generate), a correct and
reproducible sampler, and the generate fallback."""

import pytest
import torch

from prmflow.config import ModelConfig
from prmflow.lm import decode
from prmflow.lm.models import build_tiny_model, build_tokenizer
from prmflow.lm.sampling import generate_sample, sample
from prmflow.problems.synthetic import generate_problems


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from a second thread, and on a shared 2-core machine two OpenMP
    threads can run several times slower than one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer(100)


@pytest.fixture(scope="module")
def llama(tok):
    return build_tiny_model(tok, ModelConfig(), seed=0).eval()


@pytest.fixture(scope="module")
def prompts():
    """Chains of 2-8 steps: prompts of 14-38 tokens, so every batch is left-padded."""
    return [p["question"] + "\n" for p in generate_problems(14, 5, 2, 8)]


@pytest.fixture(scope="module")
def trained(tok, pytestconfig, tmp_path_factory):
    """The tiny Llama after 100 SFT steps on short chains: it writes steps and stops with EOS.

    ~20 s to train on a busy core, so it is kept in pytest's cache (keyed by the torch and
    transformers versions) and loaded from there on later runs.
    """
    import transformers
    from transformers import AutoModelForCausalLM

    key = f"prmflow-fast-sampling-sft100-torch{torch.__version__}-tf{transformers.__version__}".replace("+", "_")
    cache = getattr(pytestconfig, "cache", None)  # None under -p no:cacheprovider
    path = cache.mkdir(key) if cache is not None else tmp_path_factory.mktemp("sft100")
    if not (path / "model.safetensors").exists():
        torch.manual_seed(0)
        model = build_tiny_model(tok, ModelConfig(), seed=0)
        probs = generate_problems(100 * 32, 11, 2, 4)
        texts = [p["question"] + "\n" + p["answer"] + tok.eos_token for p in probs]
        opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
        tok.padding_side = "right"
        try:
            for s in range(100):
                enc = tok(texts[s * 32 : (s + 1) * 32], return_tensors="pt", padding=True)
                loss = model(**enc, labels=enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)).loss
                opt.zero_grad()
                loss.backward()
                opt.step()
        finally:
            tok.padding_side = "left"
        model.save_pretrained(path)
    return AutoModelForCausalLM.from_pretrained(path).eval()


@pytest.fixture(scope="module")
def split_budget(trained, tok, prompts):
    """A greedy token budget at which some rows have stopped, at different steps, and some have
    not. Where the trained model stops depends on the CPU's float kernels (on an AVX2-only CPU
    every row stopped within 32 tokens, on an AVX-512 one some did not), so it is read off the
    model rather than fixed."""
    full = generate_sample(trained, tok, prompts, 1, greedy=True, max_new_tokens=64, batch_size=16)
    lengths = sorted({k for k, done in zip(full.num_tokens, full.finished) if done})
    assert len(lengths) >= 3, f"the trained model stops at too few different lengths: {lengths}"
    return lengths[(len(lengths) - 1) // 2]


def assert_same(a, b):
    assert a.prompts == b.prompts and a.n == b.n
    assert a.prompt_ids == b.prompt_ids
    assert a.completion_ids == b.completion_ids
    assert a.finished == b.finished
    assert a.texts == b.texts


@pytest.mark.parametrize("n,batch_size", [(1, 6), (3, 8)])
def test_greedy_identical_random_llama(llama, tok, prompts, n, batch_size):
    # batch 8 with n=3 splits prompt groups across batches; 6 leaves a short last batch
    kw = dict(greedy=True, max_new_tokens=12, batch_size=batch_size)
    assert decode.fast_path_unsupported(llama) is None
    assert_same(generate_sample(llama, tok, prompts, n, **kw), sample(llama, tok, prompts, n, **kw))


def test_greedy_identical_unpadded(trained, tok, prompts):
    # batches of one prompt's copies have no padding: generate then runs without a mask
    kw = dict(greedy=True, max_new_tokens=32, batch_size=3)
    assert_same(generate_sample(trained, tok, prompts[:4], 3, **kw), sample(trained, tok, prompts[:4], 3, **kw))


@pytest.mark.parametrize("n,batch_size", [(1, 10), (2, 16)])
def test_greedy_identical_trained(trained, tok, prompts, n, batch_size, split_budget):
    kw = dict(greedy=True, max_new_tokens=split_budget, batch_size=batch_size)
    ref = generate_sample(trained, tok, prompts, n, **kw)
    assert 0 < sum(ref.finished) < len(ref.finished)  # rows stop at different steps, some never
    assert len({k for k, done in zip(ref.num_tokens, ref.finished) if done}) >= 2
    assert_same(ref, sample(trained, tok, prompts, n, **kw))


def test_eos_finished_and_texts(trained, tok, prompts):
    out = sample(trained, tok, prompts, 2, temperature=1.0, max_new_tokens=32, batch_size=16, seed=0)
    eos = tok.eos_token_id
    assert len(out.texts) == len(out.completion_ids) == len(out.finished) == 2 * len(prompts)
    for i, (ids, done, text) in enumerate(zip(out.completion_ids, out.finished, out.texts)):
        assert out.prompt_ids[i] == tok(prompts[i // 2])["input_ids"]
        if done:  # up to and including the first EOS
            assert ids[-1] == eos and eos not in ids[:-1]
        else:
            assert len(ids) == 32 and eos not in ids
        assert text == tok.decode(ids, skip_special_tokens=True) and "</s>" not in text
    assert any(out.finished) and out.group(1) == out.texts[2:4]


def test_seeded_sampling_reproducible(trained, tok, prompts):
    kw = dict(temperature=0.8, top_p=0.9, max_new_tokens=24, batch_size=16)
    a = sample(trained, tok, prompts[:6], 3, seed=1, **kw)
    b = sample(trained, tok, prompts[:6], 3, seed=1, **kw)
    c = sample(trained, tok, prompts[:6], 3, seed=2, **kw)
    assert a.completion_ids == b.completion_ids and a.texts == b.texts
    assert a.completion_ids != c.completion_ids
    assert len(set(a.group(0))) > 1  # the n samples of one prompt differ


def test_sampler_matches_generate_warpers():
    """temperature + top-p: the kept set is TopPLogitsWarper's, draws follow its softmax."""
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

    torch.manual_seed(0)
    logits = torch.randn(3, 12) * 2
    for temperature, top_p in [(1.0, 1.0), (0.7, 0.8), (1.5, 0.5)]:
        want = TemperatureLogitsWarper(temperature)(None, logits.clone())
        if top_p < 1:
            want = TopPLogitsWarper(top_p)(None, want)
            got = decode._top_p_filter(logits / temperature, top_p)
            assert torch.equal(torch.isinf(got), torch.isinf(want))
        draws = 20000
        tokens = decode._next_tokens(logits.repeat_interleave(draws, 0), False, temperature, top_p).view(3, draws)
        freq = torch.stack([torch.bincount(t, minlength=12) for t in tokens]).float() / draws
        assert (freq - want.softmax(-1)).abs().max() < 0.02  # 5+ standard errors at 20000 draws


def test_qwen2_greedy_identical(qwen2, tok, prompts):
    """Qwen2 (q/k/v biases, grouped-query attention) takes the fast path with the same output."""
    model = qwen2
    assert decode.fast_path_unsupported(model) is None
    kw = dict(greedy=True, max_new_tokens=16, batch_size=8)
    assert_same(generate_sample(model, tok, prompts, 2, **kw), sample(model, tok, prompts, 2, **kw))


@pytest.mark.parametrize("cuda_graphs", [False, True])  # True: the static loop's additive mask, eagerly on CPU
def test_eager_attention_identical(tok, prompts, cuda_graphs):
    from transformers import AutoModelForCausalLM

    config = build_tiny_model(tok, ModelConfig()).config
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager").eval()
    assert model.config._attn_implementation == "eager"
    kw = dict(greedy=True, max_new_tokens=12, batch_size=8)
    assert_same(generate_sample(model, tok, prompts, **kw), sample(model, tok, prompts, cuda_graphs=cuda_graphs, **kw))


def test_generate_fallback(tok, prompts):
    model = build_tiny_model(tok, ModelConfig(), seed=1).eval()
    model.generation_config.repetition_penalty = 1.3  # generate applies it; the fast loop cannot
    assert "repetition_penalty" in decode.fast_path_unsupported(model)
    kw = dict(greedy=True, max_new_tokens=10, batch_size=8)
    assert_same(generate_sample(model, tok, prompts, **kw), sample(model, tok, prompts, **kw))


def test_progress_and_training_mode_restored(llama, tok, prompts):
    seen = []
    llama.train()
    try:
        out = sample(llama, tok, prompts[:5], 2, max_new_tokens=4, batch_size=4, seed=0, progress=seen.append)
        assert llama.training
    finally:
        llama.eval()
    assert seen == [4, 4, 2] and out.num_tokens == [4] * 10
    with pytest.raises(ValueError):
        sample(llama, tok, prompts[:1], temperature=0.0)


@pytest.mark.parametrize("n,batch_size", [(1, 10), (2, 16)])
def test_static_loop_greedy_identical(trained, tok, prompts, n, batch_size, split_budget):
    """The CUDA-graph loop's static shapes, run eagerly on CPU: the same greedy tokens as the
    Python-launched loop and generate, rows that stop at different steps included."""
    kw = dict(greedy=True, max_new_tokens=split_budget, batch_size=batch_size)
    ref = generate_sample(trained, tok, prompts, n, **kw)
    assert 0 < sum(ref.finished) < len(ref.finished)
    assert len({k for k, done in zip(ref.num_tokens, ref.finished) if done}) >= 2
    assert_same(ref, sample(trained, tok, prompts, n, cuda_graphs=True, **kw))


def test_static_loop_seeded_and_stops_early(trained, tok, prompts):
    kw = dict(temperature=0.8, top_p=0.9, max_new_tokens=48, batch_size=16, cuda_graphs=True)
    a = sample(trained, tok, prompts[:6], 3, seed=1, **kw)
    assert a.completion_ids == sample(trained, tok, prompts[:6], 3, seed=1, **kw).completion_ids
    assert a.completion_ids != sample(trained, tok, prompts[:6], 3, seed=2, **kw).completion_ids
    assert all(a.finished) and max(a.num_tokens) < 48  # every row stopped: the loop ended early
    eos = tok.eos_token_id
    assert all(ids[-1] == eos and eos not in ids[:-1] for ids in a.completion_ids)


def test_static_loop_capture_failure_falls_back_to_generate(trained, tok, prompts, monkeypatch, caplog):
    from prmflow.lm import sampling

    def fail(*args, **kwargs):
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(sampling, "decode_chunk_static", fail)
    kw = dict(greedy=True, max_new_tokens=16, batch_size=8)
    assert_same(generate_sample(trained, tok, prompts, 2, **kw), sample(trained, tok, prompts, 2, cuda_graphs=True, **kw))
    assert "CUDA-graph decoding failed (operation not permitted" in caplog.text


def test_static_step_reused_across_calls_of_one_shape(trained, tok, prompts):
    """The graph path's bookkeeping, without the capture (CPU): prompts left-padded to a multiple
    of 16, one kept step per shape, reloaded by the next call; the tokens stay the loop's."""
    from prmflow.lm.static_decode import _CAPTURED, decode_chunk_static

    kw = dict(
        max_new_tokens=24, eos_id=tok.eos_token_id, pad_id=tok.pad_token_id, greedy=True, temperature=1.0, top_p=1.0, eager_mask=False
    )
    _CAPTURED.pop(trained, None)
    with torch.inference_mode():
        for batch in (prompts[:4], prompts[4:8], prompts[8:12]):
            enc = tok(batch, return_tensors="pt", padding=True)
            group = torch.arange(4).repeat_interleave(2)
            ref = decode.decode_chunk(trained, enc["input_ids"], enc["attention_mask"], group, sync_every=1, **kw)
            got = decode_chunk_static(trained, enc["input_ids"], enc["attention_mask"], group, graph=True, **kw)
            width = min(ref.shape[1], got.shape[1])
            assert torch.equal(ref[:, :width], got[:, :width]) and (got[:, width:] == tok.pad_token_id).all()
    shapes = list(_CAPTURED[trained])
    assert all(P % 16 == 0 for _, P, *_ in shapes) and len(shapes) < 3  # prompts of 14-38 tokens: at most 2 buckets
