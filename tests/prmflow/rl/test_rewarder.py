"""The rewarder: verifier ERROR/TIMEOUT verdicts counted (too many stop the step); step scores
that find no step end in the tokens counted, not silently cut."""

from __future__ import annotations

import pytest
import torch

from prmflow.config import RLConfig
from prmflow.rl.rewarder import Rewarder, step_credit_counts
from prmflow.rl.trainer import summarize
from reward import symbolic
from reward.outcome import VerifierError
from reward.parse import split_steps

# 4 completions of one prompt group; answer "3"; two are symbolic and reach the checker
TEXTS = ["#### 3", "#### 4", "#### \\frac{6}{2}", "#### \\Gamma(9)"]


@pytest.fixture
def checker(monkeypatch):
    """A fake symbolic checker: \\frac{6}{2} is a checker fault, \\Gamma(9) runs past the deadline."""

    def check(pred, gold, timeout_s):
        if pred == "\\frac{6}{2}":
            raise symbolic.SymbolicError("TypeError: boom")
        return None

    monkeypatch.setattr(symbolic, "check", check)


def reward(rl: RLConfig):
    return Rewarder(rl)(["q\n"] * 4, TEXTS, ["3"] * 4, [3, 3, 5, 5], [[]] * 4)


def test_verifier_errors_and_timeouts_are_logged(checker):
    rl = RLConfig(group_size=4, weights={"process": 0.0}, max_verifier_errors=0.5)
    _, stats = reward(rl)
    assert (stats["verifier/errors"], stats["verifier/timeouts"]) == (1.0, 1.0)
    assert stats["reward/outcome"] == 0.25  # only "#### 3" is right: an error is not a right answer


def test_too_many_verifier_errors_fail_the_step(checker):
    rl = RLConfig(group_size=4, weights={"process": 0.0}, max_verifier_errors=0.2)  # 1 of 4 = 25%
    with pytest.raises(VerifierError, match=r"1 of 4 verdicts \(25\.0%\) were verifier errors, more than rl\.max_verifier_errors = 20\.0%"):
        reward(rl)


class StepScorer:
    """0.8 for every step line of a solution (what a PRM would score); a cut-off last line of an
    unfinished solution is not a step, as for the real scorers."""

    def score(self, prompts, texts, finished=None):
        finished = finished or [True] * len(texts)
        return [[0.8] * len(split_steps(t, "line", f)) for t, f in zip(texts, finished)]


class PartialLineScorer(StepScorer):
    """A scorer that also scores the cut-off last line (one not written with this repo)."""

    def score(self, prompts, texts, finished=None):
        return super().score(prompts, texts)


def test_step_credit_counts_by_hand():
    # solution 0: 2 scores, 2 ends; 1: 2 scores, 1 end (last step cut before its newline);
    # 2: no score (the scorer found no step), 1 end
    c = step_credit_counts([[0.9, 0.8], [0.7, 0.6], []], [[2, 4], [2], [3]])
    assert c == {"steps_scored": 4, "steps_credited": 3, "steps_without_end": 1, "step_ends_without_score": 1}


def test_rewarder_counts_steps_cut_at_the_token_budget():
    rl = RLConfig(group_size=2, process_mode="step_min", weights={"process": 0.5})
    texts = ["a=1\nb=2\n#### 2", "a=1\nb=2"]  # the second was cut at max_new_tokens: "b=2" may go on
    pieces = [["a=1", "\n", "b=2", "\n", "####", " 2"], ["a=1", "\n", "b=2"]]
    adv, stats = Rewarder(rl, StepScorer())(["q\n"] * 2, texts, ["2", "2"], [6, 3], pieces, [True, False])
    assert [len(a) for a in adv] == [6, 3]
    # the cut-off line is neither scored nor credited; the cut is logged
    assert stats["reward/steps_scored"] == 3.0 and stats["reward/steps_credited"] == 3.0
    assert stats["reward/steps_without_end"] == 0.0 and stats["train/truncated"] == 0.5
    # a scorer that scores it anyway: the score finds no end, and is counted
    _, stats = Rewarder(rl, PartialLineScorer())(["q\n"] * 2, texts, ["2", "2"], [6, 3], pieces, [True, False])
    assert stats["reward/steps_scored"] == 4.0 and stats["reward/steps_credited"] == 3.0
    assert stats["reward/steps_without_end"] == 1.0 and stats["reward/step_ends_without_score"] == 0.0


