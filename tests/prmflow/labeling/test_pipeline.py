"""Labelling with a fake policy: methods, shared rollouts, metrics against the oracle."""

from __future__ import annotations

import pytest

from prmflow.config import LabelConfig, ModelConfig
from prmflow.labeling.methods import MC_SOFT_THRESHOLD
from prmflow.labeling.pipeline import label_solutions
from prmflow.labeling.report import comparison_table
from prmflow.labeling.sampler import rollout_token_budget
from prmflow.labeling.solutions import make_solutions
from prmflow.lm.prompts import format_prompt
from prmflow.problems.synthetic import parse_question
from reward.parse import join_solution, reference_answer

QUESTION = "a=7;b=a*3;c=b-4;d=c+5;d=?"  # reference: b=7*3=21, c=21-4=17, d=17+5=22, #### 22
PROBLEM = {
    "id": "p0",
    "question": QUESTION,
    "answer": "b=7*3=21\nc=21-4=17\nd=17+5=22\n#### 22",
    "final_answer": "22",
    "steps": ["b=7*3=21", "c=21-4=17", "d=17+5=22"],
    "source": "synthetic",
    "difficulty": 3,
}
SOLUTIONS = [
    "b=7*3=21\nc=21-4=17\nd=17+5=22\n#### 22",  # A correct                 oracle T T T
    "b=7*3=21\nc=21-4=18\nd=18+5=23\n#### 23",  # B error at step 1         oracle T F F
    "b=7*3=20\nc=20-4=16\n#### 16",  # C error at step 0                    oracle F F
    "b=7*3=21\nc=21-4=17\n#### 17",  # D right steps, stops early           oracle T T
    "#### 22",  # E no step: skipped, but counts as solved
    "b=7*3=21\nc=21-4=17\nd=17+5=22\n#### 23",  # F right steps, wrong answer line oracle T T T
]
PROMPT = format_prompt(QUESTION, ModelConfig(), None)
ORACLE = [[True, True, True], [True, False, False], [False, False], [True, True], [True, True, True]]


def oracle_policy(success: float, calls: list):
    """A fake policy: from a prefix that is right so far, the ``j``-th rollout of a stream
    succeeds when ``floor((j + 1) * success) > floor(j * success)``: ``round(success * n)`` of any
    ``n`` consecutive rollouts, spread evenly (0.25: the 4th, 8th, ...), so that a probe drawn in
    waves meets the same rate; from a wrong prefix none does. A stream is one method family
    (``desc``'s first word) rolling out one prompt, the i-th time it appears in a call (two
    solutions with the same prefix are two streams). Records its calls."""
    drawn: dict[tuple, int] = {}

    def rollout_fn(prompts, n, *, seed, desc):
        calls.append((desc, len(prompts), n))
        out, seen = [], {}
        for p in prompts:
            question, *prefix = [line for line in p.split("\n") if line]
            chain = parse_question(question)
            ref = chain.reference_steps()
            rest = join_solution(ref[len(prefix) :], str(chain.answer))
            stream = (p, desc.split()[0], seen.setdefault(p, 0))
            seen[p] += 1
            for _ in range(n):
                j = drawn[stream] = drawn.get(stream, -1) + 1
                good = prefix == ref[: len(prefix)] and int((j + 1) * success) > int(j * success)
                out.append(rest if good else "x=1\n#### 99")
        return out

    return rollout_fn


def solutions():
    return make_solutions([PROBLEM], SOLUTIONS, len(SOLUTIONS), [PROMPT])


def test_make_solutions_splits_checks_and_gets_oracle():
    sols = solutions()
    assert [s.correct for s in sols] == [True, False, False, False, True, False]
    assert [s.oracle for s in sols if s.steps] == ORACLE
    assert sols[4].steps == []
    assert sols[0].prompt == QUESTION + "\n"
    assert reference_answer("1,000.0") == "1000"


