"""Step encoding, the PRM model, calibration and the scorers on a tiny random model (CPU)."""

from __future__ import annotations

import math

import pytest
import torch

from prmflow.config import ModelConfig, TinyModelConfig
from prmflow.lm.models import build_tiny_model, build_tokenizer
from prmflow.prm.encoding import encode_steps
from prmflow.prm.model import PRM_CONFIG, PRMModel, confidence_features, factored_bce
from prmflow.prm.scorers import PolicyConfidenceScorer, PRMScorer, calibrate, load_scorer

PROMPT = "a=7;b=a*3;c=b-4;c=?\n"
SOLUTIONS = ["b=7*3=21\nc=21-4=17\n#### 17", "b=7*3=20\n#### 20", "#### 3", "b=7*3=21\nc=21-4=18\nd=1+1=2\n#### 2"]


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


@pytest.fixture(scope="module")
def backbone(tok):
    torch.set_num_threads(1)
    cfg = ModelConfig(tiny=TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64))
    return build_tiny_model(tok, cfg, seed=0).eval()


@pytest.fixture(scope="module")
def prm(tok, backbone):
    torch.manual_seed(1)
    model = PRMModel(backbone, tok, ["hidden", "confidence", "step_confidence"], head_hidden=8)
    return model.eval()


def test_encode_steps_ends_at_each_separator_and_not_in_the_prompt(tok):
    enc = encode_steps(tok, PROMPT, ["b=7*3=21", "c=21-4=17"])
    nl = tok("\n", add_special_tokens=False)["input_ids"][0]
    assert enc.ids[enc.prompt_len - 1] == nl  # the prompt's own newline ends no step
    assert len(enc.ends) == 2
    assert all(enc.ids[e] == nl for e in enc.ends)
    assert enc.ends[-1] == len(enc.ids) - 1
    assert [i for i in range(enc.prompt_len, len(enc.ids)) if enc.ids[i] == nl] == enc.ends
    # The text up to the first step end is the prompt and the first step.
    assert tok.decode(enc.ids[: enc.ends[0] + 1]) == PROMPT + "b=7*3=21\n"


def test_confidence_features_running_and_step_minimum():
    # positions:   0     1     2     3(sep) 4     5(sep)
    logp = torch.tensor([[-9.0, -0.5, -2.0, -0.1, -1.0, -0.2]])
    counted = torch.tensor([[False, True, True, False, True, False]])
    is_sep = torch.tensor([[False, False, False, True, False, True]])
    f = confidence_features(logp, counted, is_sep)
    assert f[0, :, 0].tolist() == [0.0, -0.5, -2.0, -2.0, -2.0, -2.0]  # running min
    assert f[0, 3, 1].item() == -2.0  # step 0: min over positions 1..3
    assert f[0, 5, 1].item() == -1.0  # step 1: min over positions 4..5 only


def test_confidence_features_clip_very_low_probabilities():
    f = confidence_features(torch.tensor([[-1e9]]), torch.tensor([[True]]), torch.tensor([[True]]))
    assert f[0, 0].tolist() == [-20.0, -20.0]


def test_calibrate_moves_threshold_to_half_and_keeps_order():
    p = torch.tensor([0.0, 0.05, 0.1, 0.4, 1.0])
    out = calibrate(p, 0.1).tolist()
    assert out == pytest.approx([0.0, 0.25, 0.5, 0.5 + 0.3 / 1.8, 1.0])
    assert out == sorted(out)
    with pytest.raises(ValueError):
        calibrate(p, 0.0)


def test_prm_loss_is_bce_on_soft_targets_at_labelled_positions_only(prm):
    ids = torch.tensor([[5, 6, 7, 8]])
    labels = torch.tensor([[-100.0, 0.25, -100.0, 1.0]])
    out = prm(ids, torch.ones_like(ids), torch.tensor([1]), labels)
    z = out["logits"][0, [1, 3]]
    y = torch.tensor([0.25, 1.0])
    manual = -(y * torch.log(torch.sigmoid(z)) + (1 - y) * torch.log(1 - torch.sigmoid(z))).mean()
    assert out["loss"].item() == pytest.approx(manual.item(), rel=1e-5)


def test_factored_bce_is_bce_of_the_product():
    zc, zp = torch.tensor([0.3, -2.0, 4.0]), torch.tensor([1.0, 0.5, -1.0])
    y = torch.tensor([0.25, 0.0, 1.0])
    p = torch.sigmoid(zc) * torch.sigmoid(zp)
    manual = -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()
    assert factored_bce(zc, zp, y).item() == pytest.approx(manual.item(), rel=1e-5)
    # saturated logits stay finite
    assert torch.isfinite(factored_bce(torch.tensor([60.0]), torch.tensor([60.0]), torch.tensor([0.0])))


def test_factored_model_scores_correctness_and_roundtrips(tmp_path, tok, backbone):
    torch.manual_seed(2)
    model = PRMModel(backbone, tok, ["confidence", "step_confidence"], factored=True).eval()
    torch.nn.init.normal_(model.progress_head.weight)
    torch.nn.init.normal_(model.head.weight)
    ids = torch.tensor([tok(PROMPT + "b=7*3=21\n")["input_ids"]])
    out = model(
        ids, torch.ones_like(ids), torch.tensor([3]), torch.full(ids.shape, -100.0).index_fill(1, torch.tensor([ids.shape[1] - 1]), 0.5)
    )
    assert set(out) == {"logits", "progress_logits", "loss"} and torch.isfinite(out["loss"])
    model.save(tmp_path / "f", tok, threshold=0.5)
    loaded = PRMScorer.from_pretrained(tmp_path / "f")
    assert loaded.model.factored
    assert loaded.score([PROMPT], [SOLUTIONS[3]])[0] == pytest.approx(PRMScorer(model, tok).score([PROMPT], [SOLUTIONS[3]])[0], abs=1e-6)


