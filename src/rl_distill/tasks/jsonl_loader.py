"""Read question/answer rows from real data files (GSM8K, MATH, K&K; jsonl/json/parquet), naming bad rows.

Files are read through ``datasets.load_dataset("json" | "parquet", data_files=...)``. When that fails on a
malformed JSON-lines file, the file is scanned line by line to name the bad line. Every row is checked for its
fields; a bad row raises :class:`BadRowError` naming the file, the line (or row) and the field, or, with
``on_bad_row="skip"``, is skipped and reported in :attr:`LoadResult.skipped`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ON_BAD_ROW = ("error", "skip")
FILE_FORMATS = ("json", "parquet")


class BadRowError(ValueError):
    """A row of a data file is malformed; the message names the file, the line or row, and the field."""


@dataclasses.dataclass(frozen=True)
class Row:
    """One validated row: where it came from and its text fields (numbers already turned into strings)."""

    where: str  # "path:line 3" or "path:row 3"
    question: str
    answer: str
    solution: str | None
    difficulty: int | None


@dataclasses.dataclass(frozen=True)
class LoadResult:
    rows: list[Row]
    skipped: list[str]  # one message per skipped row


def _records_from_datasets(path: Path, file_format: str, cache_dir: str | None) -> list[dict[str, Any]]:
    import datasets  # lazily: only real-data runs need it

    dataset = datasets.load_dataset(file_format, data_files=str(path), split="train", cache_dir=cache_dir)
    return list(dataset)


def _is_json_lines(path: Path) -> bool:
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.strip():
                return not line.lstrip().startswith("[")
    return True


def _line_numbers(path: Path) -> list[int]:
    """1-based numbers of the non-blank lines (the rows ``datasets`` reads from a JSON-lines file)."""
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        return [i for i, line in enumerate(handle, start=1) if line.strip()]


def _scan_json_lines(path: Path) -> Iterator[tuple[str, dict[str, Any] | None, str | None]]:
    """(where, record or None, error) per non-blank line, parsing each line on its own."""
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:line {number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                yield where, None, f"malformed JSON ({exc.msg} at column {exc.colno})"
                continue
            if not isinstance(record, dict):
                yield where, None, f"expected a JSON object, got {type(record).__name__}"
                continue
            yield where, record, None


def _text(record: dict[str, Any], field: str, required: bool) -> str | None:
    if field not in record or record[field] is None:
        if required:
            raise KeyError(f"field '{field}' is missing")
        return None
    value = record[field]
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise KeyError(f"field '{field}' must be a string or a number, got {type(value).__name__}")
    text = str(value).strip()
    if required and not text:
        raise KeyError(f"field '{field}' is empty")
    return text


@dataclasses.dataclass(frozen=True)
class Fields:
    question: str = "question"
    answer: str = "answer"
    solution: str | None = None
    difficulty: str | None = None


def _validate(where: str, record: dict[str, Any], fields: Fields) -> Row:
    question = _text(record, fields.question, required=True)
    answer = _text(record, fields.answer, required=True)
    solution = _text(record, fields.solution, required=False) if fields.solution else None
    difficulty = None
    if fields.difficulty:
        raw = _text(record, fields.difficulty, required=True)
        digits = "".join(c for c in raw if c.isdigit())  # MATH writes "Level 3"
        if not digits:
            raise KeyError(f"field '{fields.difficulty}' must contain an integer, got {raw!r}")
        difficulty = int(digits)
    return Row(where=where, question=question, answer=answer, solution=solution, difficulty=difficulty)


def _records(path: Path, file_format: str, cache_dir: str | None
             ) -> Iterator[tuple[str, dict[str, Any] | None, str | None]]:
    json_lines = file_format == "json" and _is_json_lines(path)
    try:
        records = _records_from_datasets(path, file_format, cache_dir)
    except Exception as exc:
        if not json_lines:
            raise BadRowError(f"{path}: cannot be read as {file_format}: {exc}") from exc
        yield from _scan_json_lines(path)
        return
    if json_lines:
        numbers = _line_numbers(path)
        places = [f"{path}:line {n}" for n in numbers] if len(numbers) == len(records) else None
    else:
        places = None
    for i, record in enumerate(records):
        yield (places[i] if places else f"{path}:row {i + 1}"), record, None


def load_rows(data_files: Sequence[str], file_format: str = "json", fields: Fields | None = None,
              on_bad_row: str = "error", cache_dir: str | None = None) -> LoadResult:
    """Read and validate every row of ``data_files``."""
    if on_bad_row not in ON_BAD_ROW:
        raise ValueError(f"on_bad_row={on_bad_row!r}; valid: {', '.join(ON_BAD_ROW)}")
    if file_format not in FILE_FORMATS:
        raise ValueError(f"file_format={file_format!r}; valid: {', '.join(FILE_FORMATS)}")
    fields = fields or Fields()
    rows: list[Row] = []
    skipped: list[str] = []
    for name in data_files:
        path = Path(name)
        if not path.is_file():
            raise FileNotFoundError(f"data file {path} does not exist")
        for where, record, error in _records(path, file_format, cache_dir):
            try:
                if error is not None:
                    raise KeyError(error)
                rows.append(_validate(where, record or {}, fields))
            except KeyError as exc:
                message = f"{where}: {exc.args[0]}"
                if on_bad_row == "error":
                    hint = "(set on_bad_row: skip to skip and count bad rows)"
                    raise BadRowError(f"{message} {hint}") from None
                skipped.append(message)
    return LoadResult(rows=rows, skipped=skipped)