def test_rewarder_reads_answers_and_steps_by_the_solution_format():
    from reward.parse import SolutionFormat

    rl = RLConfig(group_size=2, process_mode="step_min", weights={"process": 0.5})
    fmt = SolutionFormat("sentence", ("boxed",))
    texts = ["Half is 1. So \\boxed{2}.", "It is 3."]
    pieces = [["Half", " is", " 1", ".", " So", " \\boxed{2}", ".", ""], ["It", " is", " 3", ".", ""]]

    class SentenceScorer(StepScorer):
        def score(self, prompts, texts, finished=None):
            return [[0.8] * len(fmt.steps(t)) for t in texts]

    adv, stats = Rewarder(rl, SentenceScorer(), fmt)(["q\n"] * 2, texts, ["2", "2"], [8, 5], pieces, [True, True])
    assert stats["reward/outcome"] == 0.5  # \\boxed{2} read by the rule it was given
    assert stats["reward/steps_scored"] == stats["reward/steps_credited"] == 3.0  # 2 + 1 sentences, all with an end


def test_summarize_totals_the_step_counts_over_the_run():
    rl = RLConfig(steps=2)
    history = [
        {"step": 0, "eval/greedy_acc": 0.5},
        {"step": 1, "reward/sequence": 0.1, "reward/steps_scored": 10.0, "reward/steps_without_end": 2.0},
        {"step": 2, "reward/sequence": 0.2, "reward/steps_scored": 12.0, "reward/steps_without_end": 1.0},
    ]
    out = summarize(history, rl)
    assert out["total_steps_scored"] == 22.0 and out["total_steps_without_end"] == 3.0
    assert out["final_reward_sequence"] == pytest.approx(0.15)


class FixedScorer:
    """The PRM's step scores of the two completions below."""

    def score(self, prompts, texts, finished=None):
        return [[0.9, 0.8], [0.9, 0.2]]


# Two completions of one prompt (group size 2), answer 2: c0 right, c1 wrong at its second step.
HYBRID_TEXTS = ["a=1\nb=2\n#### 2", "a=1\nb=3\n#### 3"]
HYBRID_PIECES = [["a=1", "\n", "b=2", "\n", "####", " 2"], ["a=1", "\n", "b=3", "\n", "####", " 3"]]  # steps end at 2, 4
R2 = 2**-0.5  # GRPO advantage of a 2-group with two different rewards: +-0.5 / std([1, 0]) = +-1/sqrt(2)


def hybrid(mode: str):
    rl = RLConfig(group_size=2, process_mode=mode, weights={"outcome": 1.0, "process": 0.5, "length": 0.0})
    adv, stats = Rewarder(rl, FixedScorer())(["q\n"] * 2, HYBRID_TEXTS, ["2", "2"], [6, 6], HYBRID_PIECES)
    return [a.tolist() for a in adv], stats


def test_hybrid_sequence_mode_by_hand():
    # min aggregate: c0 0.8, c1 0.2; sequence rewards 1 + 0.5*0.8 = 1.4 and 0 + 0.5*0.2 = 0.1;
    # centred +-0.65 over their std 0.65*sqrt(2): +-1/sqrt(2) on every token.
    adv, stats = hybrid("sequence")
    assert adv[0] == pytest.approx([R2] * 6, abs=1e-5) and adv[1] == pytest.approx([-R2] * 6, abs=1e-5)
    assert stats["reward/sequence"] == pytest.approx(0.75) and stats["reward/process"] == pytest.approx(0.5)


# Step rewards of the group [0.9, 0.8 | 0.9, 0.2]: mean 0.7, unbiased std sqrt(0.34/3) = 0.336650,
# normalised [0.594089, 0.297044 | 0.594089, -1.485222].
N = [0.594089, 0.297044, 0.594089, -1.485222]


def test_hybrid_step_min_mode_by_hand():
    # sequence reward is the outcome alone: +-1/sqrt(2); min credit: c0 [0.297, 0.297], c1 [-1.485, -1.485];
    # each step's tokens add 0.5 x its credit; the answer line (tokens 4-5) keeps the sequence advantage.
    adv, stats = hybrid("step_min")
    c0, c1 = R2 + 0.5 * N[1], -R2 + 0.5 * N[3]
    assert adv[0] == pytest.approx([c0, c0, c0, c0, R2, R2], abs=1e-5)
    assert adv[1] == pytest.approx([c1, c1, c1, c1, -R2, -R2], abs=1e-5)
    assert stats["reward/sequence"] == pytest.approx(0.5) and stats["reward/process_step"] == pytest.approx(0.7)
    assert "reward/process" not in stats  # the aggregate was not trained on in step modes