def test_perfect_policy_labels_match_the_oracle_and_costs_are_counted():
    calls = []
    cfg = LabelConfig(method="mc_hard", rollouts=4, compare_methods=True)
    rows, m, _ = label_solutions(solutions(), oracle_policy(1.0, calls), cfg)

    assert [r["labels"] for r in rows] == ORACLE
    assert [r["oracle_labels"] for r in rows] == ORACLE
    assert [r["correct"] for r in rows] == [True, False, False, False, False]
    assert m["skipped_no_steps"] == 1 and m["num_labelled_solutions"] == 5 and m["num_solutions"] == 6
    assert m["num_steps"] == 13
    assert m["policy_solve_rate"] == pytest.approx(2 / 6)
    for method in ("mc_hard", "mc_soft", "first_error"):
        assert m[f"{method}.step_agreement"] == 1.0
        assert m[f"{method}.first_error_acc"] == 1.0
        assert m[f"{method}.bad_f1"] == 1.0
    assert m["mc_soft.good_auc"] == 1.0
    assert m["oracle.bad_rate"] == pytest.approx(4 / 13)

    # MC: every step prefix of the wrong-answer solutions x 4; A's answer is right, so all its
    # steps are good without a rollout: B 3 + C 2 + D 2 + F 3 = 10 prefixes.
    assert [r["rollouts"] for r in rows] == [0, 12, 8, 8, 12]
    assert m["mc_hard.rollouts"] == m["mc_soft.rollouts"] == 40
    assert m["mc_hard.rollouts_per_step"] == pytest.approx(40 / 13)
    # First error reads the same rollout streams MC sampled (no new sampling), in waves 1, 1, 2:
    # a good probe stops at its first rollout, a bad one reads all 4. Gallop 0, 1, 3, then bisect:
    # B 0 (good, 1), 1 (bad, 4); C 0 (bad, 4); D 0, 1 (good, 1 + 1); F 0, 1, 2 (good, 1 + 1 + 1).
    assert m["first_error.rollouts"] == 5 + 4 + 2 + 3
    assert m["first_error.rollout_ratio_vs_mc"] == pytest.approx(14 / 40)
    assert calls == [("mc rollouts", 10, 4)]


def test_weak_policy_separates_mc_hard_from_mc_soft():
    # From a right prefix only 1 of 4 rollouts succeeds: soft 0.25 on good steps.
    cfg = LabelConfig(method="mc_soft", rollouts=4, compare_methods=True)
    rows, m, _ = label_solutions(solutions(), oracle_policy(0.25, []), cfg)
    assert rows[0]["soft_labels"] == [1.0, 1.0, 1.0]  # A's answer is right: known good, no rollout
    b = rows[1]
    assert b["soft_labels"] == [0.25, 0.0, 0.0]
    assert b["labels"] == [v >= MC_SOFT_THRESHOLD for v in b["soft_labels"]] == [False, False, False]
    assert b["method"] == "mc_soft"
    assert m["mc_hard.step_agreement"] == 1.0
    assert m["mc_soft.good_auc"] == 1.0  # the soft values still rank good above bad


def test_adaptive_rollouts_draw_more_only_where_every_rollout_failed():
    # From a right prefix only the 8th rollout of a stream succeeds. With 4 rollouts every prefix
    # reads bad; with max_rollouts 16 a prefix whose 4 all failed draws 4 more (the 8th succeeds:
    # good), then 8 more, and reads bad only once all 16 failed.
    plain = LabelConfig(method="mc_hard", rollouts=4, compare_methods=False)
    rows, m, _ = label_solutions(solutions(), oracle_policy(1 / 8, []), plain)
    assert [r["labels"] for r in rows] == [[True] * 3] + [[False] * len(o) for o in ORACLE[1:]]

    calls = []
    cfg = LabelConfig(method="mc_hard", rollouts=4, max_rollouts=16, compare_methods=True)
    rows, m, _ = label_solutions(solutions(), oracle_policy(1 / 8, calls), cfg)
    assert [r["labels"] for r in rows] == ORACLE
    # all 10 prefixes fail their first 4; the 6 right ones succeed at their 8th rollout; the 4
    # wrong ones (B1, B2, C0, C1) read 16. B 8 + 16 + 16, C 16 + 16, D 8 + 8, F 8 + 8 + 8.
    assert [r["rollouts"] for r in rows] == [0, 40, 32, 16, 24]
    assert calls == [("mc rollouts", 10, 4), ("mc rollouts 5-8", 10, 4), ("mc rollouts 9-16", 4, 8)]
    assert rows[1]["soft_labels"] == [1 / 8, 0.0, 0.0]  # mc_soft's value: successes over what it drew
    # first_error reads the same streams in waves 1, 1, 2, 4, 8 (no new sampling): a right probe
    # reads 8, a wrong one 16. B 0, 1; C 0; D 0, 1; F 0, 1, 2.
    assert m["first_error.step_agreement"] == 1.0
    assert m["first_error.rollouts"] == (8 + 16) + 16 + 2 * 8 + 3 * 8
    assert m["mc_soft.step_agreement"] < 1.0  # its hard label (soft >= 0.5) stays bad on 1/8


def test_max_rollouts_below_rollouts_is_refused():
    with pytest.raises(ValueError, match="max_rollouts"):
        LabelConfig(rollouts=8, max_rollouts=4)


