"""The ``jsonl`` task: questions and answers from real data files, verified exactly or with math-verify.

Rows come from :mod:`rl_distill.tasks.jsonl_loader`. The answer field may carry the worked solution: GSM8K
writes ``"<reasoning> #### 72"`` and MATH a solution with ``\\boxed{...}``; ``answer_extract`` (``auto``
detects both) splits it into the reasoning (the reference trace's ``<think>``) and the final answer. Prompt:
the question followed by a newline. ``answer_kind="math"`` checks numeric and LaTeX answers with math-verify
(equivalence, not string match); ``"exact"`` compares strings with whitespace collapsed and case folded. A
completion is unparseable when it has no final ``<answer>`` or, for math, math-verify finds no expression in
it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import random
import string
import threading
from typing import Any, ClassVar

from rl_distill.tasks.base import PROMPT_END, Example, Task, example_id, normalize_whitespace
from rl_distill.tasks.format import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN
from rl_distill.tasks.jsonl_loader import FILE_FORMATS, Fields, Row, load_rows
from rl_distill.typed_config import ConfigError, check_choice

ANSWER_KINDS = ("math", "exact")
ANSWER_EXTRACT = ("auto", "none", "gsm8k", "boxed")
_LATEX_HINTS = "\\^{}()[]_"


@dataclasses.dataclass(frozen=True)
class JsonlConfig:
    """Where the rows are and how to read them (field names default to GSM8K's)."""

    data_files: tuple[str, ...] = ()
    file_format: str = "json"
    question_field: str = "question"
    answer_field: str = "answer"
    solution_field: str | None = None
    difficulty_field: str | None = None
    answer_kind: str = "math"
    answer_extract: str = "auto"
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        if not self.data_files:
            raise ConfigError("data_files: give at least one jsonl/json/parquet file.")
        check_choice("file_format", self.file_format, FILE_FORMATS)
        check_choice("answer_kind", self.answer_kind, ANSWER_KINDS)
        check_choice("answer_extract", self.answer_extract, ANSWER_EXTRACT)


def last_boxed(text: str) -> str | None:
    r"""Content of the last ``\boxed{...}`` (balanced braces), or None.

    >>> last_boxed(r"so $x = \boxed{\frac{1}{2}}$.")
    '\\frac{1}{2}'
    """
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, begin = 0, start + len("\\boxed{")
    for i in range(begin - 1, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[begin:i].strip()
    return None


def split_solution(text: str, mode: str) -> tuple[str, str]:
    """(reasoning, final answer) from an answer field.

    >>> split_solution("3 + 4 = 7 #### 7", "auto")
    ('3 + 4 = 7', '7')
    >>> split_solution("42", "auto")
    ('', '42')
    """
    if mode == "auto":
        mode = "gsm8k" if "####" in text else "boxed" if "\\boxed{" in text else "none"
    if mode == "gsm8k" and "####" in text:
        reasoning, _, final = text.rpartition("####")
        return reasoning.strip(), final.strip().replace(",", "")
    if mode == "boxed":
        boxed = last_boxed(text)
        if boxed is not None:
            return text.strip(), boxed
    return "", text.strip()


@functools.lru_cache(maxsize=65536)
def _math_parse(text: str) -> tuple[Any, ...]:
    from math_verify import parse  # lazily: only real-data runs need it

    timeout = 5 if threading.current_thread() is threading.main_thread() else None  # signal.alarm needs main
    parsed = parse(text, parsing_timeout=timeout)
    if not parsed and any(c in text for c in _LATEX_HINTS):  # bare LaTeX (\sqrt{2}) needs math delimiters
        parsed = parse(f"${text}$", parsing_timeout=timeout)
    return tuple(parsed)


def math_equal(predicted: str, gold: str) -> bool:
    """math-verify equivalence of two answer strings (numbers, fractions, LaTeX); False if either has none."""
    from math_verify import verify

    gold_parsed, pred_parsed = _math_parse(gold), _math_parse(predicted)
    if not gold_parsed or not pred_parsed:
        return False
    timeout = 5 if threading.current_thread() is threading.main_thread() else None
    return bool(verify(list(gold_parsed), list(pred_parsed), timeout_seconds=timeout))


class JsonlTask(Task):
    """Rows of real data files. ``skipped`` lists the bad rows skipped by the last ``generate``."""

    name: ClassVar[str] = "jsonl"
    alphabet: ClassVar[str] = "".join(sorted(set(string.printable) - set("\x0b\x0c")))
    case_sensitive: ClassVar[bool] = False
    procedural: ClassVar[bool] = False
    Config = JsonlConfig

    def __init__(self, config: JsonlConfig) -> None:
        self.config = config
        self.skipped: list[str] = []
        self._rows: tuple[str, list[Row]] | None = None

    def _load(self, on_bad_row: str) -> list[Row]:
        if self._rows is None or self._rows[0] != on_bad_row:
            cfg = self.config
            fields = Fields(cfg.question_field, cfg.answer_field, cfg.solution_field, cfg.difficulty_field)
            result = load_rows(cfg.data_files, cfg.file_format, fields, on_bad_row, cfg.cache_dir)
            self.skipped = result.skipped
            self._rows = (on_bad_row, result.rows)
        return self._rows[1]

    def generate(self, n: int, difficulty: int, seed: int, **opts: Any) -> list[Example]:
        """Up to ``n`` rows (seeded shuffle) of the given ``difficulty``.

        With a ``difficulty_field`` only rows of that difficulty are used; without one every row is labelled
        with ``difficulty``. Options: ``on_bad_row`` ("error" | "skip"); ``self_correction_rate`` is accepted
        and ignored (real solutions are used as they are).
        """
        _, on_bad_row = self.generation_options(opts)
        rows = [r for r in self._load(on_bad_row)
                if self.config.difficulty_field is None or r.difficulty == difficulty]
        order = list(range(len(rows)))
        random.Random(f"{self.name}:{difficulty}:{seed}").shuffle(order)
        examples = []
        for index in order[:n]:
            row = rows[index]
            reasoning, final = split_solution(row.answer, self.config.answer_extract)
            if row.solution is not None:
                reasoning = row.solution
            trace = f"{THINK_OPEN}{reasoning}{THINK_CLOSE}{ANSWER_OPEN}{final}{ANSWER_CLOSE}"
            examples.append(Example(
                id=example_id(self.name, difficulty, self.question_key(row.question)),
                task=self.name, difficulty=difficulty, prompt=row.question + PROMPT_END, trace=trace,
                answer=final, trace_clean=trace, meta=json.dumps({"source": row.where}),
            ))
        return examples

    def parse_answer(self, completion: str) -> str | None:
        """The final answer text (whitespace collapsed); for ``math`` None if math-verify finds nothing."""
        text = self.answer_text(completion)
        if text is None:
            return None
        text = normalize_whitespace(text)
        if self.config.answer_kind == "math" and not _math_parse(text):
            return None
        return text

    def answers_match(self, predicted: str, answer: str) -> bool:
        if normalize_whitespace(predicted).casefold() == normalize_whitespace(answer).casefold():
            return True
        return self.config.answer_kind == "math" and math_equal(predicted, answer)
