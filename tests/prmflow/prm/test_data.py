"""PRM training data: validation errors name file, line and field; collation puts targets at step ends."""

from __future__ import annotations

import json

import pytest
import torch

from prmflow.lm.models import build_tokenizer
from prmflow.prm.data import IGNORE, StepwiseDataset, collate_steps, iter_stepwise, own_label_records, read_stepwise, targets
from prmflow.prm.scorers import encode_steps
from prmflow.problems.sources import DataError

GOOD = {"prompt": "a=7;b=a*3;b=?\n", "completions": ["b=7*3=21"], "labels": [True]}


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


@pytest.mark.parametrize(
    "record, field, reason",
    [
        ({**GOOD, "labels": [True, False]}, "labels", "2 labels for 1 completions"),
        ({**GOOD, "completions": ["b=7*3=21", "  "], "labels": [True, True]}, "completions", "step 1: empty step"),
        ({**GOOD, "completions": []}, "completions", "no steps"),
        ({**GOOD, "labels": [1]}, "labels", "step 0: expected a boolean, got int"),
        ({**GOOD, "labels": ["true"]}, "labels", "expected a boolean, got str"),
        ({k: v for k, v in GOOD.items() if k != "labels"}, "labels", "missing"),
        ({**GOOD, "prompt": ""}, "prompt", "non-empty string"),
        ({**GOOD, "completions": "b=7*3=21"}, "completions", "expected a list"),
        ({**GOOD, "completions": ["b=7*3=21\nc=1"]}, "completions", "newline"),
        ({**GOOD, "soft_labels": [1.5]}, "soft_labels", "number in [0, 1]"),
        ({**GOOD, "soft_labels": [0.5, 0.5]}, "soft_labels", "2 values for 1 completions"),
    ],
)
def test_bad_jsonl_record_names_file_line_and_field(tmp_path, record, field, reason):
    path = write_jsonl(tmp_path / "steps.jsonl", [GOOD, "", record])  # blank line 2: skipped, still counted
    with pytest.raises(DataError) as e:
        read_stepwise(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}:3: field '{field}'"), msg
    assert reason in msg
    assert e.value.line == 3 and e.value.field == field


def test_invalid_json_names_the_line(tmp_path):
    path = write_jsonl(tmp_path / "steps.jsonl", [GOOD, "{not json"])
    with pytest.raises(DataError, match=r"steps\.jsonl:2: invalid JSON"):
        read_stepwise(path)


@pytest.mark.parametrize(
    "line,reason",
    [
        ('{"prompt": "p", "completions": ["a"], "labels": [' + "1" * 5000 + "]}", "unreadable JSON: Exceeds the limit (4300 digits)"),
        ("[" * 200_000 + "]" * 200_000, "unreadable JSON: nested too deeply"),
    ],
)
def test_unreadable_json_line_is_a_named_rejection_not_a_crash(tmp_path, line, reason):
    path = write_jsonl(tmp_path / "steps.jsonl", [GOOD, line, GOOD])
    items = list(iter_stepwise(path))
    assert [type(x).__name__ for x in items] == ["dict", "DataError", "dict"]
    assert str(items[1]).startswith(f"{path}:2: {reason}")


def test_iter_stepwise_yields_errors_without_stopping(tmp_path):
    path = write_jsonl(tmp_path / "steps.jsonl", [{**GOOD, "labels": [1]}, GOOD])
    items = list(iter_stepwise(path))
    assert isinstance(items[0], DataError) and items[1]["labels"] == [True]


