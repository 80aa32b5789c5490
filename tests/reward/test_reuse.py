"""Dead-step detection (reward.reuse): hand-worked solutions."""

from reward.reuse import numbers, solution_used_steps, used_steps


def test_a_distractor_and_a_chain_of_distractors_are_unused_and_needed_steps_are_used():
    # e is a distractor; f reads e but nothing reads f, so both are dead; c feeds d, d is the answer
    steps = ["b=5+3=8", "e=8*2=16", "f=16+1=17", "c=8*3=24", "d=24-4=20"]
    assert used_steps(steps, "#### 20") == [True, False, False, True, True]


def test_a_step_is_judged_by_its_result_so_a_result_equal_to_a_live_number_passes():
    # e's result 4 is an operand of the answer's step: taken as used (values, not names, are matched)
    assert used_steps(["b=5+3=8", "e=2+2=4", "d=8-4=4"], "#### 4") == [True, True, True]


def test_free_text_steps_and_numbers_with_commas_and_decimals():
    steps = ["She has 1,200 apples.", "Half of them is 600.", "Her dog is 3 years old.", "So 600 + 1,200 = 1,800 in all."]
    assert used_steps(steps, "#### 1800") == [True, True, False, True]
    assert numbers("It costs $2.50, or 250.00 cents") == ["2.5", "250"]


def test_solutions_cut_off_or_without_an_answer_line():
    # cut at the token budget: the unfinished last step is not a step, and what would have come next is unknown
    assert solution_used_steps("b=5+3=8\ne=5*2=10\nc=8*", finished=False) == [True, True]
    # ended without an answer line: the last step's result stands for the answer
    assert solution_used_steps("b=5+3=8\ne=5*2=10\nc=8*2=16", finished=True) == [True, False, True]
    assert solution_used_steps("b=5+3=8\nc=8*2=16\n#### 16") == [True, True]
    assert solution_used_steps("#### 16") == []
