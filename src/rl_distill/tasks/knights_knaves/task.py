"""The ``knights_knaves`` task: n people (difficulty = n, 2..8) each make one statement; who is a knight?

Prompt (compact notation of :mod:`.logic`): ``A:b;B:A&c;C:b^c`` followed by a newline. Answer: every person's
role in the order A, B, C, ..., upper case for a knight and lower case for a knave, e.g. ``AbC`` (A and C are
knights, B is a knave). The verifier is exact; whitespace and commas inside the answer are ignored (``A, b,
C`` reads as ``AbC``). Trace: :mod:`.trace`. Generator: :mod:`.generator` (the RLAD paper's K&K logic
benchmark, in compact form).
"""

from __future__ import annotations

import json
import random
import re
from typing import Any, ClassVar

from rl_distill.tasks.base import PROMPT_END, Example, Task, example_id
from rl_distill.tasks.corrections import CORRECTION_MARKER
from rl_distill.tasks.format import parse_cycles
from rl_distill.tasks.knights_knaves.generator import KnightsKnavesConfig, StatementSampler, sample_puzzle
from rl_distill.tasks.knights_knaves.logic import MAX_PEOPLE, PEOPLE, candidate_names
from rl_distill.tasks.knights_knaves.trace import CONTRADICTION, case_analysis, prompt_text, write_trace

_ANSWER = re.compile(rf"[{PEOPLE}{PEOPLE.lower()}]+")
_IGNORED = re.compile(r"[\s,]+")


def _chars(*parts: str) -> str:
    return "".join(sorted(set("".join(parts))))


class KnightsKnavesTask(Task):
    """Knights-and-Knaves puzzles with a unique solution and a case-analysis trace."""

    name: ClassVar[str] = "knights_knaves"
    alphabet: ClassVar[str] = _chars(PEOPLE, PEOPLE.lower(), ":;&|>~^!()=01", " \n", "x", CORRECTION_MARKER,
                                     PROMPT_END)
    Config = KnightsKnavesConfig
    has_checkable_trace: ClassVar[bool] = True

    def __init__(self, config: KnightsKnavesConfig | None = None) -> None:
        self.config = config or KnightsKnavesConfig()

    def generate(self, n: int, difficulty: int, seed: int, **opts: Any) -> list[Example]:
        """``n`` puzzles with ``difficulty`` people (2..8); see the module docstring for the text format.

        ``self_correction_rate``: probability that each check of ``trace`` is first written wrong, then
        corrected (``trace_clean`` never has corrections). The puzzles do not depend on the rate.
        """
        if not 2 <= difficulty <= MAX_PEOPLE:
            raise ValueError(f"knights_knaves difficulty (number of people) must be in 2..{MAX_PEOPLE}, "
                             f"got {difficulty}")
        rate, _ = self.generation_options(opts)
        rng = random.Random(f"{self.name}:{difficulty}:{seed}")
        corrections = random.Random(f"{self.name}:{difficulty}:{seed}:corrections")
        sampler = StatementSampler(self.config, rng)
        examples = []
        for _ in range(n):
            statements, solution = sample_puzzle(difficulty, sampler)
            question = prompt_text(statements)
            lines = case_analysis(statements, difficulty, solution)
            clean = write_trace(statements, difficulty, solution, lines=lines)
            trace = (write_trace(statements, difficulty, solution, corrections, rate, lines) if rate > 0
                     else clean)
            examples.append(Example(
                id=example_id(self.name, difficulty, self.question_key(question)),
                task=self.name,
                difficulty=difficulty,
                prompt=question + PROMPT_END,
                trace=trace,
                answer=candidate_names(difficulty)[solution],
                trace_clean=clean,
                meta=json.dumps({"candidates_tried": solution + 1}),
            ))
        return examples

    def parse_answer(self, completion: str) -> str | None:
        """Roles from the final answer, e.g. ``'A, b'`` -> ``'Ab'``; None unless they are distinct people.

        >>> task = KnightsKnavesTask()
        >>> task.parse_answer("<think>...</think><answer> A b C </answer>")
        'AbC'
        >>> task.parse_answer("<answer>AaB</answer>") is None  # A named twice
        True
        >>> task.parse_answer("<answer>A is a knight</answer>") is None
        True
        """
        text = self.answer_text(completion)
        if text is None:
            return None
        roles = _IGNORED.sub("", text)
        if not _ANSWER.fullmatch(roles) or len({c.upper() for c in roles}) != len(roles):
            return None
        return roles

    def trace_answer(self, completion: str) -> str | None:
        """The candidate the trace accepted: the first line of the final answer's ``<think>`` not ending in the
        contradiction mark ``x`` (the reference trace stops at the first consistent candidate).

        >>> task = KnightsKnavesTask()
        >>> task.trace_answer("<think>AB A:b0 x\\nAb A:b1 b:a0</think><answer>Ab</answer>")
        'Ab'
        >>> task.trace_answer("<think>AB A:b0 x</think><answer>Ab</answer>") is None  # every candidate refuted
        True
        >>> task.trace_answer("<think></think><answer>Ab</answer>") is None  # no trace: a guess
        True
        """
        cycles = [c for c in parse_cycles(completion) if c.answer is not None]
        if not cycles:
            return None
        for line in cycles[-1].think.splitlines():
            tokens = line.split()
            if tokens and tokens[-1] != CONTRADICTION:
                roles = _IGNORED.sub("", tokens[0])
                return roles if _ANSWER.fullmatch(roles) else None
        return None

    def answers_match(self, predicted: str, answer: str) -> bool:
        """Exact match of the role strings (order matters: A, B, C, ...)."""
        return predicted == _IGNORED.sub("", answer)
