"""Real data files: loading through `datasets`, GSM8K/MATH answers, math-verify, bad rows named or skipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rl_distill.tasks import jsonl_loader
from rl_distill.tasks.base import Verdict
from rl_distill.tasks.format import is_well_formed
from rl_distill.tasks.jsonl import split_solution
from rl_distill.tasks.jsonl_loader import BadRowError, load_rows
from rl_distill.tasks.registry import get_task

ROWS = [
    {"question": "Tom has 3 apples and buys 4 more. How many?", "answer": "3 + 4 = 7\n#### 7"},
    {"question": "What is half of one?", "answer": "One half is $\\boxed{\\frac{1}{2}}$."},
    {"question": "Is 2 even?", "answer": 2, "level": "Level 2"},
]


def _write(path: Path, rows: list, extra_lines: tuple[str, ...] = ()) -> Path:
    lines = [json.dumps(r) for r in rows] + list(extra_lines)
    path.write_text("\n".join(lines) + "\n")
    return path


def _task(path: Path, **params):
    return get_task("jsonl", data_files=[str(path)], cache_dir=str(path.parent / "hf_cache"), **params)


def test_loads_and_extracts_answers(tmp_path: Path) -> None:
    task = _task(_write(tmp_path / "data.jsonl", ROWS))
    examples = task.generate(10, 1, seed=0)
    assert len(examples) == 3
    by_question = {ex.prompt.strip(): ex for ex in examples}
    tom = by_question[ROWS[0]["question"]]
    assert tom.answer == "7"
    assert tom.trace == "<think>3 + 4 = 7</think><answer>7</answer>"
    assert by_question["What is half of one?"].answer == "\\frac{1}{2}"
    assert by_question["Is 2 even?"].answer == "2"  # numbers become strings
    for ex in examples:
        assert is_well_formed(ex.trace) and task.verify(ex.trace, ex.answer) is Verdict.CORRECT


def test_math_verify_equivalence(tmp_path: Path) -> None:
    task = _task(_write(tmp_path / "data.jsonl", ROWS))
    answer = "\\frac{1}{2}"
    assert task.verify("<think></think><answer>0.5</answer>", answer) is Verdict.CORRECT
    assert task.verify("<think></think><answer>$\\dfrac{2}{4}$</answer>", answer) is Verdict.CORRECT
    assert task.verify("<think></think><answer>1/3</answer>", answer) is Verdict.WRONG
    assert task.verify("<think></think><answer>no idea</answer>", answer) is Verdict.UNPARSEABLE
    assert task.verify("no tags", answer) is Verdict.UNPARSEABLE


def test_exact_answers(tmp_path: Path) -> None:
    task = _task(_write(tmp_path / "data.jsonl", ROWS), answer_kind="exact")
    assert task.verify("<answer> Zoey  is a KNAVE </answer>", "Zoey is a knave") is Verdict.CORRECT
    assert task.verify("<answer>Zoey is a knight</answer>", "Zoey is a knave") is Verdict.WRONG


def test_difficulty_field(tmp_path: Path) -> None:
    rows = [{"question": f"q{i}", "answer": str(i), "level": f"Level {1 + i % 2}"} for i in range(6)]
    task = _task(_write(tmp_path / "data.jsonl", rows), difficulty_field="level")
    assert sorted(ex.answer for ex in task.generate(10, 2, seed=0)) == ["1", "3", "5"]


def test_parquet(tmp_path: Path) -> None:
    import polars as pl

    path = tmp_path / "data.parquet"
    pl.DataFrame({"problem": ["1+1?", "2+2?"], "solution": ["$\\boxed{2}$", "$\\boxed{4}$"]}).write_parquet(path)
    task = _task(path, file_format="parquet", question_field="problem", answer_field="solution")
    assert sorted(ex.answer for ex in task.generate(5, 1, seed=0)) == ["2", "4"]


def test_malformed_json_line_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.jsonl", ROWS[:2], extra_lines=('{"question": "broken", ',))
    with pytest.raises(BadRowError, match=r"bad\.jsonl:line 3: malformed JSON"):
        _task(path).generate(10, 1, seed=0)


def test_missing_field_names_file_line_and_field(tmp_path: Path) -> None:
    path = _write(tmp_path / "missing.jsonl", [ROWS[0], {"question": "no answer here"}, ROWS[1]])
    with pytest.raises(BadRowError, match=r"missing\.jsonl:line 2: field 'answer' is missing"):
        _task(path).generate(10, 1, seed=0)


def test_skip_counts_bad_rows(tmp_path: Path) -> None:
    path = _write(tmp_path / "mixed.jsonl", [ROWS[0], {"question": "", "answer": "1"}, ROWS[1]],
                  extra_lines=("not json", '{"question": "q", "answer": [1, 2]}'))
    task = _task(path)
    examples = task.generate(10, 1, seed=0, on_bad_row="skip")
    assert len(examples) == 2
    assert len(task.skipped) == 3
    assert any("line 2: field 'question' is empty" in m for m in task.skipped)
    assert any("line 4: malformed JSON" in m for m in task.skipped)
    assert any("line 5: field 'answer' must be a string or a number" in m for m in task.skipped)


def _load(path: Path, on_bad_row: str = "error"):
    return load_rows([str(path)], on_bad_row=on_bad_row, cache_dir=str(path.parent / "hf_cache"))


def test_non_utf8_row_error_names_line_column_and_byte(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"question": "1+1", "answer": "2"}\n{"question": "caf\xe9", "answer": "3"}\n')
    # line 2: '{' 1, '"question"' 2-11, ':' 12, ' ' 13, '"' 14, 'caf' 15-17, so the Latin-1 e-acute 0xe9 is column 18
    with pytest.raises(BadRowError, match=r"bad\.jsonl:line 2: not valid UTF-8 \(byte 0xe9 at column 18\); "
                                          r"re-encode the file as UTF-8 \(set on_bad_row: skip"):
        _load(path)


@pytest.mark.parametrize("datasets_replaces", [False, True], ids=["datasets-raises", "datasets-replaces"])
def test_non_utf8_rows_skipped_and_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           datasets_replaces: bool) -> None:
    lines = [b'{"question": "q1", "answer": "1"}',
             b"",
             b'{"question": "\xc3\xa9t\xc3\xa9 \xe2\x82", "answer": "2"}',  # "ete " in UTF-8, then half a euro sign
             '{"question": "naïve", "answer": "4"}'.encode(),
             b'{"question": "q5", "answer": "\xff"}',
             b'{"question": "q6", "answer": "6"}']
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    if datasets_replaces:
        # the installed `datasets` fails on these bytes (so the rows come from the line scanner); one that decodes
        # them as U+FFFD instead hands back one record per non-blank line, mapped to line numbers
        records = [json.loads(line.decode("utf-8", errors="replace")) for line in lines if line]
        monkeypatch.setattr(jsonl_loader, "_records_from_datasets", lambda *args: records)
    result = _load(path, on_bad_row="skip")
    assert [(r.where, r.question, r.answer) for r in result.rows] == [
        (f"{path}:line 1", "q1", "1"), (f"{path}:line 4", "naïve", "4"), (f"{path}:line 6", "q6", "6")]
    assert not any("\ufffd" in f"{r.question}{r.answer}" for r in result.rows)
    expected = [
        # line 3: '{"question": "' is 14 characters, 'é' 15, 't' 16, 'é' 17, ' ' 18: 0xe2 0x82 start at column 19
        f"{path}:line 3: not valid UTF-8 (bytes 0xe2 0x82 at column 19); re-encode the file as UTF-8",
        # line 5: '{"question": "q5", "answer": "' is 1 + 10 + 2 + 4 + 2 + 8 + 2 + 1 = 30 characters: column 31
        f"{path}:line 5: not valid UTF-8 (byte 0xff at column 31); re-encode the file as UTF-8",
    ]
    assert result.skipped == expected


@pytest.mark.parametrize("on_bad_row", ["error", "skip"])
def test_non_utf8_json_array_file_is_unreadable(tmp_path: Path, on_bad_row: str) -> None:
    path = tmp_path / "array.json"
    path.write_bytes(b'[\n  {"question": "q1", "answer": "1"},\n  {"question": "caf\xe9", "answer": "2"}\n]\n')
    # line 3: two spaces, then '{"question": "caf' (17 characters): 0xe9 is column 20
    with pytest.raises(BadRowError, match=r"array\.json:line 3: not valid UTF-8 \(byte 0xe9 at column 20\); .*"
                                          r"so on_bad_row: skip cannot skip it"):
        _load(path, on_bad_row=on_bad_row)


def test_bom_prefixed_files_load(tmp_path: Path) -> None:
    lines_path = tmp_path / "bom.jsonl"
    lines_path.write_bytes(b'\xef\xbb\xbf{"question": "q1", "answer": "1"}\n{"question": "q2", "answer": "2"}\n')
    result = _load(lines_path)
    assert [(r.where, r.question) for r in result.rows] == [(f"{lines_path}:line 1", "q1"),
                                                             (f"{lines_path}:line 2", "q2")]
    assert result.skipped == []
    array_path = tmp_path / "bom.json"
    array_path.write_bytes(b'\xef\xbb\xbf[{"question": "q1", "answer": "1"}, {"question": "q2", "answer": "2"}]\n')
    result = _load(array_path)
    assert [(r.where, r.question) for r in result.rows] == [(f"{array_path}:row 1", "q1"),
                                                             (f"{array_path}:row 2", "q2")]


@pytest.mark.parametrize(("bad_line", "number", "expected"), [
    # '{' 1, '"question"' 2-11, ':' 12, ' ' 13, '"héllo"' 14-20, ' ' 21, '"answer"' starts at 22 (byte 23: é is 2 bytes)
    ('{"question": "héllo" "answer": "1"}\n'.encode(), 2, "Expecting ',' delimiter at column 22"),
    # spaces 1-3, '{' 4, '"question"' 5-14, ':' 15, ' ' 16, '"q"' 17-19, ',' 20, ' ' 21, '}' 22
    (b'   {"question": "q", }\n', 2, "Expecting property name enclosed in double quotes at column 22"),
    # '{"question": "broken", ' is 23 characters, so the end of the line is column 24 (json alone would say line 2
    # column 1, having passed the line's terminator)
    (b'{"question": "broken", \n', 2, "Expecting property name enclosed in double quotes at column 24"),
    (b'{"question": "broken", \r\n', 2, "Expecting property name enclosed in double quotes at column 24"),
    # a BOM before line 1 is not a column: '{"question": "q"' is 16 characters, ' ' 17, '"answer"' starts at 18
    (b'\xef\xbb\xbf{"question": "q" "answer": "1"}\n', 1, "Expecting ',' delimiter at column 18"),
], ids=["multibyte-before", "leading-spaces", "end-of-line", "end-of-crlf-line", "bom"])
def test_malformed_json_column_is_the_character_column(tmp_path: Path, bad_line: bytes, number: int,
                                                       expected: str) -> None:
    good = b'{"question": "q", "answer": "1"}\n'
    path = tmp_path / "cols.jsonl"
    path.write_bytes(bad_line + good if number == 1 else good + bad_line)
    result = _load(path, on_bad_row="skip")
    assert result.skipped == [f"{path}:line {number}: malformed JSON ({expected})"]
    assert [r.where for r in result.rows] == [f"{path}:line {2 if number == 1 else 1}"]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        _task(tmp_path / "nope.jsonl").generate(1, 1, seed=0)


def test_split_solution_modes() -> None:
    assert split_solution("a #### 1,000", "auto") == ("a", "1000")
    assert split_solution("so \\boxed{x^{2}}", "auto") == ("so \\boxed{x^{2}}", "x^{2}")
    assert split_solution("so \\boxed{x}", "none") == ("", "so \\boxed{x}")
