from reward.parse import split_steps
from reward.steps import step_end_positions


def test_step_end_positions_match_split_steps():
    pieces = ["b", "=", "7", "*", "3", "=", "21", "\n", "c", "=", "17", "\n", "####", " ", "17", "</s>"]
    assert step_end_positions(pieces) == [8, 12]
    assert len(step_end_positions(pieces)) == len(split_steps("".join(pieces[:-1])))


def test_step_end_positions_multi_newline_tokens_and_blank_lines():
    # a BPE-style tokenizer may put ".\n\n" in one token; blank lines are not steps
    pieces = ["x = 1.\n\n", "y", " = 2\n", "\n", "#### 2\n", "z\n"]
    assert step_end_positions(pieces) == [1, 3]
    assert step_end_positions(["no newline at all"]) == []
