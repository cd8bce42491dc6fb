"""Natural-language rendering of Knights-and-Knaves puzzles (``render: natural``), for pretrained LLMs.

The wording follows the K&K prompts of Logic-RL (Xie et al. 2025, "Logic-RL: Unleashing LLM Reasoning with
Rule-Based Reinforcement Learning", whose K&K data the RLAD paper uses; the puzzles come from the K&K benchmark of
Xie et al. 2024). The puzzle is the one the symbolic rendering shows for the same seed; only the text differs.
People get distinct names drawn per puzzle from :data:`.roles.NAMES`. Prompt (then :data:`~.base.PROMPT_END`):

    A very special island is inhabited only by knights and knaves. Knights always tell the truth, and knaves
    always lie. You meet 2 inhabitants: Zoey and Oliver. Zoey says, "Oliver is a knave." Oliver says, "Zoey is a
    knight if and only if Oliver is a knight." So who is a knight and who is a knave?

Statements (:func:`statement_text`): ``X is a knight`` / ``X is a knave``; ``P and Q``; ``P or Q`` (inclusive);
``if P then Q``; ``P if and only if Q``; ``exactly one of the following is true: P, Q, R``; ``it is not the case
that (P)`` (``X is not a knight`` for a negated literal). An operand that is itself a compound is parenthesised,
so every statement reads one way only: ``Zoey is a knight and (Oliver is a knave or Ava is a knight)``.

Trace (:func:`natural_trace`): the case analysis of :mod:`.trace` in words, candidates in the same order, one line
each, the first contradiction ending a candidate and the first consistent candidate ending the trace. Each check
gives the speaker's statement (a literal one repeated; a compound one as its evaluation, the literals replaced
by ``true``/``false`` and reduced innermost first), its value, and whether that fits the speaker's role in the
candidate:

    <think>Suppose Zoey is a knight and Oliver is a knight. Zoey says Oliver is a knave, which is false, but a
    knight tells the truth: contradiction.
    Suppose Zoey is a knight and Oliver is a knave. Zoey says Oliver is a knave, which is true, fine for a
    knight. Oliver's statement: true if and only if false, which is false, fine for a knave. No
    contradiction.</think><answer>Zoey is a knight, and Oliver is a knave.</answer>

(one line per candidate; wrapped here). A nested check reduces step by step: ``Ava's statement: true and (false
or true), that is true and true, which is true, fine for a knight.`` The compound statements are not repeated in
the trace (they are in the prompt): at n = 2 (``max_depth: 1``) a trace averages about 145 SmolLM2 tokens, 90%
under 210. With a self-correction rate a check's value is sometimes first written flipped, then ``wait,`` and the
right value with its verdict (:mod:`rl_distill.tasks.corrections`): ``Zoey says Oliver is a knave, which is true,
wait, which is false, but a knight tells the truth: contradiction.``

Answer: the K&K ``solution_text`` form, ``Zoey is a knight, and Oliver is a knave.``; replies are read back by
:mod:`.roles` (which also accepts Logic-RL's ``(1) Zoey is a knight (2) Oliver is a knave``).
"""

from __future__ import annotations

import random
import string

from rl_distill.tasks.base import PROMPT_END
from rl_distill.tasks.corrections import CORRECTION_MARKER, corrected_step
from rl_distill.tasks.format import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN
from rl_distill.tasks.knights_knaves.logic import Node, evaluate, people_in, reduce_once, substitute
from rl_distill.tasks.knights_knaves.roles import KNAVE, KNIGHT, NAMES

INTRO = ("A very special island is inhabited only by knights and knaves. Knights always tell the truth, and knaves "
         "always lie.")
QUESTION = "So who is a knight and who is a knave?"
NO_CONTRADICTION = "No contradiction."
#: Every character a natural prompt or trace can contain (names are ASCII letters).
ALPHABET = "".join(sorted(set(string.ascii_letters + string.digits + " .,:;?'\"()\n" + CORRECTION_MARKER
                              + PROMPT_END)))
