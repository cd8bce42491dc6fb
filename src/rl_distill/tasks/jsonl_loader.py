"""Read question/answer rows from real data files (GSM8K, MATH, K&K; jsonl/json/parquet), naming bad rows.

Files are read through ``datasets.load_dataset("json" | "parquet", data_files=...)``. When that fails on a
malformed JSON-lines file, the file is scanned line by line to name the bad line. Every row is checked for its
fields; a bad row raises :class:`BadRowError` naming the file, the line (or row) and the field, or, with
``on_bad_row="skip"``, is skipped and reported in :attr:`LoadResult.skipped`.

JSON files (lines or array) are first streamed as bytes, one line at a time, to check that they are UTF-8
(``datasets`` would quietly turn a bad byte into U+FFFD). A JSON-lines row with bytes that are not valid UTF-8 is
a bad row like any other, named with its line, the 1-based character column and the byte(s); in a JSON array
file such a byte makes the whole file unreadable, so it raises :class:`BadRowError` whatever ``on_bad_row``
says. A UTF-8 byte-order mark at the start of a file is allowed and not counted in columns. Lines are split as
text mode splits them (``\\n``, ``\\r\\n`` or ``\\r``); columns (UTF-8 and malformed-JSON errors) are 1-based and
count characters, as an editor shows them.
"""

from __future__ import annotations

import codecs
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


def _utf8_error(raw: bytes, exc: UnicodeDecodeError) -> str:
    column = len(raw[:exc.start].decode("utf-8")) + 1  # the prefix before the first bad byte is valid
    bad = raw[exc.start:exc.end]
    shown = " ".join(f"0x{b:02x}" for b in bad)
    return (f"not valid UTF-8 ({'byte' if len(bad) == 1 else 'bytes'} {shown} at column {column}); "
            "re-encode the file as UTF-8")


def _lines(path: Path) -> Iterator[tuple[int, str, str | None]]:
    """(1-based line number, text, UTF-8 error or None) per non-blank line, streamed as bytes.

    Lines are split at ``\\n``, ``\\r\\n`` and ``\\r`` (as text mode does) and lose their terminator; a leading
    BOM is dropped. A line that is not valid UTF-8 comes with its error and its text decoded with U+FFFD.
    """
    number = 0
    with path.open("rb") as handle:
        for chunk in handle:  # chunks end at b"\n"; splitlines also splits a lone b"\r", like text mode
            for raw in chunk.splitlines():
                number += 1
                if number == 1 and raw.startswith(codecs.BOM_UTF8):
                    raw = raw[len(codecs.BOM_UTF8):]
                try:
                    text, error = raw.decode("utf-8"), None
                except UnicodeDecodeError as exc:
                    text, error = raw.decode("utf-8", errors="replace"), _utf8_error(raw, exc)
                if text.strip():
                    yield number, text, error


@dataclasses.dataclass(frozen=True)
class _Survey:
    json_lines: bool  # the first non-blank line does not open a JSON array
    numbers: list[int]  # 1-based numbers of the non-blank lines (the rows ``datasets`` reads from JSON lines)
    bad_utf8: dict[int, str]  # line number -> UTF-8 error


def _survey(path: Path) -> _Survey:
    json_lines: bool | None = None
    numbers: list[int] = []
    bad_utf8: dict[int, str] = {}
    for number, text, error in _lines(path):
        if json_lines is None:
            json_lines = not text.lstrip().startswith("[")
        numbers.append(number)
        if error is not None:
            bad_utf8[number] = error
    return _Survey(json_lines=json_lines is not False, numbers=numbers, bad_utf8=bad_utf8)


def _scan_json_lines(path: Path) -> Iterator[tuple[str, dict[str, Any] | None, str | None]]:
    """(where, record or None, error) per non-blank line, parsing each line on its own."""
    for number, line, utf8_error in _lines(path):
        where = f"{path}:line {number}"
        if utf8_error is not None:
            yield where, None, utf8_error
            continue
        try:
            record = json.loads(line)  # one line without its terminator: colno is its 1-based character column
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
    survey = _survey(path) if file_format == "json" else None
    json_lines = survey is not None and survey.json_lines
    if survey is not None and not json_lines and survey.bad_utf8:
        number, error = min(survey.bad_utf8.items())
        raise BadRowError(f"{path}:line {number}: {error} (a JSON array file is read whole, so on_bad_row: skip "
                          "cannot skip it)")
    try:
        records = _records_from_datasets(path, file_format, cache_dir)
    except Exception as exc:
        if not json_lines:
            raise BadRowError(f"{path}: cannot be read as {file_format}: {exc}") from exc
        yield from _scan_json_lines(path)
        return
    if survey is not None and survey.json_lines:
        if len(survey.numbers) == len(records):  # one record per non-blank line, a bad-UTF-8 line's included
            for number, record in zip(survey.numbers, records):
                error = survey.bad_utf8.get(number)
                yield f"{path}:line {number}", (None if error else record), error
            return
        if survey.bad_utf8:  # which record came from the bad line is unknown: parse line by line instead
            yield from _scan_json_lines(path)
            return
    for i, record in enumerate(records):
        yield f"{path}:row {i + 1}", record, None


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
        seen = 0
        for where, record, error in _records(path, file_format, cache_dir):
            seen += 1
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
        if seen == 0:
            raise BadRowError(f"{path}: the file holds no rows; point data_files at a file with one JSON object per "
                              "line (or a JSON array of objects, or parquet)")
    return LoadResult(rows=rows, skipped=skipped)
