"""The task interface: reference examples, verdicts, and the abstract :class:`Task` of every family.

A task family (Knights-and-Knaves, arithmetic, a loaded data set) turns ``(n, difficulty, seed)`` into
reference :class:`Example` rows and judges model completions with an exact verifier. Model text format (shared
contract): the model sees ``prompt`` (ending with :data:`PROMPT_END`) and is trained to produce ``trace``,
i.e. ``<think> ... </think><answer> ... </answer>``; the tokenizer adds ``<bos>`` before the prompt and the
engine appends ``<eos>`` after the completion.
"""

from __future__ import annotations

import abc
import dataclasses
import hashlib
import re
from enum import Enum
from typing import Any, ClassVar

from rl_distill.tasks.format import final_answer

#: Every prompt ends with this separator, so the completion starts right after it.
PROMPT_END = "\n"
#: Options every ``Task.generate`` accepts.
ON_BAD_ROW = ("error", "skip")
#: Text renderings of the procedural tasks (config key ``render``): the compact notation for the char-level
#: tokenizer of the embedded default, or English for pretrained LLMs with BPE tokenizers.
RENDERS = ("symbolic", "natural")


@dataclasses.dataclass(frozen=True)
class Example:
    """One reference example.

    ``trace`` is the full reference completion (with self-corrections at the configured rate); ``trace_clean``
    is the same reasoning without corrections (equal to ``trace`` when the rate is 0); ``answer`` is the
    canonical answer; ``meta`` is a JSON string of per-example facts (operators used, operand values, source
    line, ...).
    """

    id: str
    task: str
    difficulty: int
    prompt: str
    trace: str
    answer: str
    trace_clean: str | None = None
    meta: str = "{}"


class Verdict(str, Enum):
    """Outcome of verifying one completion against the canonical answer."""

    CORRECT = "correct"
    WRONG = "wrong"
    UNPARSEABLE = "unparseable"


_WS = re.compile(r"\s+")


def normalize_whitespace(text: str) -> str:
    """Collapse runs of whitespace to one space and strip the ends.

    >>> normalize_whitespace("  A:b;\\n B:a ")
    'A:b; B:a'
    """
    return _WS.sub(" ", text).strip()


def example_id(task: str, difficulty: int, question_key: str) -> str:
    """A content id: the same normalised question always gets the same id.

    >>> example_id("arithmetic", 2, "12+34")
    'arithmetic/2/7cf35fdf49'
    """
    digest = hashlib.sha1(f"{task}\x00{question_key}".encode()).hexdigest()[:10]
    return f"{task}/{difficulty}/{digest}"


class Task(abc.ABC):
    """A task family: a seeded generator (or loader), answer parser and exact verifier.

    Subclasses set ``name``, ``alphabet`` (every character their prompts and traces can contain; a class
    attribute, or an instance attribute where it depends on the config, e.g. ``render``) and ``Config`` (a frozen
    dataclass of their parameters, validated by :func:`rl_distill.tasks.registry.get_task`).
    """

    name: ClassVar[str] = ""
    alphabet: str = ""
    #: Whether dedupe compares questions case-sensitively (K&K's letter case carries meaning).
    case_sensitive: ClassVar[bool] = True
    has_checkable_trace: ClassVar[bool] = False  # see :meth:`trace_answer`
    #: Whether ``generate`` draws fresh examples for each seed (False for loaded files: one call reads them all).
    procedural: ClassVar[bool] = True

    @abc.abstractmethod
    def generate(self, n: int, difficulty: int, seed: int, **opts: Any) -> list[Example]:
        """``n`` reference examples at ``difficulty``, reproducible from ``seed``.

        Options common to all tasks (see :meth:`generation_options`): ``self_correction_rate`` (float in [0,
        1], default 0) and ``on_bad_row`` ("error" | "skip", for loaded files).
        """

    @abc.abstractmethod
    def parse_answer(self, completion: str) -> str | None:
        """The canonical answer written in ``completion``'s final ``<answer>``, or None. Never raises."""

    @abc.abstractmethod
    def answers_match(self, predicted: str, answer: str) -> bool:
        """Whether a parsed ``predicted`` answer equals the canonical ``answer``. Never raises."""

    def trace_answer(self, completion: str) -> str | None:
        """The answer that ``completion``'s own reasoning trace reaches (in the cycle of its final answer), or
        None when the trace reaches none. Tasks without a checkable trace format return None for every reply and
        set ``has_checkable_trace = False``; trace consistency is then not reported. Never raises."""
        return None

    def trace_consistent(self, completion: str) -> bool | None:
        """Whether the final answer is the one the reply's own trace reached (an empty trace or a guess that
        contradicts the trace is inconsistent); None when the task has no checkable trace. Never raises."""
        if not self.has_checkable_trace:
            return None
        try:
            predicted, reached = self.parse_answer(completion), self.trace_answer(completion)
            return predicted is not None and reached is not None and self.answers_match(predicted, reached)
        except Exception:
            return False

    def verify(self, completion: str, answer: str) -> Verdict:
        """CORRECT / WRONG / UNPARSEABLE for ``completion`` against the canonical ``answer``. Never raises."""
        try:
            predicted = self.parse_answer(completion)
            if predicted is None:
                return Verdict.UNPARSEABLE
            return Verdict.CORRECT if self.answers_match(predicted, answer) else Verdict.WRONG
        except Exception:  # a verifier must survive any model output
            return Verdict.UNPARSEABLE

    def generation_options(self, opts: dict[str, Any]) -> tuple[float, str]:
        """Validate the common ``generate`` options: (``self_correction_rate``, ``on_bad_row``).

        ``on_bad_row`` ("error" | "skip") only matters for loaded files. Unknown options raise TypeError.
        """
        rate = float(opts.pop("self_correction_rate", 0.0))
        on_bad_row = str(opts.pop("on_bad_row", "error"))
        if opts:
            raise TypeError(f"{self.name}.generate: unknown option(s) {sorted(opts)}; valid: "
                            "self_correction_rate, on_bad_row")
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"self_correction_rate must be in [0, 1], got {rate}")
        if on_bad_row not in ON_BAD_ROW:
            raise ValueError(f"on_bad_row={on_bad_row!r}; valid: {', '.join(ON_BAD_ROW)}")
        return rate, on_bad_row

    def question_key(self, prompt: str) -> str:
        """The normalised question used for dedupe (whitespace collapsed, maybe casefolded)."""
        key = normalize_whitespace(prompt)
        return key if self.case_sensitive else key.casefold()

    @staticmethod
    def answer_text(completion: str) -> str | None:
        """The raw text inside the last complete ``<answer>`` block (:func:`.format.final_answer`)."""
        return final_answer(completion)
