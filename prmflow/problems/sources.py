"""Problem sources: read a source into records of the curated schema, validating every one.

A record (one problem; every field always present)::

    id            "<source>-<sha1 of the normalised question, 12 hex digits>"
    question      the question text (surrounding whitespace stripped)
    answer        reference steps one per line, then "#### <final>"; calculator annotations
                  (``<<48/2=24>>``) stripped. Just "#### <final>" when the source has no steps.
    final_answer  the final answer, exactly one number, as :func:`reward.parse.read_number`
                  writes it (``$1,234.50`` -> ``1234.5``), so a policy's answer compares by
                  string equality; anything else ("3 1/2", "2,5", "1 234") is refused
    steps         reference steps (may be empty)
    source        synthetic | gsm8k | jsonl | parquet | hf
    difficulty    number of reference steps (0 when the source has none)

Sources: the synthetic generator, GSM8K JSONL, any JSONL or parquet file with a column mapping
(``data.columns``) and any Hugging Face dataset. Readers never drop anything silently: each
yields a record or a :class:`DataError` naming file, line (1-based for JSONL; 0-based row index
for parquet and HF datasets) and field, so the caller either raises at the first one or
quarantines them. Problems with the whole source (missing file, missing column, a dataset that
cannot be loaded) are raised at once: there is no record to quarantine.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from prmflow.config import ColumnMapping, DataConfig
from prmflow.problems import synthetic
from reward.parse import FINAL_MARKER, extract_answer, join_solution, read_number, split_steps, strip_calculator

FileSource = Literal["gsm8k", "jsonl", "parquet"]
GSM8K_COLUMNS = ColumnMapping()  # question / answer, final answer after "####"
_WS_RE = re.compile(r"\s+")


class DataError(ValueError):
    """A bad source or record: ``<file>:<line>: field '<field>': <reason>``.

    ``line`` is the 1-based line of a JSONL file or ``row N`` (0-based) of a table; ``None``
    for errors about the whole source. ``raw`` keeps the offending record for quarantine.
    """

    def __init__(self, file: str, reason: str, line: int | None = None, field: str | None = None, raw: Any = None, row: bool = False):
        self.file, self.reason, self.line, self.field, self.raw, self.row = str(file), reason, line, field, raw, row
        where = self.file if line is None else f"{self.file}:{'row ' if row else ''}{line}"
        super().__init__(f"{where}: field '{field}': {reason}" if field else f"{where}: {reason}")

    def __reduce__(self):  # keeps it picklable (e.g. across worker processes)
        return type(self), (self.file, self.reason, self.line, self.field, self.raw, self.row)

    def to_dict(self) -> dict:
        """JSON-ready description for ``rejects.jsonl``."""
        return {
            "file": self.file,
            "line": self.line if not self.row else None,
            "row": self.line if self.row else None,
            "field": self.field,
            "reason": self.reason,
            "message": str(self),
            "raw": _jsonable(self.raw),
        }


def _jsonable(x: Any) -> Any:
    try:
        return json.loads(json.dumps(x, default=str))
    except RecursionError:  # a record nested nearly as deep as json can read; repr would recurse too
        return f"<{type(x).__name__} nested too deeply to write>"
    except (TypeError, ValueError):
        return repr(x)


# --------------------------------------------------------------------------- normalisation


def normalize_question(text: str) -> str:
    """Key for dedupe and decontamination: lowercase, whitespace collapsed."""
    return _WS_RE.sub(" ", text).strip().lower()


def problem_id(source: str, question: str) -> str:
    return f"{source}-{hashlib.sha1(normalize_question(question).encode()).hexdigest()[:12]}"


def make_record(question: str, steps: list[str], final_answer: str, source: str) -> dict:
    return {
        "id": problem_id(source, question),
        "question": question,
        "answer": join_solution(steps, final_answer),
        "final_answer": final_answer,
        "steps": list(steps),
        "source": source,
        "difficulty": len(steps),
    }


NOT_ONE_NUMBER = "final answer not one number: {!r} (write one number: 1,234  -2.5  $18  18%)"


def _as_text(value: str | int | float) -> str:
    """A final-answer cell as text; floats in positional notation (``1e+20`` would not read)."""
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f")
    return str(value)


def to_record(raw: Any, columns: ColumnMapping, source: str, file: str, line: int, row: bool = False) -> dict:
    """Validate one raw record (a JSON object or table row) and turn it into the schema.

    Raises :class:`DataError`. Rules: question and answer columns must hold non-empty strings.
    Without a ``final_answer`` column the answer must end in ``#### <number>``. With one, it
    holds the final answer (string or number) and the answer column holds the steps; an empty
    or null answer then means "no steps", and a ``####`` line in it must agree with that column.
    A final answer must be exactly one number (:func:`reward.parse.read_number`).
    """

    def err(reason: str, col: str | None = None) -> DataError:
        return DataError(file, reason, line, col, raw, row)

    if not isinstance(raw, Mapping):
        hint = " (a JSON array file is not JSONL: write one object per line)" if isinstance(raw, list) and not row else ""
        raise err(f"expected a JSON object, got {type(raw).__name__}{hint}")

    def text(col: str, role: str, allow_empty: bool = False) -> str:
        mapped = f" (mapped as data.columns.{role})" if col != role else ""
        if col not in raw:
            raise err(f"missing{mapped}; record has {sorted(map(str, raw))}", col)
        value = raw[col]
        if value is None and allow_empty:
            return ""
        if not isinstance(value, str):
            raise err(f"expected a string, got {type(value).__name__}{mapped}", col)
        if not value.strip() and not allow_empty:
            raise err(f"empty {role}{mapped}", col)
        return value

    question = text(columns.question, "question").strip()
    fcol = columns.final_answer
    if fcol is None:
        answer = strip_calculator(text(columns.answer, "answer"))
        final_line = next((ln.strip() for ln in answer.split("\n") if ln.strip().startswith(FINAL_MARKER)), None)
        if final_line is None:
            raise err("missing final answer line '#### <number>'", columns.answer)
        final = read_number(final_line[len(FINAL_MARKER) :])
        if final is None:
            raise err(NOT_ONE_NUMBER.format(final_line), columns.answer)
        return make_record(question, split_steps(answer), final, source)

    if fcol not in raw or raw[fcol] is None:
        raise err("missing" if fcol not in raw else "null final answer", fcol)
    value = raw[fcol]
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise err(f"expected a string or number, got {type(value).__name__}", fcol)
    final = read_number(_as_text(value))
    if final is None:
        raise err(NOT_ONE_NUMBER.format(value), fcol)
    if columns.answer == fcol:  # the source has no steps, only the answer
        return make_record(question, [], final, source)
    answer = strip_calculator(text(columns.answer, "answer", allow_empty=True))
    own = extract_answer(answer)
    if own is not None and own != final:
        raise err(f"final answer {final!r} disagrees with the answer's '####' line ({own!r})", fcol)
    return make_record(question, split_steps(answer), final, source)


# --------------------------------------------------------------------------- readers


def _check_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataError(str(path), "file not found" if not path.exists() else "not a file")
    return path


def _loads(line: str, file: str, lineno: int) -> Any:
    """The JSON value of one line, or a :class:`DataError` for any line ``json`` cannot read."""
    try:
        return json.loads(line)
    except json.JSONDecodeError as e:
        hint = " (a JSON array file is not JSONL: write one object per line)" if line.lstrip().startswith("[") else ""
        reason = f"invalid JSON: {e.msg} (column {e.colno}){hint}"
    except RecursionError:
        reason = "unreadable JSON: nested too deeply"
    except ValueError as e:  # an integer of more digits than int() may read (sys.get_int_max_str_digits)
        reason = f"unreadable JSON: {str(e).split(';')[0]}"  # the rest advises raising Python's limit
    return DataError(file, reason, lineno, raw=line.rstrip("\n"))


def iter_json_lines(path: Path) -> Iterator[tuple[int, Any]]:
    """``(line number, value or DataError)`` for each non-blank line of a JSONL file (1-based).

    A line that is not UTF-8 or that ``json`` cannot read (bad syntax, a number of over 4,300
    digits, nesting deeper than its recursion) comes as a :class:`DataError`, never a crash.
    """
    with path.open("rb") as f:
        for lineno, data in enumerate(f, start=1):
            try:
                line = data.decode("utf-8")
            except UnicodeDecodeError as e:
                yield lineno, DataError(str(path), f"not valid UTF-8 ({e.reason} at byte {e.start})", lineno, raw=repr(data[:200]))
                continue
            if line.strip():
                yield lineno, _loads(line, str(path), lineno)


def iter_jsonl(path: str | Path, columns: ColumnMapping = GSM8K_COLUMNS, source: str = "jsonl") -> Iterator[dict | DataError]:
    """Records of a JSONL file (blank lines skipped); bad lines come as :class:`DataError`."""
    path = _check_file(path)
    for lineno, obj in iter_json_lines(path):
        if isinstance(obj, DataError):
            yield obj
            continue
        try:
            yield to_record(obj, columns, source, str(path), lineno)
        except DataError as e:
            yield e


def _iter_rows(rows: Iterable[Any], columns: ColumnMapping, source: str, name: str) -> Iterator[dict | DataError]:
    for i, r in enumerate(rows):
        try:
            yield to_record(r, columns, source, name, i, row=True)
        except DataError as e:
            yield e


def _check_columns(present: list[str], columns: ColumnMapping, name: str) -> None:
    needed = {"question": columns.question, "answer": columns.answer, "final_answer": columns.final_answer}
    for role, col in needed.items():
        if col is not None and col not in present:
            raise DataError(name, f"no column '{col}' (data.columns.{role}); columns are {present}")


def iter_parquet(path: str | Path, columns: ColumnMapping = GSM8K_COLUMNS, source: str = "parquet") -> Iterator[dict | DataError]:
    """Records of a parquet file; rows are numbered from 0 in messages (``row N``)."""
    import pyarrow.parquet as pq

    path = _check_file(path)
    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several types for a file that is not parquet
        raise DataError(str(path), f"not a readable parquet file: {e}") from e
    _check_columns(table.column_names, columns, str(path))
    yield from _iter_rows(table.to_pylist(), columns, source, str(path))


def hf_name(name: str, config: str | None, split: str) -> str:
    """How an HF dataset split is named in messages: ``openai/gsm8k/main[train]``."""
    return f"{name}{'/' + config if config else ''}[{split}]"


def _offline() -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE"):
        return True
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except Exception:  # pragma: no cover - very old huggingface_hub
        return False


def load_hf(name: str, config: str | None, split: str, revision: str | None = None):
    """``datasets.load_dataset(name, config, split=split, revision=...)`` with a clear error when it fails."""
    import datasets

    where = hf_name(name, config, split)
    try:
        return datasets.load_dataset(name, config, split=split, revision=revision)
    except Exception as e:
        if _offline() or isinstance(e, ConnectionError):
            why = "could not be loaded offline (HF_HUB_OFFLINE=1 or no network) and it is not in the local Hugging Face cache"
        else:
            why = "could not be loaded"
        call = ", ".join(repr(a) for a in (name, config) if a)
        raise DataError(
            where,
            f"Hugging Face dataset {why}: {type(e).__name__}: {e}. Download it once with network access "
            f"(`hf download --repo-type dataset {name}`, or `datasets.load_dataset({call})`) "
            "or export it to a local JSONL/parquet file and set data.source: jsonl|parquet and data.path",
        ) from e


def iter_hf(
    name: str, config: str | None, split: str, columns: ColumnMapping = GSM8K_COLUMNS, revision: str | None = None
) -> Iterator[dict | DataError]:
    """Records of one split of a Hugging Face dataset (rows numbered from 0)."""
    ds = load_hf(name, config, split, revision)
    where = hf_name(name, config, split)
    _check_columns(list(ds.column_names), columns, where)
    yield from _iter_rows(ds, columns, "hf", where)


def synthetic_problems(n: int, seed: int, data: DataConfig) -> list[dict]:
    """``n`` problems of ``data.task`` (may repeat questions: the curate stage dedupes)."""
    return [make_record(p["question"], p["steps"], p["final_answer"], "synthetic") for p in synthetic.problems(n, seed, data)]


# --------------------------------------------------------------------------- one entry point


def resolve_source(path: str | Path, source: str = "auto") -> FileSource:
    """``auto``: ``.jsonl``/``.json`` -> ``jsonl``, ``.parquet`` -> ``parquet``."""
    if source != "auto":
        if source not in ("gsm8k", "jsonl", "parquet"):
            raise DataError(str(path), f"unknown file source {source!r} (auto, gsm8k, jsonl or parquet)")
        return source  # type: ignore[return-value]
    suffix = Path(path).suffix.lower()
    if suffix in (".jsonl", ".json"):
        return "jsonl"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise DataError(str(path), f"cannot tell the format from the extension {suffix!r}: name the source (gsm8k, jsonl or parquet)")


def iter_file(path: str | Path, source: str = "auto", columns: ColumnMapping | None = None) -> Iterator[dict | DataError]:
    """Records (or errors) of a file source. ``gsm8k`` always reads GSM8K's own fields."""
    kind = resolve_source(path, source)
    if kind == "gsm8k":
        return iter_jsonl(path, GSM8K_COLUMNS, "gsm8k")
    if kind == "jsonl":
        return iter_jsonl(path, columns or GSM8K_COLUMNS, "jsonl")
    return iter_parquet(path, columns or GSM8K_COLUMNS, "parquet")


def read_problems(path: str | Path, source: str = "auto", columns: ColumnMapping | None = None) -> list[dict]:
    """All records of a file, raising :class:`DataError` at the first bad one (no dedupe)."""
    out = []
    for item in iter_file(path, source, columns):
        if isinstance(item, DataError):
            raise item
        out.append(item)
    return out
