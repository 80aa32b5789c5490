from reward.parse import extract_answer, join_solution, normalize_number, split_steps, strip_calculator


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
    assert normalize_number("x") is None