_VERDICTS = {  # (speaker is a knight, statement value) -> the end of the check
    (True, True): "fine for a knight.",
    (False, False): "fine for a knave.",
    (True, False): "but a knight tells the truth: contradiction.",
    (False, True): "but a knave lies: contradiction.",
}


def draw_names(n: int, rng: random.Random) -> tuple[str, ...]:
    """``n`` distinct names from :data:`.roles.NAMES`, in speaker order."""
    return tuple(rng.sample(NAMES, n))


def _role(knight: bool) -> str:
    return KNIGHT if knight else KNAVE


def _simple(node: Node) -> bool:
    """A literal or a negated literal: needs no parentheses as an operand."""
    return isinstance(node, int) or node[0] == "lit" or (node[0] == "not" and node[1][0] == "lit")


def statement_text(node: Node, names: tuple[str, ...]) -> str:
    """The statement in English, lower-case first (see the module docstring).

    >>> names = ("Zoey", "Oliver", "Ava")
    >>> A, b, C = ("lit", 0, True), ("lit", 1, False), ("lit", 2, True)
    >>> statement_text(("imp", ("and", A, b), C), names)
    'if (Zoey is a knight and Oliver is a knave) then Ava is a knight'
    >>> statement_text(("not", ("one", (A, b))), names)
    'it is not the case that (exactly one of the following is true: Zoey is a knight, Oliver is a knave)'
    >>> statement_text(("or", ("not", A), b), names)
    'Zoey is not a knight or Oliver is a knave'
    """
    kind = node[0]
    if kind == "lit":
        return f"{names[node[1]]} is a {_role(node[2])}"

    def operand(child: Node) -> str:
        text = statement_text(child, names)
        return text if _simple(child) else f"({text})"

    if kind == "not":
        child = node[1]
        if child[0] == "lit":
            return f"{names[child[1]]} is not a {_role(child[2])}"
        return f"it is not the case that ({statement_text(child, names)})"
    if kind == "one":
        return "exactly one of the following is true: " + ", ".join(operand(c) for c in node[1])
    return _binary_text(kind, operand(node[1]), operand(node[2]))


def value_text(tree: Node) -> str:
    """A value tree (literals replaced by 0/1, :func:`.logic.substitute`) in words.

    >>> value_text(("and", 1, ("or", 0, 1)))
    'true and (false or true)'
    >>> value_text(("not", ("one", (1, 0))))
    'not (exactly one of true, false)'
    """
    if isinstance(tree, int):
        return "true" if tree else "false"

    def operand(child: Node) -> str:
        text = value_text(child)
        return text if isinstance(child, int) else f"({text})"

    kind = tree[0]
    if kind == "not":
        return f"not {operand(tree[1])}"
    if kind == "one":
        return "exactly one of " + ", ".join(operand(c) for c in tree[1])
    return _binary_text(kind, operand(tree[1]), operand(tree[2]))


def _binary_text(kind: str, left: str, right: str) -> str:
    """A binary connective in words, for statements and value trees alike."""
    if kind == "imp":
        return f"if {left} then {right}"
    return {"and": f"{left} and {right}", "or": f"{left} or {right}", "iff": f"{left} if and only if {right}"}[kind]


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _listing(items: list[str], oxford_two: bool = False) -> str:
    """``a and b`` (``a, and b`` with ``oxford_two``), ``a, b, and c``."""
    if len(items) == 1:
        return items[0]
    if len(items) == 2 and not oxford_two:
        return f"{items[0]} and {items[1]}"
    return ", ".join(items[:-1]) + ", and " + items[-1]


def assignment_text(names: tuple[str, ...], knights: tuple[bool, ...], oxford_two: bool = False) -> str:
    """``Zoey is a knight and Oliver is a knave`` (``, and`` before the last person with ``oxford_two`` or n >= 3).

    >>> assignment_text(("Zoey", "Oliver", "Ava"), (True, False, True))
    'Zoey is a knight, Oliver is a knave, and Ava is a knight'
    """
    return _listing([f"{name} is a {_role(k)}" for name, k in zip(names, knights)], oxford_two)


