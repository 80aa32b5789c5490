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


def test_step_ends_follow_the_split_mode_and_truncation():
    # BPE pieces: a sentence's space starts the next word's token, which belongs to the next step
    pieces = ["Half", " is", " 24", ".", " So", " 72", ".", ""]  # "" = EOS decoded without special tokens
    assert step_end_positions(pieces, "sentence", finished=True) == [4, 8]  # the last step takes EOS
    assert step_end_positions(pieces[:-1], "sentence", finished=False) == [4]  # "So 72." may go on
    assert step_end_positions(pieces, "line", finished=True) == [8]  # one line: one step
    para = ["A", ".\n", "B", ".\n\n", "C", ".", ""]
    assert step_end_positions(para, "paragraph", finished=True) == [4, 7]
    # cut mid-line: the partial last line has no end; finished, it ends at the last token
    assert step_end_positions(["a=1", "\n", "The", " total"]) == [2]
    assert step_end_positions(["a=1", "\n", "The", " total", ""], finished=True) == [2, 5]


def test_step_ends_agree_with_split_steps_in_every_mode():
    text_pieces = ["x", " =", " 1", ".", " y", " =", " 2", ".\n\n", "z", " =", " 3", ".\n", "####", " 3", ""]
    text = "".join(text_pieces)
    for mode in ("line", "sentence", "paragraph"):
        for finished in (True, False):
            ends = step_end_positions(text_pieces, mode, finished)
            assert len(ends) == len(split_steps(text, mode, finished)), (mode, finished)
            assert ends == sorted(set(ends))
