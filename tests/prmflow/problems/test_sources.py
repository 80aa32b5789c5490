import json
import pickle
import time

import pytest

from prmflow.config import ColumnMapping, DataConfig
from prmflow.problems.sources import (
    DataError,
    iter_hf,
    iter_jsonl,
    normalize_question,
    problem_id,
    read_problems,
    resolve_source,
    synthetic_problems,
)
from reward.parse import extract_answer, split_steps

FIELDS = {"id", "question", "answer", "final_answer", "steps", "source", "difficulty"}
GSM_Q = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May."
GSM_A = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72"


def write_lines(path, lines):
    path.write_text("".join((ln if isinstance(ln, str) else json.dumps(ln)) + "\n" for ln in lines))
    return path


def write_parquet(path, rows):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def check_schema(rec):
    assert set(rec) == FIELDS
    assert extract_answer(rec["answer"]) == rec["final_answer"]
    assert split_steps(rec["answer"]) == rec["steps"]
    assert rec["difficulty"] == len(rec["steps"])
    assert rec["id"] == problem_id(rec["source"], rec["question"])


# --------------------------------------------------------------------------- good sources


def test_synthetic_records_follow_the_schema():
    recs = synthetic_problems(30, seed=1, data=DataConfig(min_steps=2, max_steps=4))
    assert len(recs) == 30
    for r in recs:
        check_schema(r)
        assert r["source"] == "synthetic" and 2 <= r["difficulty"] <= 4
    assert recs == synthetic_problems(30, seed=1, data=DataConfig(min_steps=2, max_steps=4))


def test_gsm8k_jsonl_strips_calculator_annotations(tmp_path):
    f = write_lines(tmp_path / "gsm.jsonl", [{"question": "  " + GSM_Q + "\n", "answer": GSM_A}])
    [rec] = read_problems(f, "gsm8k")
    check_schema(rec)
    assert rec["question"] == GSM_Q
    assert rec["steps"] == [
        "Natalia sold 48/2 = 24 clips in May.",
        "Natalia sold 48+24 = 72 clips altogether in April and May.",
    ]
    assert rec["answer"] == "\n".join(rec["steps"]) + "\n#### 72"
    assert rec["final_answer"] == "72" and rec["difficulty"] == 2 and rec["source"] == "gsm8k"
    assert rec["id"].startswith("gsm8k-") and len(rec["id"]) == len("gsm8k-") + 12


@pytest.mark.parametrize(
    "final,expected",
    [
        ("1,000", "1000"),
        ("1,234,567", "1234567"),
        ("$5.00", "5"),
        ("-3", "-3"),
        ("-2.50", "-2.5"),
        ("$18", "18"),
        ("18%", "18"),
        ("7.", "7"),
        ("12 dollars", "12"),
    ],
)
def test_final_answer_is_normalised(tmp_path, final, expected):
    f = write_lines(tmp_path / "a.jsonl", [{"question": "q", "answer": f"step\n#### {final}"}])
    assert read_problems(f)[0]["final_answer"] == expected


def test_jsonl_with_column_mapping_and_final_answer_column(tmp_path):
    cols = ColumnMapping(question="problem", answer="solution", final_answer="target")
    f = write_lines(
        tmp_path / "m.jsonl",
        [
            {"problem": "What is 2+3*4?", "solution": "3*4 = <<3*4=12>>12\n2+12 = 14", "target": 14},
            {"problem": "What is 1.5+1.5?", "solution": "1.5+1.5 = 3\n#### 3", "target": "3.0"},
            {"problem": "What is 7?", "solution": None, "target": "7"},  # no steps
        ],
    )
    a, b, c = read_problems(f, "jsonl", cols)
    for r in (a, b, c):
        check_schema(r)
        assert r["source"] == "jsonl"
    assert a["answer"] == "3*4 = 12\n2+12 = 14\n#### 14" and a["difficulty"] == 2
    assert b["final_answer"] == "3" and b["steps"] == ["1.5+1.5 = 3"]
    assert c["answer"] == "#### 7" and c["steps"] == [] and c["difficulty"] == 0


def test_answer_only_source_has_no_steps(tmp_path):
    cols = ColumnMapping(question="q", answer="y", final_answer="y")
    f = write_lines(tmp_path / "m.jsonl", [{"q": "How many?", "y": 12}])
    [r] = read_problems(f, "jsonl", cols)
    assert (r["answer"], r["steps"], r["difficulty"], r["final_answer"]) == ("#### 12", [], 0, "12")


@pytest.mark.parametrize("value,expected", [(3.0, "3"), (0.5, "0.5"), (1e20, "1" + "0" * 20), (-2.50, "-2.5"), ("1,234", "1234")])
def test_final_answer_column_numbers_are_read_positionally(tmp_path, value, expected):
    cols = ColumnMapping(question="q", answer="y", final_answer="y")
    f = write_lines(tmp_path / "m.jsonl", [{"q": "How many?", "y": value}])
    assert read_problems(f, "jsonl", cols)[0]["final_answer"] == expected