def test_parquet_rows_are_named_by_row(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [GOOD, {**GOOD, "completions": ["a", "b"], "labels": [True]}]
    path = tmp_path / "steps.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    with pytest.raises(DataError) as e:
        read_stepwise(path)
    assert str(e.value).startswith(f"{path}:row 1: field 'labels'")


def test_parquet_without_a_column_names_it(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "steps.parquet"
    pq.write_table(pa.Table.from_pylist([{"prompt": "p", "completions": ["a"]}]), path)
    with pytest.raises(DataError, match=r"no column\(s\) \['labels'\]"):
        read_stepwise(path)


def test_missing_file_unknown_extension_and_empty_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_stepwise(tmp_path / "nope.jsonl")
    (tmp_path / "x.csv").write_text("a\n")
    with pytest.raises(DataError, match="unknown extension"):
        read_stepwise(tmp_path / "x.csv")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(DataError, match="no records"):
        read_stepwise(tmp_path / "empty.jsonl")


def test_good_record_gets_default_soft_labels(tmp_path):
    rec = read_stepwise(write_jsonl(tmp_path / "s.jsonl", [{**GOOD, "completions": [" b=7*3=21 "]}]))[0]
    assert rec == {"prompt": GOOD["prompt"], "completions": ["b=7*3=21"], "labels": [True], "soft_labels": [1.0]}


def test_targets_soft_are_never_rounded():
    rec = {"labels": [True, False], "soft_labels": [0.625, 0.125]}
    assert targets(rec, soft=True) == [0.625, 0.125]
    assert targets(rec, soft=False) == [1.0, 0.0]


def test_own_label_records_keep_oracle_and_skip_empty():
    import datasets

    ds = datasets.Dataset.from_list(
        [
            {"prompt": "p", "completions": ["a", "b"], "labels": [True, False], "soft_labels": [0.5, 0.0], "oracle_labels": [True, True]},
            {"prompt": "q", "completions": [], "labels": [], "soft_labels": [], "oracle_labels": []},
        ]
    )
    recs = own_label_records(ds)
    assert len(recs) == 1
    assert recs[0]["soft_labels"] == [0.5, 0.0] and recs[0]["oracle_labels"] == [True, True]


def test_collation_puts_soft_targets_at_step_ends_and_ignore_elsewhere():
    tok = build_tokenizer()
    recs = [
        {"prompt": "a=7;b=a*3;c=b-4;c=?\n", "completions": ["b=7*3=21", "c=21-4=17"], "labels": [True, True], "soft_labels": [0.75, 1.0]},
        {"prompt": "a=1;b=a+1;b=?\n", "completions": ["b=1+1=3"], "labels": [False], "soft_labels": [0.125]},
    ]
    ds = StepwiseDataset(recs, tok, soft=True)
    batch = collate_steps([ds[0], ds[1]], pad_id=tok.pad_token_id)
    ids, labels, mask = batch["input_ids"], batch["labels"], batch["attention_mask"]
    assert labels.dtype == torch.float32 and ids.shape == labels.shape == mask.shape
    for i, r in enumerate(recs):
        enc = encode_steps(tok, r["prompt"], r["completions"])
        assert ids[i, : len(enc.ids)].tolist() == enc.ids
        assert batch["prompt_lens"][i].item() == enc.prompt_len
        assert labels[i, enc.ends].tolist() == r["soft_labels"]
        others = [t for t in range(labels.shape[1]) if t not in enc.ends]
        assert (labels[i, others] == IGNORE).all()
        assert mask[i].sum().item() == len(enc.ids)
    assert (ids[1, mask[1] == 0] == tok.pad_token_id).all()  # right padding


def test_dataset_truncation_drops_steps_past_max_length():
    tok = build_tokenizer()
    rec = {"prompt": "a=7;b=a*3;c=b-4;c=?\n", "completions": ["b=7*3=21", "c=21-4=17"], "labels": [True, False], "soft_labels": [1.0, 0.0]}
    enc = encode_steps(tok, rec["prompt"], rec["completions"])
    ds = StepwiseDataset([rec], tok, soft=False, max_length=enc.ends[0] + 1)
    assert ds[0]["step_ends"] == [enc.ends[0]] and ds[0]["targets"] == [1.0]
    assert len(StepwiseDataset([rec], tok, soft=False, max_length=enc.prompt_len)) == 0


def test_dataset_counts_every_drop_and_cut_step():
    tok = build_tokenizer()
    two = {"prompt": "a=7;b=a*3;c=b-4;c=?\n", "completions": ["b=7*3=21", "c=21-4=17"], "labels": [True, False]}
    one = {"prompt": "a=7;b=a*3;b=?\n", "completions": ["b=7*3=21"], "labels": [True]}
    long_prompt = {"prompt": "a=7;b=a*3;c=b-4;d=c+5;e=d*2;f=e-1;f=?\n", "completions": ["b=7*3=21"], "labels": [True]}
    enc_two, enc_one, enc_long = (encode_steps(tok, r["prompt"], r["completions"]) for r in (two, one, long_prompt))
    cut = enc_two.ends[0] + 1  # `two` keeps its first step only
    assert enc_one.ends[-1] < cut <= enc_long.ends[0]  # `one` fits whole; `long_prompt` has no step end inside
    ds = StepwiseDataset(
        [dict(r, soft_labels=[float(x) for x in r["labels"]]) for r in (two, one, long_prompt)], tok, soft=False, max_length=cut
    )
    # 3 records in: 2 used, 1 dropped (no step end in context); 4 steps in: 2 used, 2 cut
    # (the second of `two`, and the only one of `long_prompt`)
    assert ds.counts == {
        "records_in": 3,
        "records_used": 2,
        "dropped_no_step_in_context": 1,
        "steps_in": 4,
        "steps_used": 2,
        "steps_truncated": 2,
    }
    assert len(ds) == ds.counts["records_used"]
    assert StepwiseDataset([dict(two, soft_labels=[1.0, 0.0])], tok, soft=False).counts["steps_truncated"] == 0
