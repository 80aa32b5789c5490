import pytest

from reward.parse import extract_answer, join_solution, join_steps, read_number, split_steps, strip_calculator


def test_split_steps_stops_at_final_line_and_skips_blanks():
    assert split_steps("b=7*3=21\n\n c=21-4=17 \n#### 17\nd=1") == ["b=7*3=21", "c=21-4=17"]


def test_split_steps_without_final_line_keeps_all_lines():
    assert split_steps("x\ny") == ["x", "y"]


def test_extract_answer_normalises_numbers():
    assert extract_answer("a\n#### 1,234") == "1234"
    assert extract_answer("#### 4.0") == "4"
    assert extract_answer("#### -0") == "0"
    assert extract_answer("#### 17 apples") == "17"


def test_extract_answer_first_marker_wins_and_missing_is_none():
    assert extract_answer("#### 3\n#### 4") == "3"
    assert extract_answer("no answer here") is None
    assert extract_answer("####   ") is None


def test_non_numeric_answer_kept_verbatim():
    assert extract_answer("#### \\frac{1}{2}") == "\\frac{1}{2}"
    assert extract_answer("#### 1/2") == "1/2"
    assert extract_answer("#### $18") == "18"
    assert extract_answer("#### 50%") == "50"


def test_strip_calculator_and_roundtrip():
    assert strip_calculator("48/2 = <<48/2=24>>24 clips") == "48/2 = 24 clips"
    sol = join_solution(["b=1+2=3"], "3")
    assert sol == "b=1+2=3\n#### 3"
    assert split_steps(sol) == ["b=1+2=3"] and extract_answer(sol) == "3"


@pytest.mark.parametrize(
    "text, number",
    [
        ("1,234", "1234"),
        ("1,234,567", "1234567"),
        ("-2.50", "-2.5"),
        ("$18", "18"),
        ("$ 18.00", "18"),
        ("18%", "18"),
        ("7.", "7"),  # a sentence's full stop
        ("0.50", "0.5"),
        ("-0", "0"),
        ("12 dollars", "12"),  # a unit word, no second number
        ("1234", "1234"),
    ],
)
def test_read_number_accepts_one_number(text, number):
    assert read_number(text) == number


@pytest.mark.parametrize(
    "text",
    [
        "3 1/2",  # a mixed number is not 3
        "2,5",  # a decimal comma is not 25
        "1 234",  # spaced thousands are not 1
        "1,2345",  # commas only in groups of three
        "12,34,567",
        "3 and 4",  # two numbers
        "1/2",  # an expression, not a number
        "x",
        "",
        "1.2.3",
    ],
)
def test_read_number_refuses_anything_but_one_number(text):
    assert read_number(text) is None


def test_extract_answer_keeps_ambiguous_answers_as_text():
    # read as "3" / "1" / "25" these would match a wrong reference; kept raw, the verifier
    # compares them as expressions instead
    assert extract_answer("#### 3 1/2") == "3 1/2"
    assert extract_answer("#### 1 234") == "1 234"
    assert extract_answer("#### 2,5") == "2,5"
    assert extract_answer("#### 18 dollars") == "18"
    assert extract_answer("#### -2.50") == "-2.5"
    assert extract_answer("#### 7.") == "7"


# --------------------------------------------------------------------------- answer rules

ALL = ["####", "boxed", "answer_is", "last_number"]