def test_hybrid_step_sum_mode_by_hand():
    # sum credit: c0 [0.891133, 0.297044], c1 [-0.891133, -1.485222]
    adv, _ = hybrid("step_sum")
    a0, b0 = R2 + 0.5 * (N[0] + N[1]), R2 + 0.5 * N[1]
    a1, b1 = -R2 + 0.5 * (N[2] + N[3]), -R2 + 0.5 * N[3]
    assert adv[0] == pytest.approx([a0, a0, b0, b0, R2, R2], abs=1e-5)
    assert adv[1] == pytest.approx([a1, a1, b1, b1, -R2, -R2], abs=1e-5)


def test_the_oracle_scorer_gives_the_step_credit_of_a_perfect_prm_by_hand():
    from prmflow.prm.oracle import OracleScorer

    # a=5; b=a+3 (8); c=b*2 (16). c0 right; c1 wrong at its second step: oracle steps [1, 1 | 1, 0].
    texts = ["b=5+3=8\nc=8*2=16\n#### 16", "b=5+3=8\nc=8*2=17\n#### 17"]
    pieces = [["b=5+3=8", "\n", "c=8*2=16", "\n", "####", " 16"], ["b=5+3=8", "\n", "c=8*2=17", "\n", "####", " 17"]]
    rl = RLConfig(group_size=2, process_mode="step_min", weights={"outcome": 1.0, "process": 0.5, "length": 0.0})
    scorer = OracleScorer({"q\n": "a=5;b=a+3;c=b*2;c=?"})
    adv, stats = Rewarder(rl, scorer)(["q\n"] * 2, texts, ["16", "16"], [6, 6], pieces)
    # step rewards [1, 1 | 1, 0]: mean 0.75, unbiased std 0.5 -> [0.5, 0.5 | 0.5, -1.5]; min credit c0 0.5, c1 -1.5
    c0, c1 = R2 + 0.5 * 0.5, -R2 + 0.5 * -1.5
    assert adv[0].tolist() == pytest.approx([c0, c0, c0, c0, R2, R2], abs=1e-5)
    assert adv[1].tolist() == pytest.approx([c1, c1, c1, c1, -R2, -R2], abs=1e-5)
    assert stats["reward/process_step"] == pytest.approx(0.75)


def test_the_reuse_scorer_charges_a_dead_step_where_it_is_written_by_hand():
    from prmflow.prm.reuse import ReuseScorer

    # both right (outcome advantages 0); c1 also computes e, which nothing uses: steps [1, 1 | 1, 0, 1]
    texts = ["b=5+3=8\nc=8*2=16\n#### 16", "b=5+3=8\ne=5*2=10\nc=8*2=16\n#### 16"]
    pieces = [["b=5+3=8", "\n", "c=8*2=16", "\n", "####", " 16"], ["b=5+3=8", "\n", "e=5*2=10", "\n", "c=8*2=16", "\n", "####", " 16"]]
    rl = RLConfig(group_size=2, process_mode="step_delta", weights={"outcome": 1.0, "process": 0.5, "length": 0.0})
    adv, stats = Rewarder(rl, ReuseScorer({"q\n": "16"}))(["q\n"] * 2, texts, ["16", "16"], [6, 8], pieces)
    # mean 0.8, unbiased std sqrt(0.2): used 0.447214, dead -1.788854; progress credit c0 [0.447214, 0],
    # c1 [0.447214, -2.236068, 2.236068]; times the process weight 0.5
    u, d = 0.5 * 0.447214, 0.5 * 2.236068
    assert adv[0].tolist() == pytest.approx([u, u, 0, 0, 0, 0], abs=1e-5)
    assert adv[1].tolist() == pytest.approx([u, u, -d, -d, d, d, 0, 0], abs=1e-5)
    assert stats["reward/process_step"] == pytest.approx(0.8)


