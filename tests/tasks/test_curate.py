import json

import pytest
import yaml

from prmflow.config import Params
from prmflow.problems.sources import DataError, normalize_question
from prmflow.workspace import load_curated
from tasks.curate import COUNT_KEYS, main, summary
from tasks.curate import run as curate

FIELDS = {"id", "question", "answer", "final_answer", "steps", "source", "difficulty"}


def params(**data) -> Params:
    data.setdefault("incoming_dir", None)  # never the workspace's data/incoming
    return Params.model_validate({"data": data})


def run(tmp_path, p: Params) -> dict:
    return curate(p, tmp_path / "curated", tmp_path / "rejects", tmp_path / "metrics" / "curate.json")


def gsm(q: str, n_steps: int = 2, final: int = 1) -> dict:
    steps = [f"step {i} = <<{i}+0={i}>>{i}" for i in range(n_steps)]
    return {"question": q, "answer": "\n".join([*steps, f"#### {final}"])}


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return str(path)


def check_counts(split: dict):
    assert split["read"] == sum(split[k] for k in COUNT_KEYS if k != "read")


def questions(ds) -> set[str]:
    return {normalize_question(q) for q in ds["question"]}


def test_synthetic_exact_sizes_schema_and_disjoint(tmp_path):
    m = run(tmp_path, params(num_train=120, num_eval=30, min_steps=2, max_steps=4))
    dd = load_curated(tmp_path / "curated")
    assert (len(dd["train"]), len(dd["eval"])) == (120, 30)
    assert set(dd["train"].column_names) == FIELDS
    assert not questions(dd["train"]) & questions(dd["eval"])
    assert len(set(dd["train"]["id"])) == 120
    assert set(dd["train"]["source"]) == {"synthetic"}
    assert m["train"]["kept"] == 120 and m["eval"]["kept"] == 30
    assert sum(m["train"]["difficulty"].values()) == 120
    assert set(m["train"]["difficulty"]) <= {"2", "3", "4"}
    for s in ("train", "eval"):
        check_counts(m[s])
    assert json.loads((tmp_path / "metrics" / "curate.json").read_text())["train"] == m["train"]
    assert (tmp_path / "rejects" / "rejects.jsonl").read_text() == ""  # DVC out exists even when empty
    # reproducible
    run(tmp_path, params(num_train=120, num_eval=30, min_steps=2, max_steps=4))
    assert load_curated(tmp_path / "curated")["train"]["id"] == dd["train"]["id"]


def test_synthetic_generates_more_to_make_up_for_duplicates(tmp_path):
    # 1-step chains mod 10: 10 starts x 26 ops = 260 distinct questions, so many repeats
    m = run(tmp_path, params(num_train=150, num_eval=30, min_steps=1, max_steps=1, modulus=10))
    assert m["train"]["kept"] == 150 and m["eval"]["kept"] == 30
    assert m["train"]["duplicates"] > 0 and m["train"]["read"] > 150 + 16
    check_counts(m["train"])
    # asking for more than exist ends with all that are left, and terminates
    m = run(tmp_path, params(num_train=1000, num_eval=30, min_steps=1, max_steps=1, modulus=10))
    assert m["train"]["kept"] == 260 - 30
    assert m["train"]["contaminated"] > 0
    dd = load_curated(tmp_path / "curated")
    assert not questions(dd["train"]) & questions(dd["eval"])


