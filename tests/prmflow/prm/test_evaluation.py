"""Evaluating scorers: the threshold is chosen on calibration records and judged on test records
only; calibration of nested scores (the rest runs in tests/tasks/test_train_prm.py)."""

import pytest

from prmflow.config import PrmConfig
from prmflow.prm.evaluation import Chains, calibrate_scores, calibration_split, evaluate_scorer


def test_calibrate_scores_keeps_shape_and_moves_the_threshold():
    out = calibrate_scores([[0.1, 0.2], []], 0.2)
    assert out[1] == [] and out[0] == pytest.approx([0.25, 0.5])


def rec(prompt: str, scores: list[float], soft: list[float]) -> dict:
    """A held-out record; the fake scorer reads its step scores from the steps' text."""
    return {"prompt": prompt, "completions": [str(s) for s in scores], "labels": [s > 0 for s in soft], "soft_labels": soft}


class FakeScorer:
    def score_steps(self, prompts, steps, batch_size):
        return [[float(s) for s in ss] for ss in steps]

    def score(self, prompts, texts, batch_size, finished=None):
        return [[] for _ in texts]


NO_CHAINS = Chains([], [], [], 1, None)


def test_threshold_is_chosen_on_calibration_records_and_judged_on_test_records():
    # calibration: any threshold in (0.05, 0.3] finds A's error at step 1 and none in B: 0.3 is
    # the one nearest 0.5. Test: at 0.3, C (correct) is flagged at step 0 (0.2 < 0.3) and D's error
    # is found: acc_correct 0, acc_erroneous 1, F1 0. (Tuned on the test records, any threshold in
    # (0.1, 0.2] would have scored F1 1.)
    calib = [rec("p", [0.3, 0.05], [1.0, 0.0]), rec("p", [0.4, 0.35], [1.0, 1.0])]
    test = [rec("q", [0.2, 0.9], [1.0, 1.0]), rec("q", [0.6, 0.1], [1.0, 0.0])]
    cfg = PrmConfig(calibrate=False)
    m, scores, t = evaluate_scorer(FakeScorer(), "prm", calib, test, NO_CHAINS, cfg)
    assert t == m["prm.threshold"] == 0.3
    assert m["prm.test_reach.first_error_acc_correct"] == 0.0
    assert m["prm.test_reach.first_error_acc_erroneous"] == 1.0
    assert m["prm.test_reach.first_error_f1"] == 0.0
    assert not [k for k in m if "heldout" in k or "calibration" in k]  # nothing reported on the calibration records
    assert scores["test"] == [[0.2, 0.9], [0.6, 0.1]]
    # a fixed threshold needs no calibration records
    m_fixed, _, t_fixed = evaluate_scorer(FakeScorer(), "prm", [], test, NO_CHAINS, PrmConfig(calibrate=False, threshold=0.15))
    assert t_fixed == 0.15 and m_fixed["prm.test_reach.first_error_f1"] == 1.0


def test_calibration_split_is_by_prompt_and_empty_with_a_fixed_threshold():
    held = [{"prompt": p, "i": i} for i, p in enumerate("aabbccdd")]
    calib, test = calibration_split(held, PrmConfig(calibration_fraction=0.5, seed=3))
    assert len(calib) == len(test) == 4 and not {r["prompt"] for r in calib} & {r["prompt"] for r in test}
    assert calibration_split(held, PrmConfig(calibration_fraction=0.5, seed=3)) == (calib, test)  # seeded
    assert calibration_split(held, PrmConfig(threshold=0.4)) == ([], held)


class LineScorer(FakeScorer):
    """Scores each step line of a chain 0.9; a chain with no step line gets ``[]``."""

    def score(self, prompts, texts, batch_size, finished=None):
        return [[0.9 for line in t.split("\n") if line and not line.startswith("####")] for t in texts]


def test_step_less_chains_are_counted_not_silently_left_out():
    problems = [{"final_answer": "3"}]
    chains = Chains(problems, ["q\n"] * 3, ["a=1\nb=3\n#### 3", "#### 3", "a=2\n#### 2"], 3, [[True, True], [], [False]])
    m, _, _ = evaluate_scorer(LineScorer(), "prm", [], [], chains, PrmConfig(calibrate=False, threshold=0.5))
    # 3 samples: 2 with steps judged against the oracle, 1 without steps left out and counted
    assert m["prm.chains.num_samples"] == 3
    assert m["prm.chains.num_scored"] == 2 and m["prm.chains.skipped_no_steps"] == 1
    assert m["prm.chains.first_error_num_correct"] + m["prm.chains.first_error_num_erroneous"] == 2