def test_first_error_only_without_comparison():
    calls = []
    cfg = LabelConfig(method="first_error", rollouts=2, compare_methods=False)
    rows, m, _ = label_solutions(solutions(), oracle_policy(1.0, calls), cfg)
    assert [r["labels"] for r in rows] == ORACLE
    assert [r["soft_labels"] for r in rows] == [[float(x) for x in o] for o in ORACLE]
    # waves 1, 1, each request sampling only what the prefix's stream lacks:
    # round 1: B0 C0 D0 F0 (first rollout; C0 fails); round 2: B1 D1 F1 (first), C0 (second: bad);
    # round 3: F2 (first), B1 (second: bad). B 1 + 2, C 2, D 1 + 1, F 1 + 1 + 1.
    assert [r["rollouts"] for r in rows] == [0, 3, 2, 2, 3]
    assert calls == [
        ("first_error round 1", 4, 1),
        ("first_error round 2", 3, 1),
        ("first_error round 2", 1, 1),
        ("first_error round 3", 1, 1),
        ("first_error round 3", 1, 1),
    ]
    assert "mc_hard.rollouts" not in m and "first_error.rollout_ratio_vs_mc" not in m
    assert all(desc.startswith("first_error") for desc, _, _ in calls)
    assert "| first_error |" in comparison_table(m)
    # 13 oracle steps, 4 bad (B: 2, C: 2): the trivial labellers, for comparison
    assert m["oracle.bad_rate"] == m["baseline.all_bad.step_agreement"] == pytest.approx(4 / 13)
    assert m["baseline.all_good.step_agreement"] == pytest.approx(9 / 13)
    assert m["baseline.all_bad.bad_f1"] == pytest.approx(8 / 17)  # precision 4/13, recall 1
    assert m["baseline.all_good.first_error_acc"] == pytest.approx(3 / 5)  # A, D, F have no error
    assert m["first_error.balanced_accuracy"] == 1.0 and m["first_error.oracle_bad_rate"] == pytest.approx(4 / 13)


def test_comparison_on_a_subset_of_problems():
    other = dict(PROBLEM, id="p1", question="a=3;b=a+4;b=?", answer="b=3+4=7\n#### 7", final_answer="7", steps=["b=3+4=7"], difficulty=1)
    texts = SOLUTIONS + ["b=3+4=7\n#### 7", "b=3+4=8\n#### 8", "b=3+4=7\n#### 1", "#### 7", "b=3+4=7\n#### 7", "b=3+4=9\n#### 9"]
    sols = make_solutions([PROBLEM, other], texts, len(SOLUTIONS), [PROMPT, other["question"] + "\n"])
    cfg = LabelConfig(method="mc_hard", rollouts=4, compare_num_problems=1)
    rows, m, _ = label_solutions(sols, oracle_policy(1.0, []), cfg)
    assert len(rows) == m["mc_hard.solutions"] == 10 and m["first_error.solutions"] == 5
    assert m["mc_hard.rollouts"] == 40 + 4 * 3  # second problem: 3 wrong one-step solutions
    assert m["first_error.rollouts"] == 14
    assert m["first_error.rollout_ratio_vs_mc"] == pytest.approx(14 / 40)  # on problem p0 only
    assert m["mc_hard.step_agreement"] == m["first_error.step_agreement"] == 1.0


def test_no_oracle_for_other_sources():
    gsm = dict(PROBLEM, source="gsm8k")
    sols = make_solutions([gsm], SOLUTIONS[:2], 2, [PROMPT])
    rows, m, _ = label_solutions(sols, oracle_policy(1.0, []), LabelConfig(rollouts=2))
    assert m["oracle_solutions"] == 0 and "oracle_note" in m
    assert "mc_soft.step_agreement" not in m and "mc_soft.rollouts" in m
    assert all(r["oracle_labels"] == [] for r in rows)
    assert "no oracle" in comparison_table(m)


