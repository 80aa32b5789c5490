import pytest

from reward.parse import extract_answer, join_solution, read_number, split_steps, strip_calculator


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
