from prmflow.evaluation.ablation import ArmRun, mean_curve, steps_to_reach, summarize


def report(acc, hard_acc, tokens):
    return {
        "overall": {"greedy_acc": acc, "pass@1": acc, "len_tokens_mean": tokens, "len_steps_mean": tokens / 10},
        "by_difficulty": {"2": {"greedy_acc": 0.9}, "8": {"greedy_acc": hard_acc}},
    }


def test_mean_curve_uses_common_steps_and_steps_to_reach():
    a = ArmRun("x", 1, [(0, 0.2), (10, 0.4), (20, 0.6)])
    b = ArmRun("x", 2, [(0, 0.4), (10, 0.6)])
    assert mean_curve([a, b]) == [(0, 0.30000000000000004), (10, 0.5)]
    assert steps_to_reach([(0, 0.3), (10, 0.5), (20, 0.7)], 0.5) == 10
    assert steps_to_reach([(0, 0.3)], 0.5) is None


def test_summarize_against_the_outcome_only_baseline():
    runs = [
        ArmRun("outcome_only", 7, [(0, 0.3), (10, 0.35), (20, 0.4)], report(0.4, 0.1, 50.0)),
        ArmRun("hybrid_step_min", 7, [(0, 0.3), (10, 0.45), (20, 0.5)], report(0.5, 0.2, 40.0)),
    ]
    s = summarize(runs)
    # baseline final accuracy 0.4; the hybrid curve first reaches it at step 10 of 20
    assert s["hybrid_step_min"]["steps_to_baseline_final"] == 10
    assert s["hybrid_step_min"]["fraction_of_baseline_steps"] == 0.5
    assert s["outcome_only"]["steps_to_baseline_final"] == 20
    assert abs(s["hybrid_step_min"]["tokens_vs_baseline"] - (-0.2)) < 1e-9
    assert abs(s["hybrid_step_min"]["hardest_vs_baseline"] - 0.1) < 1e-9
    assert s["hybrid_step_min"]["hardest_difficulty"] == "8"


def test_no_steps_to_reach_when_the_baseline_did_not_improve():
    runs = [
        ArmRun("outcome_only", 7, [(0, 0.43), (10, 0.33), (20, 0.36)], report(0.36, 0.1, 44.0)),
        ArmRun("hybrid_seq", 7, [(0, 0.43), (10, 0.35), (20, 0.37)], report(0.37, 0.1, 44.0)),
    ]
    s = summarize(runs)
    assert "steps_to_baseline_final" not in s["hybrid_seq"]
    assert s["hybrid_seq"]["start_greedy_acc"] == 0.43
