"""Real data files: loading through `datasets`, GSM8K/MATH answers, math-verify, bad rows named or skipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rl_distill.tasks.base import Verdict
from rl_distill.tasks.format import is_well_formed
from rl_distill.tasks.jsonl import split_solution
from rl_distill.tasks.jsonl_loader import BadRowError
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


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        _task(tmp_path / "nope.jsonl").generate(1, 1, seed=0)


def test_split_solution_modes() -> None:
    assert split_solution("a #### 1,000", "auto") == ("a", "1000")
    assert split_solution("so \\boxed{x^{2}}", "auto") == ("so \\boxed{x^{2}}", "x^{2}")
    assert split_solution("so \\boxed{x}", "none") == ("", "so \\boxed{x}")