def test_file_source_dedupe_decontaminate_and_difficulty(tmp_path):
    train = write_jsonl(
        tmp_path / "train.jsonl",
        [
            gsm("What is one?"),
            gsm("what  is ONE?"),  # duplicate (case, whitespace)
            gsm("Eval question A"),  # contaminated
            gsm("Too easy", n_steps=1),  # filtered (min_steps=2)
            gsm("Too hard", n_steps=9),  # filtered (max_steps=8)
            gsm("What is two?", n_steps=3),
            gsm("What is three?", n_steps=8),
        ],
    )
    eval_ = write_jsonl(
        tmp_path / "eval.jsonl",
        [gsm("eval question a"), gsm("Eval question B"), gsm("Eval question B"), gsm("Eval C", n_steps=1)],
    )
    m = run(tmp_path, params(source="gsm8k", path=train, eval_path=eval_, num_train=10, num_eval=10))
    t, e = m["train"], m["eval"]
    assert (t["read"], t["duplicates"], t["contaminated"], t["filtered_difficulty"], t["kept"]) == (7, 1, 1, 2, 3)
    assert (e["read"], e["duplicates"], e["filtered_difficulty"], e["kept"]) == (4, 1, 1, 2)
    check_counts(t)
    check_counts(e)
    assert t["difficulty"] == {"2": 1, "3": 1, "8": 1}
    dd = load_curated(tmp_path / "curated")
    assert dd["train"]["question"] == ["What is one?", "What is two?", "What is three?"]
    assert dd["train"][0]["answer"] == "step 0 = 0\nstep 1 = 1\n#### 1"
    assert dd["eval"]["question"] == ["eval question a", "Eval question B"]
    assert set(dd["train"]["source"]) == {"gsm8k"}


def test_caps_keep_the_first_problems(tmp_path):
    rows = [gsm(f"q{i}") for i in range(10)]
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    eval_ = write_jsonl(tmp_path / "eval.jsonl", [gsm(f"e{i}") for i in range(5)])
    m = run(tmp_path, params(source="jsonl", path=train, eval_path=eval_, num_train=4, num_eval=2))
    assert (m["train"]["kept"], m["train"]["over_cap"], m["eval"]["over_cap"]) == (4, 6, 3)
    assert load_curated(tmp_path / "curated")["train"]["question"] == ["q0", "q1", "q2", "q3"]