def test_parquet_with_column_mapping(tmp_path):
    cols = ColumnMapping(question="problem", answer="solution", final_answer="target")
    f = write_parquet(
        tmp_path / "p.parquet",
        [{"problem": "What is 6*7?", "solution": "6*7 = 42", "target": 42, "other": 1}],
    )
    [r] = read_problems(f, "auto", cols)
    check_schema(r)
    assert (r["source"], r["final_answer"], r["answer"]) == ("parquet", "42", "6*7 = 42\n#### 42")


def test_auto_picks_the_reader_by_extension(tmp_path):
    assert resolve_source("x.jsonl") == resolve_source("x.JSON") == "jsonl"
    assert resolve_source("x.parquet") == "parquet"
    assert resolve_source("x.parquet", "gsm8k") == "gsm8k"
    with pytest.raises(DataError, match=r"x\.csv.*extension '\.csv'"):
        resolve_source("x.csv")
    f = write_lines(tmp_path / "g.json", [{"question": "q", "answer": "s\n#### 1"}])
    assert read_problems(f)[0]["source"] == "jsonl"


def test_normalised_question_ignores_case_and_whitespace():
    assert normalize_question("  What IS\n 2 +  2?\t") == "what is 2 + 2?"
    assert problem_id("gsm8k", "What is 2+2?") == problem_id("gsm8k", " what  is 2+2? ")


# --------------------------------------------------------------------------- bad input

GOOD = {"question": "q0", "answer": "s\n#### 1"}


@pytest.mark.parametrize(
    "line,field,reason",
    [
        ('{"question": "q", "answer": ', None, "invalid JSON"),
        ("[1, 2]", None, "expected a JSON object, got list"),
        ('"just a string"', None, "expected a JSON object, got str"),
        ({"question": "q"}, "answer", "missing"),
        ({"answer": "#### 1"}, "question", "missing"),
        ({"question": 7, "answer": "#### 1"}, "question", "expected a string, got int"),
        ({"question": "q", "answer": ["#### 1"]}, "answer", "expected a string, got list"),
        ({"question": "  ", "answer": "#### 1"}, "question", "empty question"),
        ({"question": "q", "answer": "step one\nstep two"}, "answer", "missing final answer line '#### <number>'"),
        ({"question": "q", "answer": "step\n####"}, "answer", "final answer not one number: '####'"),
        ({"question": "q", "answer": "step\n#### many"}, "answer", "final answer not one number: '#### many'"),
        ({"question": "q", "answer": "step\n#### 3 1/2"}, "answer", "not one number: '#### 3 1/2'"),
        ({"question": "q", "answer": "step\n#### 2,5"}, "answer", "not one number: '#### 2,5'"),
        ({"question": "q", "answer": "step\n#### 1 234"}, "answer", "not one number: '#### 1 234'"),
        ({"question": "q", "answer": "step\n#### 3 or 4"}, "answer", "not one number: '#### 3 or 4'"),
    ],
)
def test_bad_jsonl_lines_name_file_line_and_field(tmp_path, line, field, reason):
    # line 2 is blank (skipped, still counted), the bad record is on line 3
    f = write_lines(tmp_path / "train.jsonl", [GOOD, "", line, GOOD])
    with pytest.raises(DataError) as e:
        read_problems(f, "gsm8k")
    msg = str(e.value)
    assert msg.startswith(f"{f}:3: ")
    assert reason in msg
    if field:
        assert f"field '{field}'" in msg
    assert (e.value.line, e.value.field) == (3, field)
    # the reader itself goes on past the bad line (quarantine mode needs the rest)
    items = list(iter_jsonl(f))
    assert [type(x).__name__ for x in items] == ["dict", "DataError", "dict"]


HUGE_INT = '{"question": "q", "answer": ' + "1" * 5000 + "}"  # json.loads: "Exceeds the limit (4300 digits)"
DEEP = "[" * 200_000 + "]" * 200_000  # json.loads: RecursionError


@pytest.mark.parametrize(
    "line,reason",
    [
        (HUGE_INT, "unreadable JSON: Exceeds the limit (4300 digits) for integer string conversion: value has 5000 digits"),
        (DEEP, "unreadable JSON: nested too deeply"),
    ],
)
def test_unreadable_json_line_is_a_named_rejection_not_a_crash(tmp_path, line, reason):
    f = write_lines(tmp_path / "t.jsonl", [GOOD, line, GOOD])
    items = list(iter_jsonl(f))
    assert [type(x).__name__ for x in items] == ["dict", "DataError", "dict"]
    assert str(items[1]) == f"{f}:2: {reason}"
    assert items[1].to_dict()["raw"] == line  # kept for the rejects file
    json.dumps(items[1].to_dict())


def test_error_with_a_too_deep_record_still_writes_to_rejects():
    deep: list = []
    for _ in range(100_000):  # deeper than json.dumps can recurse
        deep = [deep]
    d = DataError("t.jsonl", "expected a JSON object, got list", 1, raw=deep).to_dict()
    assert d["raw"] == "<list nested too deeply to write>"
    json.dumps(d)


