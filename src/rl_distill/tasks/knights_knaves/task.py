"""The ``knights_knaves`` task: n people (difficulty = n, 2..8) each make one statement; who is a knight?

Two renderings of the same puzzles (config ``render``), each with its own prompt, trace, answer and verifier:

- ``symbolic`` (default; the char-level tokenizer of the embedded default). Prompt (compact notation of
  :mod:`.logic`): ``A:b;B:A&c;C:b^c`` followed by a newline. Answer: every person's role in the order A, B, C,
  ..., upper case for a knight and lower case for a knave, e.g. ``AbC`` (A and C are knights, B is a knave). The
  verifier is exact; whitespace and commas inside the answer are ignored (``A, b, C`` reads as ``AbC``). Trace:
  :mod:`.trace`.
- ``natural`` (pretrained LLMs with BPE tokenizers): the Logic-RL wording with names, :mod:`.natural`. Answer:
  ``Zoey is a knight, and Oliver is a knave.``; the verifier reads what a model writes (``Zoey: knight; Oliver:
  knave``, ``(1) Oliver is a Knave (2) Zoey is a Knight``, ...; :mod:`.roles`) into the canonical
  ``Oliver=knave;Zoey=knight`` and compares every person's role.

Generator: :mod:`.generator` (the RLAD paper's K&K logic benchmark).
"""

from __future__ import annotations

import json
import random
import re
from typing import Any, ClassVar

from rl_distill.tasks.base import PROMPT_END, Example, Task, example_id
from rl_distill.tasks.corrections import CORRECTION_MARKER
from rl_distill.tasks.format import parse_cycles
from rl_distill.tasks.knights_knaves import natural
from rl_distill.tasks.knights_knaves.generator import KnightsKnavesConfig, StatementSampler, sample_puzzle
from rl_distill.tasks.knights_knaves.logic import MAX_PEOPLE, PEOPLE, Node, candidate_names
from rl_distill.tasks.knights_knaves.roles import anonymize, canonical_roles, read_roles, supposition_answer
from rl_distill.tasks.knights_knaves.trace import CONTRADICTION, case_analysis, prompt_text, write_trace

_ANSWER = re.compile(rf"[{PEOPLE}{PEOPLE.lower()}]+")
_IGNORED = re.compile(r"[\s,]+")


def _chars(*parts: str) -> str:
    return "".join(sorted(set("".join(parts))))


#: (prompt, trace, trace_clean, answer, extra meta) of one puzzle.
Rendered = tuple[str, str, str, str, dict[str, Any]]


class _Symbolic:
    """The compact notation (module docstring)."""

    alphabet = _chars(PEOPLE, PEOPLE.lower(), ":;&|>~^!()=01", " \n", "x", CORRECTION_MARKER, PROMPT_END)

    def render(self, statements: list[Node], n: int, solution: int, names_rng: random.Random,
               corrections: random.Random, rate: float) -> Rendered:
        lines = case_analysis(statements, n, solution)
        clean = write_trace(statements, n, solution, lines=lines)
        trace = write_trace(statements, n, solution, corrections, rate, lines) if rate > 0 else clean
        return prompt_text(statements), trace, clean, candidate_names(n)[solution], {}

    def question_key(self, key: str) -> str:
        return key

    def parse(self, text: str) -> str | None:
        roles = _IGNORED.sub("", text)
        if not _ANSWER.fullmatch(roles) or len({c.upper() for c in roles}) != len(roles):
            return None
        return roles

    def trace_answer(self, think: str) -> str | None:
        for line in think.splitlines():
            tokens = line.split()
            if tokens and tokens[-1] != CONTRADICTION:
                roles = _IGNORED.sub("", tokens[0])
                return roles if _ANSWER.fullmatch(roles) else None
        return None

    def match(self, predicted: str, answer: str) -> bool:
        return predicted == _IGNORED.sub("", answer)


class _Natural:
    """English with names (:mod:`.natural`), answers read by :mod:`.roles`."""

    alphabet = natural.ALPHABET

    def render(self, statements: list[Node], n: int, solution: int, names_rng: random.Random,
               corrections: random.Random, rate: float) -> Rendered:
        names = natural.draw_names(n, names_rng)
        clean = natural.natural_trace(statements, names, solution)
        trace = natural.natural_trace(statements, names, solution, corrections, rate) if rate > 0 else clean
        answer = natural.answer_text(names, natural.knights_of(solution, n))
        return natural.prompt_text(statements, names), trace, clean, answer, {
            "names": list(names), "symbolic": prompt_text(statements)}

    def question_key(self, key: str) -> str:
        return anonymize(key)  # the same puzzle with other names is the same question

    def parse(self, text: str) -> str | None:
        return canonical_roles(text)

    def trace_answer(self, think: str) -> str | None:
        return supposition_answer(think)

    def match(self, predicted: str, answer: str) -> bool:
        mine, theirs = read_roles(predicted), read_roles(answer)
        return mine is not None and mine == theirs