def test_step_scores_centred_only_without_the_std_by_hand():
    """rl.step_scale_by_std: false, own credit: the same two solutions as above, scores
    [1, 1 | 1, 0, 1], mean 0.8: used +0.2, dead -0.8 (with the std: +0.447, -1.789)."""
    from prmflow.prm.reuse import ReuseScorer

    texts = ["b=5+3=8\nc=8*2=16\n#### 16", "b=5+3=8\ne=5*2=10\nc=8*2=16\n#### 16"]
    pieces = [["b=5+3=8", "\n", "c=8*2=16", "\n", "####", " 16"], ["b=5+3=8", "\n", "e=5*2=10", "\n", "c=8*2=16", "\n", "####", " 16"]]
    rl = RLConfig(group_size=2, process_mode="step_own", step_scale_by_std=False, weights={"outcome": 1.0, "process": 0.5, "length": 0.0})
    adv, _ = Rewarder(rl, ReuseScorer({"q\n": "16"}))(["q\n"] * 2, texts, ["16", "16"], [6, 8], pieces)
    u, d = 0.5 * 0.2, 0.5 * -0.8
    assert adv[0].tolist() == pytest.approx([u, u, u, u, 0, 0], abs=1e-6)
    assert adv[1].tolist() == pytest.approx([u, u, d, d, u, u, 0, 0], abs=1e-6)


def test_with_the_process_term_off_the_prm_scores_only_monitor_steps():
    """rl.prm_monitor_every: the scorer is asked only when the step is a monitor step (or the
    term is on); the advantages are the outcome's either way."""
    calls = []

    class Counting(StepScorer):
        def score(self, prompts, texts, finished=None):
            calls.append(len(texts))
            return super().score(prompts, texts, finished)

    rl = RLConfig(group_size=2, weights={"process": 0.0})
    args = (["q\n"] * 2, ["a=1\n#### 3", "a=1\n#### 4"], ["3", "3"], [5, 5], [list("a=1\n#### 3"), list("a=1\n#### 4")])
    off, s_off = Rewarder(rl, Counting())(*args, monitor=False)
    on, s_on = Rewarder(rl, Counting())(*args, monitor=True)
    assert calls == [2] and "monitor/prm_outcome_disagreement" in s_on and "monitor/prm_outcome_disagreement" not in s_off
    assert all(torch.equal(a, b) for a, b in zip(off, on))
    Rewarder(rl.model_copy(update={"weights": {"process": 0.5}, "process_mode": "sequence"}), Counting())(*args, monitor=False)
    assert calls == [2, 2]  # the term on: scored whatever the monitor cadence


def test_outcome_last_step_scores_each_completions_last_step_by_its_outcome():
    """The PRM scores the right completion's steps [0.9, 0.8] and the wrong one's [0.9, 0.2].
    With ``rl.outcome_last_step`` their last steps count as 1.0 and 0.0 (their outcomes): the
    right one's last step gains credit, the wrong one's loses some."""
    texts = ["a=1\nb=2\n#### 2", "a=1\nb=5\n#### 5"]
    pieces = [["a=1", "\n", "b=2", "\n", "####", " 2"], ["a=1", "\n", "b=5", "\n", "####", " 5"]]
    args = (["q\n"] * 2, texts, ["2", "2"], [6, 6], pieces, [True, True])
    base = dict(group_size=2, process_mode="step_delta", weights={"process": 1.0}, step_scale_by_std=False)
    plain, _ = Rewarder(RLConfig(**base), FixedScorer())(*args)
    last, _ = Rewarder(RLConfig(**base, outcome_last_step=True), FixedScorer())(*args)
    assert last[0][2] > plain[0][2] and last[1][2] < plain[1][2]  # tokens of the second step

    class HighOnWrong:  # a PRM that likes the wrong completion's steps too
        def score(self, prompts, texts, finished=None):
            return [[0.9, 0.8], [0.9, 0.8]]

    _, plain_stats = Rewarder(RLConfig(**base), HighOnWrong())(*args)
    _, stats = Rewarder(RLConfig(**base, outcome_last_step=True), HighOnWrong())(*args)
    # the PRM's monitors judge the PRM's own scores, not the outcome put in their place
    assert stats["monitor/prm_outcome_disagreement"] == plain_stats["monitor/prm_outcome_disagreement"] == 0.5
    assert stats["reward/process_step"] == plain_stats["reward/process_step"] == pytest.approx(0.85)