def test_bad_final_answer_column(tmp_path):
    cols = ColumnMapping(question="q", answer="a", final_answer="y")
    rows = [
        ({"q": "x", "a": "s"}, "missing"),
        ({"q": "x", "a": "s", "y": None}, "null final answer"),
        ({"q": "x", "a": "s", "y": True}, "expected a string or number, got bool"),
        ({"q": "x", "a": "s", "y": "n/a"}, "not one number: 'n/a'"),
        ({"q": "x", "a": "s", "y": float("nan")}, "not one number: nan"),
        ({"q": "x", "a": "s\n#### 4", "y": 5}, "disagrees"),
        ({"q": "x", "a": "s", "y": "2,5"}, "not one number: '2,5'"),
        ({"q": "x", "a": "s", "y": "3 1/2"}, "not one number: '3 1/2'"),
        ({"q": "x", "a": "s\n#### 3 1/2", "y": 3}, "disagrees"),  # was read as 3 and agreed
    ]
    f = write_lines(tmp_path / "m.jsonl", [r for r, _ in rows])
    items = list(iter_jsonl(f, cols))
    for i, (item, (_, reason)) in enumerate(zip(items, rows), start=1):
        assert isinstance(item, DataError)
        assert str(item).startswith(f"{f}:{i}: field 'y': ") and reason in str(item)


def test_mapped_column_names_the_file_column(tmp_path):
    cols = ColumnMapping(question="problem", answer="solution")
    f = write_lines(tmp_path / "m.jsonl", [{"question": "q", "solution": "#### 1"}])
    with pytest.raises(DataError, match=r"m\.jsonl:1: field 'problem': missing \(mapped as data\.columns\.question\)"):
        read_problems(f, "jsonl", cols)


def test_invalid_utf8_line(tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_bytes(json.dumps(GOOD).encode() + b"\n" + b'{"question": "\xff"}\n')
    with pytest.raises(DataError, match=r"bad\.jsonl:2: not valid UTF-8"):
        read_problems(f)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.jsonl: file not found"):
        read_problems(tmp_path / "nope.jsonl")
    with pytest.raises(DataError, match=r"nope\.parquet: file not found"):
        read_problems(tmp_path / "nope.parquet")


def test_parquet_missing_mapped_column(tmp_path):
    f = write_parquet(tmp_path / "p.parquet", [{"problem": "q", "solution": "#### 1"}])
    cols = ColumnMapping(question="problem", answer="solution", final_answer="target")
    with pytest.raises(DataError) as e:
        read_problems(f, "parquet", cols)
    assert str(e.value).startswith(f"{f}: no column 'target' (data.columns.final_answer)")
    assert "['problem', 'solution']" in str(e.value)


def test_parquet_bad_row_names_row_index(tmp_path):
    f = write_parquet(tmp_path / "p.parquet", [GOOD, {"question": None, "answer": "#### 2"}])
    with pytest.raises(DataError) as e:
        read_problems(f)
    assert str(e.value).startswith(f"{f}:row 1: field 'question': expected a string, got NoneType")
    assert e.value.to_dict()["row"] == 1 and e.value.to_dict()["line"] is None


def test_not_a_parquet_file(tmp_path):
    f = tmp_path / "p.parquet"
    f.write_text("hello")
    with pytest.raises(DataError, match=r"p\.parquet: not a readable parquet file"):
        read_problems(f)


def test_hf_offline_fails_fast_with_a_clear_message(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.time()
    with pytest.raises(DataError) as e:
        list(iter_hf("prmflow-test/no-such-dataset", None, "train"))
    assert time.time() - t0 < 20
    msg = str(e.value)
    assert msg.startswith("prmflow-test/no-such-dataset[train]: ")
    assert "could not be loaded offline" in msg
    assert "Download it" in msg and "local JSONL/parquet file" in msg


def test_hf_rows_are_validated_with_row_index(monkeypatch):
    import datasets

    rows = [GOOD, {"question": "q1", "answer": "no final"}]
    monkeypatch.setattr(datasets, "load_dataset", lambda name, config, split, revision=None: datasets.Dataset.from_list(rows))
    good, bad = list(iter_hf("org/ds", "main", "train"))
    assert good["source"] == "hf" and good["id"].startswith("hf-")
    assert str(bad).startswith("org/ds/main[train]:row 1: field 'answer': missing final answer line")
    with pytest.raises(DataError, match=r"org/ds\[test\]: no column 'problem'"):
        list(iter_hf("org/ds", None, "test", ColumnMapping(question="problem")))


def test_error_to_dict_is_json_ready_and_pickles(tmp_path):
    f = write_lines(tmp_path / "t.jsonl", ["{oops"])
    [err] = list(iter_jsonl(f))
    d = err.to_dict()
    assert d == {
        "file": str(f),
        "line": 1,
        "row": None,
        "field": None,
        "reason": d["reason"],
        "message": str(err),
        "raw": "{oops",
    }
    json.dumps(d)
    assert pickle.loads(pickle.dumps(err)).to_dict() == d