def answer_text(names: tuple[str, ...], knights: tuple[bool, ...]) -> str:
    """The canonical natural answer, e.g. ``Zoey is a knight, and Oliver is a knave.``"""
    return assignment_text(names, knights, oxford_two=True) + "."


def prompt_text(statements: list[Node], names: tuple[str, ...]) -> str:
    """The puzzle in words (without :data:`~.base.PROMPT_END`; see the module docstring)."""
    said = " ".join(f'{names[i]} says, "{_sentence(statement_text(s, names))}."' for i, s in enumerate(statements))
    return f"{INTRO} You meet {len(statements)} inhabitants: {_listing(list(names))}. {said} {QUESTION}"


def knights_of(candidate: int, n: int) -> tuple[bool, ...]:
    """Person i is a knave in assignment ``candidate`` iff bit ``n-1-i`` is set (:mod:`.logic`)."""
    return tuple(not (candidate >> (n - 1 - i)) & 1 for i in range(n))


class _NaturalChecks:
    """Writes (and memoises) one speaker's check under the values of the people their statement mentions."""

    def __init__(self, statements: list[Node], names: tuple[str, ...]) -> None:
        self.statements, self.names, self.n = statements, names, len(statements)
        self.relevant = [sum(1 << (self.n - 1 - p) for p in people_in(s)) for s in statements]
        self._cache: dict[tuple[int, int], tuple[str, bool]] = {}

    def head(self, speaker: int, candidate: int) -> tuple[str, bool]:
        """(``Zoey says Oliver is a knave`` or ``Zoey's statement: <evaluation>``, the statement's value) under
        ``candidate``: the check up to ``, which is``."""
        key = (speaker, candidate & self.relevant[speaker])
        if key not in self._cache:
            node, knights = self.statements[speaker], knights_of(candidate, self.n)
            if node[0] == "lit":
                text = f"{self.names[speaker]} says {statement_text(node, self.names)}"
            else:
                tree, steps = substitute(node, knights), []
                while not isinstance(tree, int):
                    steps.append(value_text(tree))
                    tree = reduce_once(tree)
                text = f"{self.names[speaker]}'s statement: " + ", that is ".join(steps)
            self._cache[key] = (text, evaluate(node, knights))
        return self._cache[key]


def case_lines(statements: list[Node], names: tuple[str, ...], solution: int, rng: random.Random | None = None,
               rate: float = 0.0) -> list[str]:
    """One line per tried candidate (0..``solution``), as in :func:`.trace.case_analysis`.

    ``rng``/``rate``: self-corrections, each check independently with probability ``rate``.
    """
    n = len(statements)
    checks = _NaturalChecks(statements, names)
    lines = []
    for candidate in range(solution + 1):
        knights = knights_of(candidate, n)
        parts = [f"Suppose {assignment_text(names, knights)}."]
        for speaker in range(n):
            head, value = checks.head(speaker, candidate)
            right = f"which is {'true' if value else 'false'}, {_VERDICTS[(knights[speaker], value)]}"
            wrong = f"which is {'false' if value else 'true'},"
            parts.append(f"{head}, {right if rng is None else corrected_step(right, wrong, rng, rate)}")
            if value != knights[speaker]:
                break
        else:
            if candidate != solution:  # pragma: no cover - guarded by uniqueness
                raise ValueError(f"candidate {candidate} is consistent but the solution is {solution}")
            parts.append(NO_CONTRADICTION)
        lines.append(" ".join(parts))
    return lines


def natural_trace(statements: list[Node], names: tuple[str, ...], solution: int, rng: random.Random | None = None,
                  rate: float = 0.0) -> str:
    """The full reference completion: ``<think>`` case lines ``</think><answer>`` the answer ``</answer>``."""
    lines = case_lines(statements, names, solution, rng, rate)
    answer = answer_text(names, knights_of(solution, len(statements)))
    return f"{THINK_OPEN}{chr(10).join(lines)}{THINK_CLOSE}{ANSWER_OPEN}{answer}{ANSWER_CLOSE}"
