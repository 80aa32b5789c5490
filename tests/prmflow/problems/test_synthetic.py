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


# --- the dag task -------------------------------------------------------------------------------

from prmflow.problems.programs import parse_program  # noqa: E402
from prmflow.problems.synthetic import generate_dag_problems, make_dag, oracle_needed_steps, verbose_solution  # noqa: E402

DAG = "a=7;b=5;c=a*3;d=c-b;e=b+2;d=?"  # c = 21, d = 16 (needed); e = 7 (a distractor)


def test_dag_program_values_needed_and_reference_solutions():
    prog = parse_program(DAG)
    assert prog.values() == {"a": 7, "b": 5, "c": 21, "d": 16, "e": 7}
    assert prog.needed() == {"a", "b", "c", "d"}
    assert prog.reference_steps() == ["c=7*3=21", "d=21-5=16"]
    assert prog.reference_steps(verbose=True) == ["c=7*3=21", "d=21-5=16", "e=5+2=7"]
    assert prog.question() == DAG
    assert verbose_solution(DAG) == "c=7*3=21\nd=21-5=16\ne=5+2=7\n#### 16"


def test_dag_oracle_right_needed_and_wasteful_steps():
    verbose = "c=7*3=21\ne=5+2=7\nd=21-5=16\n#### 16"  # a distractor computed on the way: right, not needed
    assert oracle_step_labels(DAG, verbose) == [True, True, True]
    assert oracle_needed_steps(DAG, verbose) == [True, False, True]
    assert oracle_first_error(DAG, verbose) is None
    # d before c: its operand was not computed yet, so the step is wrong (and all after it)
    assert oracle_step_labels(DAG, "d=21-5=16\nc=7*3=21\n#### 16") == [False, False]
    # b's value looked up wrong
    assert oracle_step_labels(DAG, "c=7*3=21\nd=21-4=17\n#### 17") == [True, False]
    # computing c twice is a mistake, and a step for the literal b is not a step
    assert oracle_step_labels(DAG, "c=7*3=21\nc=7*3=21\n#### 21") == [True, False]
    assert oracle_step_labels(DAG, "b=5+0=5\n#### 5") == [False]
    # all right but the target never computed: the first error is the missing step
    assert oracle_first_error(DAG, "c=7*3=21\ne=5+2=7\n#### 7") == 2


def test_dag_generator_is_seeded_and_every_reference_solution_is_right():
    a = generate_dag_problems(200, seed=3, min_steps=2, max_steps=8)
    assert a == generate_dag_problems(200, seed=3, min_steps=2, max_steps=8)
    distractors = 0
    for p in a:
        prog = parse_program(p["question"])
        assert p["difficulty"] == len(p["steps"]) == len(prog.needed() & set(prog.derived))
        assert oracle_step_labels(p["question"], p["answer"]) == [True] * p["difficulty"]
        assert oracle_needed_steps(p["question"], p["answer"]) == [True] * p["difficulty"]
        verbose = verbose_solution(p["question"])
        assert all(oracle_step_labels(p["question"], verbose)) and oracle_first_error(p["question"], verbose) is None
        distractors += len(prog.derived) - p["difficulty"]
    assert 200 <= distractors <= 400  # 0..3 per question, 1.5 on average
    assert any(isinstance(e, int) and v != "a" for p in a for v, e in parse_program(p["question"]).assignments)  # looked-up digits


def test_make_dag_keeps_the_chain_arithmetic():
    prog = make_dag(random.Random(5), 6, max_distractors=3, literal_var_prob=1.0)
    for _x, _op, y in prog.derived.values():
        digit = prog.values()[y] if isinstance(y, str) else y
        assert 1 <= digit <= 9  # every step is "value op digit", as in the chain task


def test_reachable_labels_follow_the_answer_not_the_first_error():
    from prmflow.problems.synthetic import oracle_reachable_labels, oracle_step_labels

    q = "a=4;b=a*5;c=b+1;c=?"  # b = 20, c = 21
    assert oracle_reachable_labels(q, "b=4*5=20\nc=20+1=21\n#### 21") == [True, True]
    assert oracle_reachable_labels(q, "b=4*5=40\nc=40+1=41\n#### 41") == [False, False]
    # b is wrong, but the next step writes c's right value again: the answer survives
    slip = "b=4*5=30\nc=20+1=21\n#### 21"
    assert oracle_step_labels(q, slip) == [False, False]
    assert oracle_reachable_labels(q, slip) == [False, True]
    # 120 is 20 mod 100: wrong as written, yet every continuation of it is right
    assert oracle_step_labels(q, "b=4*5=120") == [False]
    assert oracle_reachable_labels(q, "b=4*5=120") == [True]
    assert oracle_reachable_labels(q, "garbage") == [True]  # writes nothing: a perfect completer finishes it


def test_needed_attempts_count_the_distractor_lines_each_needed_step_jumps():
    """Hand-counted on a=4;c=a+1;e=a*2;f=e+3;d=c*3;g=d-1;g=? : c, d and g are needed; e and f
    (between c and d) are distractors."""
    from prmflow.problems.programs import needed_attempts

    p = parse_program("a=4;c=a+1;e=a*2;f=e+3;d=c*3;g=d-1;g=?")  # c=5, e=8, f=11, d=15, g=14
    assert needed_attempts(p, "c=4+1=5\nd=5*3=15\ng=15-1=14\n#### 14") == [(0, True), (2, True), (0, True)]
    # walks e, then jumps f only
    assert needed_attempts(p, "c=4+1=5\ne=4*2=8\nd=5*3=15\ng=15-1=14\n#### 14") == [(0, True), (1, True), (0, True)]
    # a wrong distractor step is still a walk: nothing uses its value
    assert needed_attempts(p, "c=4+1=5\ne=4*2=9\nd=5*3=15\n#### 14") == [(0, True), (1, True)]
    # a line that names no variable is an attempt, and a wrong one
    assert needed_attempts(p, "c=4+1=5\nso 15\n#### 15") == [(0, True), (2, False)]
    # d attempted wrong (f's "+3" taken): counted, then nothing after it
    assert needed_attempts(p, "c=4+1=5\nd=5+3=8\ng=8-1=7\n#### 7") == [(0, True), (2, False)]
    # a step after every needed variable is computed (c again) is not an attempt
    assert needed_attempts(p, "c=4+1=5\nd=5*3=15\ng=15-1=14\nc=4+1=5\n#### 14") == [(0, True), (2, True), (0, True)]