def test_prm_model_rejects_unknown_features(tok, backbone):
    with pytest.raises(ValueError, match="features"):
        PRMModel(backbone, tok, ["hidden", "vibes"])


@pytest.mark.parametrize("kind", ["prm", "confidence"])
def test_scores_shapes_range_and_batch_order_invariance(kind, tok, backbone, prm):
    scorer = PRMScorer(prm, tok) if kind == "prm" else PolicyConfidenceScorer(backbone, tok)
    prompts = [PROMPT] * len(SOLUTIONS)
    scores = scorer.score(prompts, SOLUTIONS, batch_size=64)
    assert [len(s) for s in scores] == [2, 1, 0, 3]
    assert all(0.0 <= x <= 1.0 and not math.isnan(x) for s in scores for x in s)
    one_by_one = scorer.score(prompts, SOLUTIONS, batch_size=1)
    order = [3, 1, 0, 2]
    shuffled = scorer.score([prompts[i] for i in order], [SOLUTIONS[i] for i in order], batch_size=2)
    for i, j in enumerate(order):
        assert shuffled[i] == pytest.approx(scores[j], abs=1e-5)
        assert one_by_one[j] == pytest.approx(scores[j], abs=1e-5)


def test_step_score_depends_only_on_its_prefix(tok, prm):
    scorer = PRMScorer(prm, tok)
    a, b = scorer.score([PROMPT, PROMPT], ["b=7*3=21\nc=21-4=17\n#### 17", "b=7*3=21\nc=21-4=99\n#### 99"])
    assert a[0] == pytest.approx(b[0], abs=1e-6)


def test_confidence_scorer_is_monotone_non_increasing(tok, backbone):
    s = PolicyConfidenceScorer(backbone, tok).score([PROMPT], [SOLUTIONS[3]])[0]
    assert s == sorted(s, reverse=True)


def test_save_load_roundtrip_and_load_scorer(tmp_path, tok, backbone, prm):
    prm.save(tmp_path / "prm", tok, threshold=0.3, extra={"calibrated": True})
    assert (tmp_path / "prm" / "config.json").exists()  # what train_policy looks for
    scorer = PRMScorer.from_pretrained(tmp_path / "prm", device="cpu")
    assert scorer.threshold == 0.3 and scorer.calibrated
    raw = PRMScorer(prm, tok).score([PROMPT] * 2, SOLUTIONS[:2])
    loaded = scorer.score([PROMPT] * 2, SOLUTIONS[:2])
    expected = [calibrate(torch.tensor(r), 0.3).tolist() for r in raw]
    for got, exp in zip(loaded, expected):
        assert got == pytest.approx(exp, abs=1e-5)
    assert isinstance(load_scorer(tmp_path / "prm", "cpu"), PRMScorer)

    backbone.save_pretrained(tmp_path / "policy")
    tok.save_pretrained(tmp_path / "policy")
    assert isinstance(load_scorer(tmp_path / "policy"), PolicyConfidenceScorer)
    (tmp_path / "policy" / PRM_CONFIG).write_text('{"kind": "policy_confidence"}')
    assert isinstance(load_scorer(tmp_path / "policy"), PolicyConfidenceScorer)
    with pytest.raises(ValueError, match="not a learned PRM"):
        PRMScorer.from_pretrained(tmp_path / "policy")


def test_prompt_and_solution_counts_must_match(tok, prm):
    with pytest.raises(ValueError, match="prompts"):
        PRMScorer(prm, tok).score([PROMPT], SOLUTIONS[:2])


def test_a_cached_frozen_backbone_gives_the_same_outputs_and_runs_once_per_row(tok):
    cfg = ModelConfig(tiny=TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64))
    model = PRMModel(build_tiny_model(tok, cfg, seed=0), tok, ["hidden", "confidence", "step_confidence"], factored=True)
    torch.nn.init.normal_(model.head.weight)
    enc = [tok(PROMPT + s)["input_ids"] for s in SOLUTIONS]
    width = max(map(len, enc))
    ids = torch.tensor([e + [tok.pad_token_id] * (width - len(e)) for e in enc])  # right-padded, as the PRM trains
    mask = (torch.arange(width)[None, :] < torch.tensor([len(e) for e in enc])[:, None]).long()
    plain = model(ids, mask, torch.tensor([5] * 4))
    with pytest.raises(ValueError, match="trained"):
        with model.cached_backbone():
            pass
    model.backbone.requires_grad_(False)
    calls = []
    hook = model.backbone.register_forward_hook(lambda m, i, o: calls.append(i))
    with model.cached_backbone():
        first = model(ids, mask, torch.tensor([5] * 4))
        again = model(ids[[2, 0]], mask[[2, 0]], torch.tensor([5, 5]))  # rows seen before, other batch and padding
    hook.remove()
    assert len(calls) == 1 and model._cache is None
    for key in ("logits", "progress_logits"):
        torch.testing.assert_close(first[key] * mask, plain[key] * mask, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(again[key] * mask[[2, 0]], plain[key][[2, 0]] * mask[[2, 0]], atol=1e-5, rtol=1e-5)
