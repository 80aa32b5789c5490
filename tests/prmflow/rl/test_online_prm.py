"""The online PRM (``rl.prm_online_lr``, PRIME-style): its head learns from the outcomes of the
completions it is about to score; the backbone does not move; the rewarder updates it first."""

from __future__ import annotations

import pytest
import torch

from prmflow.config import ModelConfig, RLConfig, TinyModelConfig
from prmflow.lm.models import build_tiny_model, build_tokenizer
from prmflow.prm.model import PRMModel
from prmflow.prm.scorers import PRMScorer
from prmflow.rl.online_prm import OnlinePRM
from prmflow.rl.rewarder import Rewarder

PROMPT = "a=7;b=a*3;c=b-4;c=?\n"
RIGHT, WRONG = "b=7*3=21\nc=21-4=17\n#### 17", "b=7*3=20\nc=20-4=16\n#### 16"


@pytest.fixture
def online():
    torch.manual_seed(0)
    tok = build_tokenizer()
    cfg = ModelConfig(tiny=TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64))
    model = PRMModel(build_tiny_model(tok, cfg, seed=0), tok, ["confidence", "step_confidence"], factored=True).eval()
    return OnlinePRM(PRMScorer(model, tok), learning_rate=0.05, updates=5)


def test_outcome_labels_move_the_scores_and_only_the_head_learns(online):
    backbone = {k: v.clone() for k, v in online.scorer.model.backbone.state_dict().items()}
    before = online.score([PROMPT], [RIGHT])[0]
    online.update([PROMPT] * 2, [RIGHT, RIGHT], [True, True])
    up = online.score([PROMPT], [RIGHT])[0]
    assert all(b < u for b, u in zip(before, up))  # every step of a right completion: "right" more likely
    online.update([PROMPT] * 2, [RIGHT, RIGHT], [False, False])
    assert all(d < u for d, u in zip(online.score([PROMPT], [RIGHT])[0], up))
    assert all(torch.equal(v, online.scorer.model.backbone.state_dict()[k]) for k, v in backbone.items())
    assert online.last_stats["prm_online/step_ends"] == 4.0 and online.last_stats["prm_online/loss"] > 0


def test_a_batch_without_steps_is_no_update(online):
    head = [p.clone() for p in online.scorer.model.head_parameters()]
    online.update([PROMPT], ["#### 17"], [True])
    assert all(torch.equal(a, b) for a, b in zip(head, online.scorer.model.head_parameters()))
    assert online.last_stats["prm_online/step_ends"] == 0.0


def test_the_rewarder_updates_the_online_prm_before_it_scores(online):
    seen = []
    real = online.score
    online.score = lambda *a, **k: (seen.append(dict(online.last_stats)), real(*a, **k))[1]
    rl = RLConfig(group_size=2, weights={"process": 0.5}, process_mode="step_delta", prm_online_lr=0.05)
    _, stats = Rewarder(rl, online)([PROMPT] * 2, [RIGHT, WRONG], ["17", "17"], [len(RIGHT), len(WRONG)], [list(RIGHT), list(WRONG)])
    assert seen[0]["prm_online/step_ends"] == 4.0  # updated on this batch first
    assert stats["prm_online/step_ends"] == 4.0


def test_only_the_learned_prm_learns_online():
    with pytest.raises(ValueError, match="only the learned PRM learns online"):
        RLConfig(prm_online_lr=0.01, process_scorer="oracle")
    with pytest.raises(ValueError, match="learning_rate > 0"):
        OnlinePRM(None, learning_rate=0.0)
