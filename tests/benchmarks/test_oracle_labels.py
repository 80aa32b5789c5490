"""benchmarks/oracle_labels.py: the oracle's step labels as stepwise supervision (prm.extra_data)."""

import doctest

from benchmarks import oracle_labels


def test_docstring_example():
    assert doctest.testmod(oracle_labels).failed == 0


def test_labels_are_the_oracles_and_a_solution_without_steps_is_counted():
    """a=5, b=a+1=6, c=b*2=12: a wrong b makes b and c wrong, even when c's own arithmetic is right."""
    q = "a=5;b=a+1;c=b*2;c=?"
    texts = ["b=5+1=6\nc=6*2=12\n#### 12", "b=5+1=7\nc=7*2=14\n#### 14", "#### 12", "b=5+1=6\nc=6*2=13\n#### 13"]
    records, no_steps = oracle_labels.oracle_records([q, q], ["P1", "P2"], texts, [True] * 4, 2, 100)
    assert no_steps == 1
    assert [r["labels"] for r in records] == [[True, True], [False, False], [True, False]]
    assert [r["prompt"] for r in records] == ["P1", "P1", "P2"]  # question-major: 2 solutions per question
    assert records[0]["completions"] == ["b=5+1=6", "c=6*2=12"]


def test_the_records_pass_the_prm_data_check(tmp_path):
    """What it writes is what prm.extra_data reads (validated as any external file)."""
    import json

    from prmflow.prm.data import read_stepwise

    records, _ = oracle_labels.oracle_records(["a=5;b=a+1;b=?"], ["a=5;b=a+1;b=?\n"], ["b=5+1=6\n#### 6"], [True], 1, 100)
    path = tmp_path / "o.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert [r["labels"] for r in read_stepwise(path)] == [[True]]
