"""Monte-Carlo step values (``rl.process_scorer: mc``, VinePPO-style): a step's score is the
share of rollouts of its prefix that reach the reference answer; shared prefixes are rolled out
once; the process weight schedule."""

from __future__ import annotations

import pytest
import torch

from prmflow.config import ModelConfig, RLConfig
from prmflow.lm.models import build_tiny_model, build_tokenizer
from prmflow.lm.sampling import Samples
from prmflow.rl import mc_values
from prmflow.rl.mc_values import MCValueScorer
from prmflow.rl.rewarder import Rewarder
from prmflow.rl.trainer import process_weight

# What the policy writes after each prefix of prompt "P\n" (2 rollouts each; answer 16).
ROLLOUTS = {
    "P\nb=8\n": ["c=16\n#### 16", "c=17\n#### 17"],  # 1 of 2 right: 0.5
    "P\nb=8\nc=16\n": ["#### 16", "#### 16"],  # 1.0
    "P\nb=8\nc=17\n": ["#### 17", "#### 16"],  # a lucky rollout after an error: 0.5
    "P\nb=9\n": ["c=18\n#### 18", "c=18\n#### 18"],  # 0.0
    "P\nb=9\nc=18\n": ["#### 18", "#### 18"],  # 0.0
}


@pytest.fixture
def scripted(monkeypatch):
    """The policy's rollouts, scripted per prefix (the sampler is tested in tests/prmflow/lm);
    records each call's prompts."""
    calls = []

    def fake_sample(model, tokenizer, prompts, n, **kw):
        calls.append(list(prompts))
        return Samples.from_rows(prompts, n, [(t, [], [], True) for p in prompts for t in ROLLOUTS[p][:n]])

    monkeypatch.setattr(mc_values, "sample", fake_sample)
    return calls


def test_values_are_the_rollout_success_share_of_each_prefix(scripted):
    scorer = MCValueScorer(None, None, {"P\n": "16"}, rollouts=2, temperature=0.4, max_new_tokens=32)
    texts = ["b=8\nc=16\n#### 16", "b=8\nc=17\n#### 17", "b=9\nc=18\n#### 18"]
    assert scorer.score(["P\n"] * 3, texts) == [[0.5, 1.0], [0.5, 0.5], [0.0, 0.0]]
    # "b=8" starts two solutions: 5 distinct prefixes of 6 steps, each rolled out once, in one call
    assert scripted == [["P\nb=8\n", "P\nb=8\nc=16\n", "P\nb=8\nc=17\n", "P\nb=9\n", "P\nb=9\nc=18\n"]]


def test_cost_stats_count_distinct_prefixes(scripted):
    scorer = MCValueScorer(None, None, {"P\n": "16"}, rollouts=2, temperature=0.4, max_new_tokens=32)
    scorer.score(["P\n"] * 2, ["b=8\nc=16\n#### 16", "b=8\nc=17\n#### 17"])
    assert scripted == [["P\nb=8\n", "P\nb=8\nc=16\n", "P\nb=8\nc=17\n"]]
    assert scorer.last_stats == {"mc/prefixes": 3.0, "mc/shared_prefix_rate": 0.25, "mc/rollouts": 6.0}


def test_a_cut_off_last_step_is_not_scored_and_unknown_prompts_are_refused(scripted):
    scorer = MCValueScorer(None, None, {"P\n": "16"}, rollouts=2, temperature=0.4, max_new_tokens=32)
    assert scorer.score(["P\n", "P\n"], ["b=8\nc=1", "#### 16"], finished=[False, True]) == [[0.5], []]
    with pytest.raises(KeyError, match="no reference answer"):
        scorer.score(["Q\n"], ["b=8\n#### 8"])
    with pytest.raises(ValueError, match="rl.mc_rollouts"):
        MCValueScorer(None, None, {}, rollouts=0, temperature=0.4, max_new_tokens=32)


def test_values_from_a_real_policy_are_seeded_shares():
    """Through the real sampler on the tiny Llama: one value per step, each a multiple of 1/K,
    the same on a second call with the same completions."""
    torch.set_num_threads(1)
    tok = build_tokenizer()
    model = build_tiny_model(tok, ModelConfig(), seed=0).eval()
    scorer = MCValueScorer(model, tok, {"a=5;b=a+3;b=?\n": "8"}, rollouts=4, temperature=1.0, max_new_tokens=8)
    texts = ["b=5+3=8\nx=1\n#### 8", "b=5+3=9\n#### 9"]
    first = scorer.score(["a=5;b=a+3;b=?\n"] * 2, texts)
    assert [len(v) for v in first] == [2, 1]
    assert all(v * 4 == int(v * 4) and 0 <= v <= 1 for vs in first for v in vs)
    assert scorer.score(["a=5;b=a+3;b=?\n"] * 2, texts) == first


@pytest.mark.parametrize(
    ("steps", "delay", "weights"),
    [(5, 0.5, [0, 0, 0, 0.4, 0.4]), (4, 0.5, [0, 0, 0.4, 0.4]), (3, 0.0, [0.4, 0.4, 0.4]), (10, 0.9, [0] * 9 + [0.4])],
)
def test_a_delayed_process_weight_starts_after_its_share_of_the_steps(steps, delay, weights):
    rl = RLConfig(steps=steps, weights={"process": 0.4}, process_weight_schedule="delayed", process_weight_delay=delay)
    assert [process_weight(s, rl) for s in range(steps)] == weights


def test_the_process_weight_schedule_reaches_the_rewarder():
    """A decayed process weight scales the step advantages; 0 leaves the outcome's alone."""

    class Constant:
        def score(self, prompts, texts, finished=None):
            return [[0.9, 0.1] if "9" in t else [0.9, 0.9] for t in texts]

    rl = RLConfig(group_size=2, weights={"process": 0.5}, process_mode="step_delta", steps=10, process_weight_schedule="linear_decay")
    texts, pieces = ["a\nb\n#### 8", "a\nb\n#### 9"], [list("a\nb\n#### 8"), list("a\nb\n#### 9")]
    args = (["q\n"] * 2, texts, ["8", "8"], [10, 10], pieces)
    full, s_full = Rewarder(rl, Constant())(*args)
    half, s_half = Rewarder(rl, Constant())(*args, process_weight=process_weight(5, rl))
    none, _ = Rewarder(rl, Constant())(*args, process_weight=0.0)
    unscored, s_unscored = Rewarder(rl, Constant())(*args, process_weight=0.0, monitor=False)  # a delayed term, no monitor
    assert all(torch.equal(a, b) for a, b in zip(unscored, none)) and "reward/process" not in s_unscored
    assert s_half["reward/process_weight"] == 0.25 and "reward/process_weight" not in s_full
    outcome = none[0][0]
    assert all(float(x) == float(outcome) for x in none[0][:10])
    step = full[0][2] - outcome  # step 1's token: outcome advantage + weight x step advantage
    assert float(half[0][2] - outcome) == pytest.approx(float(step) / 2)