@pytest.mark.parametrize(
    "text, rules, answer",
    [
        # each rule on what instruct models write
        ("Natalia sold 72 clips.\n#### 72", ["####"], "72"),
        ("So she sold $\\boxed{72}$ clips.", ["boxed"], "72"),
        ("The answer is 72.", ["answer_is"], "72"),
        ("**Answer:** 72", ["answer_is"], "72"),
        ("**Final Answer:** $1,000", ["answer_is"], "1000"),
        ("Final answer: 3.50 dollars", ["answer_is"], "3.5"),
        ("the answer is: \\boxed{72}", ["answer_is"], "72"),
        ("She sold 48 + 24 = 72 clips.", ["last_number"], "72"),
        # the order decides: the first rule that finds an answer wins
        ("\\boxed{5}\n#### 6", ["####", "boxed"], "6"),
        ("\\boxed{5}\n#### 6", ["boxed", "####"], "5"),
        ("no marker, 41 then 42", ["####", "boxed", "answer_is"], None),
        ("no marker, 41 then 42", ALL, "42"),
        # nested braces, LaTeX kept for the verifier
        ("$\\boxed{\\frac{1}{2}}$", ["boxed"], "\\frac{1}{2}"),
        ("\\fbox{-3}", ["boxed"], "-3"),
        # first complete box counts; a box that never closes (cut at the budget) is no answer
        ("\\boxed{1} then \\boxed{2}", ["boxed"], "1"),
        ("so \\boxed{72", ["boxed"], None),
        ("\\boxed{} \\boxed{9}", ["boxed"], "9"),
        # words are not answers: "not 5" must not read as 5, "5 or 6" is only 5
        ("The answer is not 5. The answer is 6.", ["answer_is"], "6"),
        ("The answer is that we cannot know.", ["answer_is"], None),
        ("The answer is 5 or 6.", ["answer_is"], "5"),
        ("the answer is $\\frac{3}{4}$.", ["answer_is"], "\\frac{3}{4}"),
        ("The answer is $72, and she spent $10 more.", ["answer_is"], "72"),  # dollars, not $...$ math
        ("The answer is $-3$.", ["answer_is"], "-3"),
        ("An answerable question: 7", ["answer_is"], None),  # "answerable" is not "answer:"
        ("Final answer = 12", ["answer_is"], "12"),
        # a sentence's full stop or a decimal point
        ("The answer is 2.5.", ["answer_is"], "2.5"),
        ("The answer is 7.", ["answer_is", "last_number"], "7"),
        # last_number: signs, thousands, fractions; a hyphen between numbers is not a sign
        ("5-3=2 and then -4", ["last_number"], "-4"),
        ("from 5-3", ["last_number"], "3"),
        ("a total of 1,234 apples", ["last_number"], "1234"),
        ("half: 1/2", ["last_number"], "1/2"),
        ("nothing here", ["last_number"], None),
        # the #### rule as before: first marker, empty marker
        ("####   \n\\boxed{4}", ["####", "boxed"], "4"),
    ],
)
def test_answer_rules_by_hand(text, rules, answer):
    assert extract_answer(text, rules) == answer


def test_unknown_answer_rule_names_the_registered_ones():
    with pytest.raises(ValueError, match=r"unknown answer rule 'boxd'; registered: \['####', 'answer_is', 'boxed', 'last_number'\]"):
        extract_answer("#### 1", ["boxd"])


# --------------------------------------------------------------------------- step splits


def test_sentence_and_paragraph_steps():
    text = "Natalia sold 48/2 = 24 clips in May. She sold 48+24 = 72 in all!\nSo 72.\n#### 72"
    assert split_steps(text, "sentence") == ["Natalia sold 48/2 = 24 clips in May.", "She sold 48+24 = 72 in all!", "So 72."]
    assert split_steps("She paid $2.50 each. Total 5.", "sentence") == ["She paid $2.50 each.", "Total 5."]  # no split in 2.50
    para = "First, May: 24.\nThat is half.\n\n  \nThen 48+24 = 72.\n\n#### 72"
    assert split_steps(para, "paragraph") == ["First, May: 24.\nThat is half.", "Then 48+24 = 72."]
    with pytest.raises(ValueError, match="unknown step split 'word'"):
        split_steps("a", "word")


@pytest.mark.parametrize(
    "text, mode, finished, steps",
    [
        ("a=1\nb=2\nThe total", "line", False, ["a=1", "b=2"]),  # cut mid-line: not a step
        ("a=1\nb=2\nThe total", "line", True, ["a=1", "b=2", "The total"]),  # ended with EOS: a step
        ("a=1\nb=2\n", "line", False, ["a=1", "b=2"]),  # cut right after a newline: all closed
        ("a=1\n#### 3 and then some", "line", False, ["a=1"]),  # the answer line closes the reasoning
        ("A is 1. B is", "sentence", False, ["A is 1."]),
        ("A is 1. B is 2.", "sentence", False, ["A is 1."]),  # "2." may go on ("2.5"): not closed
        ("One.\n\nTwo\nmore", "paragraph", False, ["One."]),
        ("Only a cut-off sentence", "line", False, []),
    ],
)
def test_a_cut_off_last_step_is_not_a_step(text, mode, finished, steps):
    assert split_steps(text, mode, finished) == steps


def test_join_steps_is_what_rollouts_continue():
    assert join_steps(["a.", "b."], 0, "sentence") == "a.\n"
    assert join_steps(["p1\nx", "p2"], None, "paragraph") == "p1\nx\n\np2\n\n"
    for mode in ("line", "sentence", "paragraph"):
        steps = ["First 1.", "Then 2."]
        assert split_steps(join_steps(steps, None, mode) + "#### 2", mode) == steps
