import random

import pytest

from prmflow.problems.synthetic import (
    apply_op,
    format_question,
    generate_problems,
    make_chain,
    oracle_first_error,
    oracle_step_labels,
    parse_question,
)
from reward.parse import extract_answer, split_steps

Q = "a=7;b=a*3;c=b-4;c=?"  # b = 21, c = 17
GOOD = "b=7*3=21\nc=21-4=17\n#### 17"


def test_apply_op_is_modular():
    assert apply_op(7, "*", 3, 100) == 21
    assert apply_op(3, "-", 4, 100) == 99
    assert apply_op(98, "+", 5, 100) == 3


def test_generator_is_seeded_and_respects_difficulty():
    a = generate_problems(50, seed=1, min_steps=2, max_steps=5)
    assert a == generate_problems(50, seed=1, min_steps=2, max_steps=5)
    assert a != generate_problems(50, seed=2, min_steps=2, max_steps=5)
    for p in a:
        assert 2 <= p["difficulty"] <= 5
        assert len(p["steps"]) == p["difficulty"] == len(split_steps(p["answer"]))
        assert extract_answer(p["answer"]) == p["final_answer"]
        assert oracle_step_labels(p["question"], p["answer"]) == [True] * p["difficulty"]
        assert oracle_first_error(p["question"], p["answer"]) is None


def test_question_roundtrip_and_reference_steps():
    chain = parse_question(Q)
    assert format_question(chain) == Q
    assert chain.reference_steps() == ["b=7*3=21", "c=21-4=17"]
    assert chain.answer == 17
    c = make_chain(random.Random(0), 4)
    assert parse_question(format_question(c)) == c


@pytest.mark.parametrize("bad", ["", "a=7", "a=7;b=c+1;b=?", "a=x;b=a+1;b=?", "a=7;b=a/2;b=?"])
def test_parse_question_rejects_other_text(bad):
    with pytest.raises(ValueError):
        parse_question(bad)


def test_oracle_labels_prefix_correctness():
    # wrong result in step 1: it and everything after are wrong, even a locally right step 2
    assert oracle_step_labels(Q, "b=7*3=22\nc=22-4=18\n#### 18") == [False, False]
    assert oracle_first_error(Q, "b=7*3=22\nc=22-4=18\n#### 18") == 0
    # right first step, wrong carried value
    assert oracle_step_labels(Q, "b=7*3=21\nc=12-4=8\n#### 8") == [True, False]
    assert oracle_first_error(Q, "b=7*3=21\nc=12-4=8\n#### 8") == 1
    # an extra step beyond the chain is wrong
    assert oracle_step_labels(Q, GOOD.replace("#### 17", "d=17+1=18\n#### 18")) == [True, True, False]
    assert oracle_step_labels(Q, GOOD) == [True, True]


def test_oracle_first_error_on_missing_steps_or_answer():
    assert oracle_first_error(Q, "b=7*3=21\n#### 21") == 1
    assert oracle_first_error(Q, "b=7*3=21\nc=21-4=17\n#### 16") == 2
    assert oracle_first_error(Q, GOOD) is None