def test_eval_is_carved_from_train_when_no_eval_file(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", [gsm(f"q{i}") for i in range(10)] + [gsm("Q0")])
    p = params(source="gsm8k", path=train, num_train=100, num_eval=3)
    m = run(tmp_path, p)
    assert m["train"]["duplicates"] == 1 and m["train"]["carved_to_eval"] == 3
    assert (m["train"]["kept"], m["eval"]["kept"], m["eval"]["read"]) == (7, 3, 3)
    check_counts(m["train"])
    dd = load_curated(tmp_path / "curated")
    assert not questions(dd["train"]) & questions(dd["eval"])
    assert questions(dd["train"]) | questions(dd["eval"]) == {f"q{i}" for i in range(10)}
    first = dd["eval"]["id"]
    run(tmp_path, p)
    assert load_curated(tmp_path / "curated")["eval"]["id"] == first  # seeded


def test_carving_that_leaves_nothing_to_train_on_fails(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", [gsm(f"q{i}") for i in range(3)])
    with pytest.raises(DataError, match="only 3 usable problems.*data.num_eval"):
        run(tmp_path, params(source="gsm8k", path=train, num_train=10, num_eval=3))


def test_problems_without_steps_skip_the_difficulty_filter(tmp_path):
    rows = [{"q": f"How many {i}?", "y": i} for i in range(6)]
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    cols = {"question": "q", "answer": "y", "final_answer": "y"}
    m = run(tmp_path, params(source="jsonl", path=train, columns=cols, num_eval=2, min_steps=3))
    assert m["train"]["filtered_difficulty"] == 0 and m["train"]["kept"] == 4
    assert m["train"]["difficulty"] == {"0": 4}
    for r in load_curated(tmp_path / "curated")["train"]:
        assert (r["answer"], r["steps"], r["difficulty"]) == (f"#### {r['final_answer']}", [], 0)


def test_parquet_source_with_mapping(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"problem": f"p{i}", "solution": "a\nb", "target": float(i)} for i in range(5)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "t.parquet")
    cols = {"question": "problem", "answer": "solution", "final_answer": "target"}
    run(tmp_path, params(source="parquet", path=str(tmp_path / "t.parquet"), columns=cols, num_eval=1))
    dd = load_curated(tmp_path / "curated")
    assert len(dd["train"]) == 4
    assert {r["final_answer"] for r in dd["train"]} | {dd["eval"][0]["final_answer"]} == {"0", "1", "2", "3", "4"}


def test_hf_source_uses_train_and_eval_splits(tmp_path, monkeypatch):
    import datasets

    splits = {"train": [gsm(f"t{i}") for i in range(6)] + [gsm("shared")], "test": [gsm("shared"), gsm("e1")]}
    calls = []

    def fake_load(name, config, split, revision=None):
        calls.append((name, config, split))
        return datasets.Dataset.from_list(splits[split])

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    m = run(tmp_path, params(source="hf", hf_name="org/math", hf_config="main", num_eval=5))
    assert sorted(calls) == [("org/math", "main", "test"), ("org/math", "main", "train")]
    assert (m["train"]["kept"], m["train"]["contaminated"], m["eval"]["kept"]) == (6, 1, 2)
    assert set(load_curated(tmp_path / "curated")["train"]["source"]) == {"hf"}


BAD_ROWS = [
    gsm("good 1"),
    '{"question": "broken',
    {"question": 3, "answer": "#### 1"},
    {"question": "no final", "answer": "a step"},
    gsm("good 2"),
]


def test_fail_mode_stops_at_the_first_bad_record(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", BAD_ROWS)
    with pytest.raises(DataError, match=r"train\.jsonl:2: invalid JSON"):
        run(tmp_path, params(source="gsm8k", path=train, num_eval=1))
    assert not (tmp_path / "curated").exists() and not (tmp_path / "metrics").exists()


def test_quarantine_writes_rejects_and_keeps_good_records(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", BAD_ROWS + [gsm("good 3")])
    eval_ = write_jsonl(tmp_path / "eval.jsonl", [gsm("e1"), {"question": ""}])
    p = params(source="gsm8k", path=train, eval_path=eval_, num_eval=5, on_error="quarantine")
    m = run(tmp_path, p)
    assert (m["train"]["rejected"], m["train"]["kept"], m["eval"]["rejected"], m["eval"]["kept"]) == (3, 3, 1, 1)
    check_counts(m["train"])
    rejects = [json.loads(ln) for ln in (tmp_path / "rejects" / "rejects.jsonl").read_text().splitlines()]
    assert [(r["split"], r["line"], r["field"]) for r in rejects] == [
        ("eval", 2, "question"),
        ("train", 2, None),
        ("train", 3, "question"),
        ("train", 4, "answer"),
    ]
    for r in rejects:
        assert r["file"] in (train, eval_) and r["reason"] and r["message"].startswith(f"{r['file']}:{r['line']}:")
    assert rejects[1]["raw"] == '{"question": "broken'
    assert rejects[2]["raw"] == {"question": 3, "answer": "#### 1"}
    assert "missing final answer line" in rejects[3]["reason"]
    dd = load_curated(tmp_path / "curated")
    assert dd["train"]["question"] == ["good 1", "good 2", "good 3"]


def test_final_answer_that_is_not_one_number_is_quarantined_not_truncated(tmp_path):
    rows = [gsm(f"q{i}") for i in range(3)]
    rows[1]["answer"] = "step 0 = 0\nstep 1 = 1\n#### 3 1/2"  # used to be kept as "3"
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    m = run(tmp_path, params(source="gsm8k", path=train, num_eval=1, on_error="quarantine"))
    assert (m["train"]["rejected"], m["train"]["kept"] + m["eval"]["kept"]) == (1, 2)
    [r] = [json.loads(ln) for ln in (tmp_path / "rejects" / "rejects.jsonl").read_text().splitlines()]
    assert (r["file"], r["line"], r["field"]) == (train, 2, "answer")
    assert "not one number" in r["reason"]
    with pytest.raises(DataError, match=r"train\.jsonl:2: field 'answer': final answer not one number"):
        run(tmp_path, params(source="gsm8k", path=train, num_eval=1))


def test_unreadable_lines_are_quarantined_with_file_and_line(tmp_path):
    huge = '{"question": "q", "answer": ' + "1" * 5000 + "}"
    deep = "[" * 200_000 + "]" * 200_000
    nearly_too_deep = json.dumps({"question": "q", "answer": "#### 1", "x": 1})[:-1] + ', "y": ' + "[" * 900 + "]" * 900 + "}"
    rows = [gsm("good 1"), huge, deep, {"question": "deep", "answer": json.loads("[" * 900 + "]" * 900)}, nearly_too_deep, gsm("good 2")]
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    m = run(tmp_path, params(source="gsm8k", path=train, num_eval=1, on_error="quarantine"))
    rejects = [json.loads(ln) for ln in (tmp_path / "rejects" / "rejects.jsonl").read_text().splitlines()]
    assert [(r["line"], r["field"]) for r in rejects] == [(2, None), (3, None), (4, "answer")]
    assert "4300 digits" in rejects[0]["reason"] and "nested too deeply" in rejects[1]["reason"]
    assert (m["train"]["rejected"], m["train"]["kept"] + m["eval"]["kept"]) == (3, 3)  # line 5: an extra column, fine
    with pytest.raises(DataError, match=r"train\.jsonl:2: unreadable JSON"):
        run(tmp_path, params(source="gsm8k", path=train, num_eval=1))


def test_empty_eval_file_is_named_in_the_error(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", [gsm(f"q{i}") for i in range(5)])
    eval_ = write_jsonl(tmp_path / "eval.jsonl", [])
    with pytest.raises(DataError, match=rf"^{eval_}: no eval problems left after curation"):
        run(tmp_path, params(source="gsm8k", path=train, eval_path=eval_, num_eval=2))


def test_missing_file_fails_even_in_quarantine_mode(tmp_path):
    with pytest.raises(DataError, match=r"missing\.jsonl: file not found"):
        run(tmp_path, params(source="jsonl", path=str(tmp_path / "missing.jsonl"), on_error="quarantine"))


def test_crash_while_writing_leaves_the_previous_output(tmp_path, monkeypatch):
    import datasets

    run(tmp_path, params(num_train=20, num_eval=5))
    before = load_curated(tmp_path / "curated")["train"]["id"]
    metrics_before = (tmp_path / "metrics" / "curate.json").read_text()

    def crash(self, path, *a, **kw):
        (datasets.Dataset.from_list([{"x": 1}])).save_to_disk(f"{path}/train")  # half written
        raise RuntimeError("disk full")

    monkeypatch.setattr(datasets.DatasetDict, "save_to_disk", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        run(tmp_path, params(num_train=30, num_eval=5, train_seed=9))
    assert load_curated(tmp_path / "curated")["train"]["id"] == before
    assert (tmp_path / "metrics" / "curate.json").read_text() == metrics_before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curated", "metrics", "rejects"]  # no temp dirs left


def test_load_curated_says_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the curate stage"):
        load_curated(tmp_path / "nothing")


def params_yaml(source: str, path: str | None, on_error: str) -> str:
    """The shipped params.yaml (every section is required) with a micro ``data`` section."""
    raw = Params().model_dump()
    raw["data"].update(source=source, path=path, num_train=24, num_eval=6, min_steps=2, max_steps=3, on_error=on_error)
    return yaml.safe_dump(raw)


@pytest.fixture(scope="module")
def mlflow_db(tmp_path_factory):
    """One temporary SQLite store for the module: creating one costs ~5 s of migrations."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"


@pytest.fixture
def stage_env(tmp_path, monkeypatch, mlflow_db):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_db)
    monkeypatch.setenv("PRMFLOW_EXPERIMENT", f"curate-{tmp_path.name}")
    monkeypatch.delenv("PRMFLOW_PARENT_RUN_ID", raising=False)
    return tmp_path


def test_main_end_to_end_logs_to_mlflow(stage_env, capsys):
    import mlflow

    tmp_path = stage_env
    (tmp_path / "params.yaml").write_text(params_yaml("synthetic", None, "fail"))
    main([])
    out = capsys.readouterr().out.strip().splitlines()[-1]
    assert out.startswith("curate: synthetic: train 24/24, eval 6/6; rejected 0")
    dd = load_curated()  # default paths, relative to the working directory
    assert (len(dd["train"]), len(dd["eval"])) == (24, 6)
    assert (tmp_path / "metrics" / "curate.json").exists() and (tmp_path / "data" / "rejects" / "rejects.jsonl").exists()
    [run_] = mlflow.search_runs(experiment_names=[f"curate-{tmp_path.name}"], output_format="list")
    assert run_.info.status == "FINISHED"
    assert run_.data.tags["prmflow.stage"] == "curate"
    assert run_.data.params["num_train"] == "24"
    assert run_.data.metrics["train/kept"] == 24 and run_.data.metrics["eval/kept"] == 6
    assert sum(v for k, v in run_.data.metrics.items() if k.startswith("train/difficulty/")) == 24


def test_main_reports_bad_data_without_a_traceback(stage_env):
    import mlflow

    tmp_path = stage_env
    write_jsonl(tmp_path / "train.jsonl", [gsm("ok"), {"question": "q", "answer": "x"}])
    (tmp_path / "params.yaml").write_text(params_yaml("gsm8k", "train.jsonl", "fail"))
    with pytest.raises(SystemExit) as e:
        main(["--params", "params.yaml"])
    assert str(e.value.code) == "curate: train.jsonl:2: field 'answer': missing final answer line '#### <number>'"
    [run_] = mlflow.search_runs(experiment_names=[f"curate-{tmp_path.name}"], output_format="list")
    assert run_.info.status == "FAILED"


def test_incoming_files_join_train_validated_deduped_and_decontaminated(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    base = params(num_train=40, num_eval=10, min_steps=2, max_steps=3, incoming_dir=str(inbox))
    run(tmp_path, base)
    eval_q = load_curated(tmp_path / "curated")["eval"]["question"][0]
    write_jsonl(inbox / "new.jsonl", [gsm("Brand new problem one?"), gsm("Brand new problem one?"), gsm(eval_q)])
    (inbox / "notes.txt").write_text("ignored")
    m = run(tmp_path, base)
    train = load_curated(tmp_path / "curated")["train"]
    assert len(train) == 41 and "Brand new problem one?" in train["question"]
    assert m["incoming"]["files"] == 1 and m["incoming"]["kept"] == 1
    assert m["incoming"]["duplicates"] == 1 and m["incoming"]["contaminated"] == 1

    assert m["incoming"]["ignored_files"] == 1 and m["incoming"]["ignored"] == ["notes.txt"]

    write_jsonl(inbox / "bad.jsonl", [gsm("fine?"), {"question": "no answer"}])
    with pytest.raises(DataError, match=r"bad\.jsonl:2.*answer"):
        run(tmp_path, base)
    assert len(load_curated(tmp_path / "curated")["train"]) == 41  # last good output kept


def test_incoming_reads_any_case_of_jsonl_json_parquet_and_lists_what_it_ignores(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    inbox = tmp_path / "inbox"
    (inbox / "subdir").mkdir(parents=True)
    write_jsonl(inbox / "upper.JSONL", [gsm("From upper-case jsonl?")])
    write_jsonl(inbox / "plain.json", [gsm("From a .json file?")])
    pq.write_table(pa.Table.from_pylist([gsm("From upper-case parquet?")]), inbox / "table.PARQUET")
    (inbox / "notes.txt").write_text("not problems")
    (inbox / "README.md").write_text("drop files here")
    p = params(num_train=20, num_eval=5, min_steps=2, max_steps=3, incoming_dir=str(inbox))
    m = run(tmp_path, p)
    assert (m["incoming"]["files"], m["incoming"]["kept"]) == (3, 3)
    assert m["incoming"]["ignored_files"] == 3 and m["incoming"]["ignored"] == ["README.md", "notes.txt", "subdir/"]
    assert summary(m, p).endswith(f"; not read from {inbox} (not .jsonl/.json/.parquet): README.md, notes.txt, subdir/")
    assert {"From upper-case jsonl?", "From a .json file?", "From upper-case parquet?"} <= set(
        load_curated(tmp_path / "curated")["train"]["question"]
    )
    (inbox / "upper.JSONL").unlink(), (inbox / "plain.json").unlink(), (inbox / "table.PARQUET").unlink()
    m = run(tmp_path, params(num_train=20, num_eval=5, min_steps=2, max_steps=3, incoming_dir=str(inbox)))
    assert (m["incoming"]["files"], m["incoming"]["ignored_files"]) == (0, 3)  # only ignored files: still reported
