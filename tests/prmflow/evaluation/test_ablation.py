import pytest

from prmflow.evaluation.ablation import (
    ARMS,
    DEFAULT_ARMS,
    ArmRun,
    estimate,
    markdown,
    mean_curve,
    ratio_estimate,
    short_of_needed,
    steps_to_reach,
    summarize,
    two_level_interval,
)


def run(arm, seed, curve, correct, tokens=None, difficulty=None, unneeded=None, steps=None, auc=None):
    n = len(correct)
    return ArmRun(
        arm,
        seed,
        curve,
        correct=correct,
        tokens=tokens or [10] * n,
        steps=steps or [2] * n,
        unneeded=unneeded if unneeded is not None else [0] * n,
        difficulty=difficulty or [2] * (n // 2) + [8] * (n - n // 2),
        prm_auc=auc or {},
    )


def test_mean_curve_uses_common_steps_and_steps_to_reach():
    a = ArmRun("x", 1, [(0, 0.2), (10, 0.4), (20, 0.6)])
    b = ArmRun("x", 2, [(0, 0.4), (10, 0.6)])
    assert mean_curve([a, b]) == [(0, pytest.approx(0.3)), (10, pytest.approx(0.5))]
    assert steps_to_reach([(0, 0.3), (10, 0.5), (20, 0.7)], 0.5) == 10
    assert steps_to_reach([(0, 0.3)], 0.5) is None


def test_intervals_cover_the_mean_and_widen_with_disagreeing_seeds():
    same = [[1.0, 0.0, 1.0, 0.0]] * 5
    apart = [[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]] * 2 + [[1.0, 0.0, 1.0, 0.0]]
    lo1, hi1 = two_level_interval(same)
    lo2, hi2 = two_level_interval(apart)
    assert lo1 <= 0.5 <= hi1 and lo2 <= 0.5 <= hi2
    assert hi2 - lo2 > hi1 - lo1  # seed-to-seed spread counts, not only problem noise
    assert two_level_interval([[0.25] * 8] * 3) == (0.25, 0.25)
    assert estimate([[1, 0], [1, 1]])["mean"] == 0.75


def test_a_ratio_of_sums_resamples_its_pairs_together():
    # 1 unneeded of 4 steps, 3 of 4: 4 / 8
    r = ratio_estimate([[1, 3]], [[4, 4]])
    assert r["mean"] == 0.5 and 0.25 <= r["lo"] <= r["hi"] <= 0.75


def test_summarize_against_the_outcome_only_baseline_by_hand():
    runs = []
    for seed in (1, 2):
        runs.append(run("outcome_only", seed, [(0, 0.3), (10, 0.35), (20, 0.4)], [True, False, True, False], tokens=[50] * 4))
        runs.append(
            run("hybrid_step_min", seed, [(0, 0.3), (10, 0.45), (20, 0.5)], [True, True, True, False], tokens=[40] * 4, auc={"start": 0.9})
        )
    s = summarize(runs, n_boot=200)
    h, b = s["hybrid_step_min"], s["outcome_only"]
    # outcome-only ends at 0.4 (step 20); the hybrid curve first reaches it at step 10
    assert h["steps_to_baseline_final"]["mean"] == 10 and h["fraction_of_baseline_steps"] == 0.5
    assert b["steps_to_baseline_final"]["mean"] == 20
    assert h["final_acc"]["mean"] == 0.75 and b["final_acc"]["mean"] == 0.5
    # paired: problem 2 turns right in both seeds, the rest agree: +1/4
    assert h["final_acc_vs_baseline"]["mean"] == pytest.approx(0.25)
    # hardest = difficulty 8 = problems 3 and 4: hybrid [T, F], outcome-only [T, F]
    assert h["hardest_difficulty"] == 8 and h["hardest_acc_vs_baseline"]["mean"] == 0.0
    assert h["tokens_vs_baseline"] == pytest.approx(-0.2)
    assert h["prm_auc_start"]["mean"] == 0.9 and "prm_auc_end" not in h
    table = markdown(s)
    assert "| hybrid_step_min | 2 | 0.300 | 0.750 [" in table and "never" not in table


def test_short_of_needed_counts_solutions_that_skip_needed_steps_by_hand():
    # difficulty = needed steps (dag). Problem 1: 4 steps, 1 distractor, needs 3: complete.
    # Problem 2: 2 steps, none distractors, needs 3: short. Problem 3: 5 steps, 3 distractors, needs 3: short.
    # Problem 4: 8 steps, 0 distractors, needs 8: complete. So 2 of 4.
    r = run("x", 1, [(0, 0.1)], [True, False, False, True], steps=[4, 2, 5, 8], unneeded=[1, 0, 3, 0], difficulty=[3, 3, 3, 8])
    assert short_of_needed(r) == [0.0, 1.0, 1.0, 0.0]
    assert summarize([r], n_boot=50)["x"]["short_of_needed"]["mean"] == 0.5
    no_oracle = run("x", 1, [(0, 0.1)], [True, False], unneeded=[])  # chain, real data: no unneeded counts
    assert short_of_needed(no_oracle) == [] and summarize([no_oracle], n_boot=50)["x"]["short_of_needed"] is None


def test_no_steps_to_reach_when_the_baseline_did_not_improve():
    runs = [
        run("outcome_only", 7, [(0, 0.43), (10, 0.33), (20, 0.36)], [True, False]),
        run("hybrid_seq", 7, [(0, 0.43), (10, 0.35), (20, 0.37)], [True, False]),
    ]
    s = summarize(runs, n_boot=50)
    assert "steps_to_baseline_final" not in s["hybrid_seq"] and s["hybrid_seq"]["start_acc"] == 0.43


def test_the_arms_are_the_issue_s_six_and_the_oracle_arm_scores_with_the_oracle():
    assert DEFAULT_ARMS == ["outcome_only", "hybrid_seq", "hybrid_step_min", "oracle_step_min", "outcome_length", "hybrid_length"]
    assert "rl.process_scorer=oracle" in ARMS["oracle_step_min"]
    assert any(o.startswith("rl.weights.length_group=") for o in ARMS["hybrid_length"])
    assert set(DEFAULT_ARMS) <= set(ARMS)


def test_an_arm_run_round_trips_through_json():
    import json

    r = run("outcome_only", 3, [(0, 0.1), (5, 0.2)], [True, False], auc={"start": 0.8, "end": 0.7})
    assert ArmRun.from_dict(json.loads(json.dumps(r.to_dict()))) == r


def test_the_baseline_reaches_its_own_final_whatever_the_order_and_no_nan_bound():
    """Runs in any order: the baseline reaches its own final mean at its last step (float sums
    in another order once missed it by an ulp), and a bound whose resamples sometimes never
    reach is a step or None, never nan (interpolating towards inf)."""
    accs = [(0.1, 0.3), (0.2, 0.7), (0.3, 0.1)]  # 0.3 + 0.7 + 0.1 in another order differs in the last bit
    runs = [ArmRun("outcome_only", seed, [(0, a), (10, b)], correct=[True]) for seed, (a, b) in zip((3, 1, 2), accs)]
    runs += [ArmRun("x", seed, [(0, 0.2), (10, 0.3 if seed == 1 else 0.0)], correct=[True]) for seed in (1, 2, 3)]
    s = summarize(runs, n_boot=200)
    assert s["outcome_only"]["steps_to_baseline_final"]["mean"] == 10
    lo, hi = s["outcome_only"]["steps_to_baseline_final"]["lo"], s["outcome_only"]["steps_to_baseline_final"]["hi"]
    assert lo == 10 and hi in (10, None)
    x = s["x"]["steps_to_baseline_final"]
    assert x["mean"] is None and all(v is None or v == 10 for v in (x["lo"], x["hi"]))
