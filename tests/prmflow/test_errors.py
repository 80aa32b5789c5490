"""A stage run directly reports a user-fixable error in one line: the path and the cause."""

import errno

import pytest

from prmflow.errors import describe, reported
from prmflow.problems.sources import DataError


def test_disk_errors_name_the_path_and_the_cause():
    full = OSError(errno.ENOSPC, "No space left on device", "models/.base.tmp-1-x/model.safetensors")
    assert describe(full) == "cannot write models/.base.tmp-1-x/model.safetensors: the disk is full (No space left on device)"
    ro = OSError(errno.EROFS, "Read-only file system", "metrics/eval.json")
    assert describe(ro) == "cannot write metrics/eval.json: the file system is read-only (Read-only file system)"
    assert describe(FileNotFoundError("data/curated: no curated data; run the curate stage first")).startswith("data/curated: no curated")
    assert describe(ValueError("a bug")) is None  # not the user's to fix: the traceback stays


def test_a_stage_main_exits_with_the_message_not_a_traceback(tmp_path, monkeypatch, capsys):
    import tasks.curate as stage

    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text((__import__("tests.conftest", fromlist=["ROOT"]).ROOT / "params.yaml").read_text())
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")

    def disk_full(params, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", "data/.curated.tmp-1-x")

    monkeypatch.setattr(stage, "run", disk_full)
    with pytest.raises(SystemExit) as e:
        stage.main([])
    assert e.value.code == "curate: cannot write data/.curated.tmp-1-x: the disk is full (No space left on device)"


def test_reported_passes_data_errors_as_their_message():
    with pytest.raises(SystemExit) as e:
        with reported("curate"):
            raise DataError("train.jsonl", "invalid JSON", 3, None)
    assert e.value.code == "curate: train.jsonl:3: invalid JSON"
