"""The reference reasoning trace of a Knights-and-Knaves puzzle: ordered case analysis, early contradiction.

The trace tries candidate assignments in the fixed order of :func:`.logic.candidate_names` (``ABC``, ``ABc``,
``AbC``, ...), one line each: the candidate, then one check per speaker in order A, B, C, ... Each check is a
"local lookup" (miniature.md: copying each statement next to its truth value made the step the model must take
local):

    b:A1&c0=0

the speaker in the candidate's case (here B is a knave under the candidate), a colon, the statement copied
from the prompt with each literal followed by its truth value under the candidate, then ``=`` evaluation steps
down to one value (a plain literal statement is just ``A:b0``). The last character of a check is the
statement's value; a knight (upper case) needs 1 and a knave 0. The first speaker who breaks this is marked ``
x`` and the line ends there. The first candidate without a contradiction is the answer (unique by
construction), so the trace stops at it:

    <think>AB A:b0 x
    Ab A:b1 b:a0</think><answer>Ab</answer>

Each literal value needs one lookup (the person's case in the candidate at the start of the line) and each
operator step only the values just written. With a self-correction rate a check is sometimes first written
with its final value flipped, then ``wait,`` and the right check (see :mod:`rl_distill.tasks.corrections`).
"""

from __future__ import annotations

import random

from rl_distill.tasks.corrections import corrected_step
from rl_distill.tasks.format import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN
from rl_distill.tasks.knights_knaves.logic import (
    PEOPLE,
    Node,
    candidate_names,
    knight_masks,
    people_in,
    reduction_steps,
    render,
)

CONTRADICTION = "x"


class _CheckWriter:
    """Renders (and memoises) one speaker's check under the values of the people its statement mentions."""

    def __init__(self, statements: list[Node], n: int) -> None:
        self.n = n
        self.statements = statements
        # bits of the assignment index that the speaker's statement depends on
        self.relevant = [sum(1 << (n - 1 - p) for p in people_in(s)) for s in statements]
        self._cache: dict[tuple[int, int], tuple[str, str, int]] = {}

    def check(self, speaker: int, candidate: int) -> tuple[str, str, int]:
        """(right check, wrong check, value) for ``speaker`` under ``candidate``, without the speaker."""
        key = (speaker, candidate & self.relevant[speaker])
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        n = self.n
        knights = tuple(not (candidate >> (n - 1 - i)) & 1 for i in range(n))
        right = ":" + "=".join(reduction_steps(self.statements[speaker], knights))
        value = int(right[-1])
        wrong = right[:-1] + str(1 - value)
        self._cache[key] = (right, wrong, value)
        return right, wrong, value


def case_analysis(statements: list[Node], n: int, solution: int) -> list[list[tuple[str, str, bool]]]:
    """Per tried candidate, its checks ``(right, wrong, contradiction)``, each led by the speaker letter.

    The list covers candidates 0..solution; every candidate before the solution ends in a contradiction.
    """
    writer = _CheckWriter(statements, n)
    names = candidate_names(n)
    knights = knight_masks(n)
    lines = []
    for candidate in range(solution + 1):
        name = names[candidate]
        checks = []
        for speaker in range(n):
            right, wrong, value = writer.check(speaker, candidate)
            contradiction = value != (knights[speaker] >> candidate) & 1
            checks.append((name[speaker] + right, name[speaker] + wrong, contradiction))
            if contradiction:
                break
        else:
            if candidate != solution:  # pragma: no cover - guarded by uniqueness
                raise ValueError(f"candidate {name} is consistent but the solution is {names[solution]}")
        lines.append(checks)
    return lines


def write_trace(statements: list[Node], n: int, solution: int, rng: random.Random | None = None,
                rate: float = 0.0, lines: list[list[tuple[str, str, bool]]] | None = None) -> str:
    """Full reference completion for a puzzle whose unique solution is assignment ``solution``.

    ``rng``/``rate``: self-corrections, each check independently with probability ``rate``. ``lines``: a
    precomputed :func:`case_analysis` (to write the clean and the corrected trace from one analysis).
    """
    if lines is None:
        lines = case_analysis(statements, n, solution)
    names = candidate_names(n)
    out = []
    for candidate, checks in enumerate(lines):
        parts = [names[candidate]]
        for right, wrong, contradiction in checks:
            parts.append(right if rng is None else corrected_step(right, wrong, rng, rate))
            if contradiction:
                parts.append(CONTRADICTION)
        out.append(" ".join(parts))
    return f"{THINK_OPEN}{chr(10).join(out)}{THINK_CLOSE}{ANSWER_OPEN}{names[solution]}{ANSWER_CLOSE}"


def prompt_text(statements: list[Node]) -> str:
    """``A:b;B:A&c`` (without the prompt separator)."""
    return ";".join(f"{PEOPLE[i]}:{render(s)}" for i, s in enumerate(statements))