RENDERINGS: dict[str, _Symbolic | _Natural] = {"symbolic": _Symbolic(), "natural": _Natural()}


class KnightsKnavesTask(Task):
    """Knights-and-Knaves puzzles with a unique solution and a case-analysis trace."""

    name: ClassVar[str] = "knights_knaves"
    alphabet: str = _Symbolic.alphabet  # the default rendering's; an instance sets its own rendering's
    Config = KnightsKnavesConfig
    has_checkable_trace: ClassVar[bool] = True  # both renderings: :meth:`trace_answer`

    def __init__(self, config: KnightsKnavesConfig | None = None) -> None:
        self.config = config or KnightsKnavesConfig()
        self.rendering = RENDERINGS[self.config.render]
        self.alphabet = self.rendering.alphabet

    def generate(self, n: int, difficulty: int, seed: int, **opts: Any) -> list[Example]:
        """``n`` puzzles with ``difficulty`` people (2..8); see the module docstring for the text format.

        ``self_correction_rate``: probability that each check of ``trace`` is first written wrong, then
        corrected (``trace_clean`` never has corrections). The puzzles depend on neither the rate nor the
        rendering (natural names come from their own seeded stream).
        """
        if not 2 <= difficulty <= MAX_PEOPLE:
            raise ValueError(f"knights_knaves difficulty (number of people) must be in 2..{MAX_PEOPLE}, "
                             f"got {difficulty}")
        rate, _ = self.generation_options(opts)
        rng = random.Random(f"{self.name}:{difficulty}:{seed}")
        corrections = random.Random(f"{self.name}:{difficulty}:{seed}:corrections")
        names = random.Random(f"{self.name}:{difficulty}:{seed}:names")
        sampler = StatementSampler(self.config, rng)
        examples = []
        for _ in range(n):
            statements, solution = sample_puzzle(difficulty, sampler)
            question, trace, clean, answer, meta = self.rendering.render(
                statements, difficulty, solution, names, corrections, rate)
            examples.append(Example(
                id=example_id(self.name, difficulty, self.question_key(question)),
                task=self.name,
                difficulty=difficulty,
                prompt=question + PROMPT_END,
                trace=trace,
                answer=answer,
                trace_clean=clean,
                meta=json.dumps({"candidates_tried": solution + 1, **meta}),
            ))
        return examples

    def question_key(self, prompt: str) -> str:
        """The normalised question for dedupe; natural prompts with the names replaced by ``#0``, ``#1``, ... in
        order of appearance, so one puzzle told with two casts is one question (it cannot land in two splits)."""
        return self.rendering.question_key(super().question_key(prompt))

    def parse_answer(self, completion: str) -> str | None:
        """The roles in the final answer, canonical; None unless they name distinct people with one role each.

        Symbolic: ``'A, b'`` -> ``'Ab'``. Natural: ``'Zoey: knight; Oliver: knave'`` -> ``'Oliver=knave;Zoey=knight'``.

        >>> task = KnightsKnavesTask()
        >>> task.parse_answer("<think>...</think><answer> A b C </answer>")
        'AbC'
        >>> task.parse_answer("<answer>AaB</answer>") is None  # A named twice
        True
        >>> task.parse_answer("<answer>A is a knight</answer>") is None
        True
        >>> KnightsKnavesTask(KnightsKnavesConfig(render="natural")).parse_answer(
        ...     "<answer>Zoey is a Knight and Oliver is a Knave.</answer>")
        'Oliver=knave;Zoey=knight'
        """
        text = self.answer_text(completion)
        return None if text is None else self.rendering.parse(text)

    def trace_answer(self, completion: str) -> str | None:
        """The candidate the trace of the final answer's cycle accepted (the reference trace stops at the first
        consistent candidate). Symbolic: the first line of its ``<think>`` not ending in the contradiction mark
        ``x``. Natural: the last ``Suppose ...`` line reporting no contradiction (:func:`.roles.supposition_answer`).

        >>> task = KnightsKnavesTask()
        >>> task.trace_answer("<think>AB A:b0 x\\nAb A:b1 b:a0</think><answer>Ab</answer>")
        'Ab'
        >>> task.trace_answer("<think>AB A:b0 x</think><answer>Ab</answer>") is None  # every candidate refuted
        True
        >>> task.trace_answer("<think></think><answer>Ab</answer>") is None  # no trace: a guess
        True
        """
        cycles = [c for c in parse_cycles(completion) if c.answer is not None]
        return self.rendering.trace_answer(cycles[-1].think) if cycles else None

    def answers_match(self, predicted: str, answer: str) -> bool:
        """Symbolic: exact match of the role strings (order matters: A, B, C, ...). Natural: the same role for
        every person, and the same people (in any order)."""
        return self.rendering.match(predicted, answer)