def test_rollout_budget_is_bounded_by_the_longest_reference():
    from prmflow.lm.models import build_tokenizer

    tok = build_tokenizer()
    cfg = LabelConfig(max_new_tokens=96)
    n = len(tok(PROBLEM["answer"], add_special_tokens=False)["input_ids"])
    assert rollout_token_budget([PROBLEM], tok, cfg) == min(96, -(-5 * n // 4) + 4)
    assert rollout_token_budget([PROBLEM], tok, LabelConfig(rollout_max_new_tokens=7)) == 7


def test_a_solution_cut_at_the_budget_keeps_its_closed_steps_only():
    # G was cut mid-step ("d=17+"): that line is not a step and gets no label; H was cut right
    # after a newline: both steps are closed; I is the same text as G but ended with EOS
    texts = ["b=7*3=21\nc=21-4=17\nd=17+", "b=7*3=21\nc=21-4=17\n", "b=7*3=21\nc=21-4=17\nd=17+"]
    sols = make_solutions([PROBLEM], texts, 3, [PROMPT], finished=[False, False, True])
    assert [s.steps for s in sols] == [["b=7*3=21", "c=21-4=17"], ["b=7*3=21", "c=21-4=17"], ["b=7*3=21", "c=21-4=17", "d=17+"]]
    assert [s.cut_step for s in sols] == [True, False, False]
    assert sols[0].oracle == [True, True]  # the oracle's labels of the same steps
    calls = []
    rows, m, _ = label_solutions(sols, oracle_policy(1.0, calls), LabelConfig(method="mc_hard", rollouts=2, compare_methods=False))
    assert [r["completions"] for r in rows][0] == ["b=7*3=21", "c=21-4=17"]
    assert rows[0]["labels"] == [True, True] and rows[2]["labels"] == [True, True, False]
    assert (m["truncation.solutions"], m["truncation.steps_dropped"]) == (2, 1)
    assert m["truncation.rate"] == pytest.approx(2 / 3)
    assert "cut-off last steps left unlabelled: 1" in comparison_table(m)


def test_label_quality_without_an_oracle_by_hand():
    # GSM8K-like source: no oracle. A weak policy (1 of 4 rollouts from a right prefix) makes
    # mc_soft (threshold 0.5) call right prefixes bad; first_error and mc_hard do not.
    gsm = dict(PROBLEM, source="gsm8k")
    sols = make_solutions([gsm], SOLUTIONS, len(SOLUTIONS), [PROMPT])
    rows, m, _ = label_solutions(sols, oracle_policy(0.25, []), LabelConfig(method="mc_soft", rollouts=4))
    assert "mc_soft.step_agreement" not in m  # nothing to compare with an oracle
    # labelled: A TTT, B TFF, C FF, D TT, F TTT (13 steps); mc_soft: A TTT (right answer: known), B FFF, C FF, D FF, F FFF
    assert m["mc_soft.bad_on_correct"] == m["mc_hard.bad_on_correct"] == m["first_error.bad_on_correct"] == 0.0
    # mc_hard and first_error agree on every step (the policy is monotone here); a good probe
    # succeeds at its 4th rollout, so first_error pays 4 for it too
    assert m["agree.mc_hard.first_error.step_agreement"] == 1.0 and m["agree.mc_hard.first_error.kappa"] == 1.0
    assert m["first_error.rollouts"] == 4 * 8  # B 0, 1; C 0; D 0, 1; F 0, 1, 2
    # mc_soft agrees with mc_hard on A's 3 steps and the 4 bad steps: 7 of 13
    assert m["agree.mc_hard.mc_soft.step_agreement"] == pytest.approx(7 / 13)
    assert m["agree.mc_hard.mc_soft.solutions"] == 5
    # same first bad step: A (none = none) and C (0 = 0); B (1 vs 0), D, F (none vs 0) differ
    assert m["agree.mc_hard.mc_soft.first_error_acc"] == pytest.approx(2 / 5)
    table = comparison_table(m)
    assert "| mc_hard vs first_error | 5 | 1.000 | 1.000 | 1.000 |" in table
    assert "each provably wrong" in table


def test_samples_markdown_shows_each_step_with_its_label():
    from prmflow.labeling.report import samples_markdown

    rows, _, _ = label_solutions(solutions(), oracle_policy(1.0, []), LabelConfig(method="mc_hard", rollouts=2, compare_methods=False))
    md = samples_markdown(rows, 2)
    assert md.startswith("# 2 labelled solutions (mc_hard)")
    assert "## p0/0: final answer right (reference 22)" in md and "## p0/1: final answer not right" in md
    assert "| 1 | BAD | 0.00 | c=21-4=18 |" in md and "| 0 | good | 1.00 | b=7*3=21 |" in md


def test_sentence_steps_are_labelled_with_rollouts_that_continue_a_newline_joined_prefix():
    from reward.parse import SolutionFormat

    fmt = SolutionFormat("sentence", ("answer_is",))
    gsm = dict(PROBLEM, source="gsm8k", final_answer="22")
    texts = ["First 7*3 is 21. Then 21-4 is 17. The answer is 23.", "First 7*3 is 20. The answer is 16."]
    sols = make_solutions([gsm], texts, 2, [PROMPT], fmt)
    assert sols[0].steps == ["First 7*3 is 21.", "Then 21-4 is 17.", "The answer is 23."] and not sols[0].correct
    seen = []

    def rollout_fn(prompts, n, *, seed, desc):
        seen.extend(prompts)
        return ["The answer is 22." if "21." in p else "The answer is 16." for p in prompts for _ in range(n)]

    rows, m, _ = label_solutions(sols, rollout_fn, LabelConfig(method="mc_hard", rollouts=2, compare_methods=False), fmt)
    assert PROMPT + "First 7*3 is 21.\nThen 21-4 is 17.\n" in seen  # steps joined one per line
    # the step that states the wrong answer is bad: every continuation keeps its "is 23"
    assert [r["labels"] for r in rows] == [[True, True, False], [False, False]]
