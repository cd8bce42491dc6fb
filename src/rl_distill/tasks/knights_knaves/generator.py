"""Seeded sampling of Knights-and-Knaves puzzles with exactly one solution (checked over all 2^n assignments).

Statements are drawn from the grammar of :mod:`.logic` with per-form weights. A puzzle starts from n random
statements; while the number of consistent assignments (a popcount of :func:`.logic.consistent_mask`) is not
one, a random speaker's statement is redrawn (a local search, far cheaper than rejecting whole puzzles at n >=
5). Every returned puzzle has been checked exhaustively: its consistent-assignment mask has exactly one bit
set.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping

from rl_distill.tasks.base import RENDERS
from rl_distill.tasks.knights_knaves.logic import MAX_PEOPLE, Node, consistent_mask
from rl_distill.typed_config import ConfigError, check_choice, check_range

FORMS = ("lit", "and", "or", "imp", "iff", "one", "not")
_COMPOUND = ("and", "or", "imp", "iff", "one")


def _default_weights() -> dict[str, float]:
    return {"lit": 2.0, "and": 1.0, "or": 1.0, "imp": 1.0, "iff": 1.0, "one": 1.0, "not": 1.0}


@dataclasses.dataclass(frozen=True)
class KnightsKnavesConfig:
    """Statement grammar of the generator, and the text rendering.

    ``form_weights``: relative frequency of each statement form (``lit`` "X is a knight/knave", ``and``,
    ``or``, ``imp`` implies, ``iff``, ``one`` "exactly one of", ``not`` a negated compound); 0 disables a
    form. ``max_depth``: 1 = operators over literals; 2 = an operand may itself be a parenthesised compound
    (the harder statement forms). ``nested_prob``: chance that an operand is compound when depth allows.
    ``max_one_arity``: most operands of "exactly one of". ``self_reference``: compounds may mention the
    speaker ("I am a knave or B is a knight"); plain literals never do. ``max_redraws``: statement redraws
    before a puzzle is restarted. ``render``: ``symbolic`` (the compact notation of :mod:`.logic`, for the
    char-level tokenizer) or ``natural`` (English with names, :mod:`.natural`, for pretrained LLMs); the puzzles
    are the same for a given seed either way.
    """

    form_weights: dict[str, float] = dataclasses.field(default_factory=_default_weights)
    max_depth: int = 1
    nested_prob: float = 0.5
    max_one_arity: int = 3
    self_reference: bool = True
    max_redraws: int = 64
    render: str = "symbolic"

    def __post_init__(self) -> None:
        check_choice("render", self.render, RENDERS)
        unknown = [k for k in self.form_weights if k not in FORMS]
        if unknown:
            raise ConfigError(f"form_weights: unknown form '{unknown[0]}'. Valid forms: {', '.join(FORMS)}.")
        for form, weight in self.form_weights.items():
            check_range(f"form_weights.{form}", weight, 0.0)
        if not any(self.form_weights.get(f, 0.0) > 0 for f in FORMS):
            raise ConfigError("form_weights: at least one form needs a positive weight.")
        check_range("max_depth", self.max_depth, 1, 2)
        check_range("nested_prob", self.nested_prob, 0.0, 1.0)
        check_range("max_one_arity", self.max_one_arity, 2, MAX_PEOPLE)
        check_range("max_redraws", self.max_redraws, 1)


class StatementSampler:
    """Draws statements for speaker ``s`` of an ``n``-person puzzle under a :class:`KnightsKnavesConfig`."""

    def __init__(self, config: KnightsKnavesConfig, rng: random.Random) -> None:
        self.config = config
        self.rng = rng
        weights: Mapping[str, float] = config.form_weights
        self._forms = [f for f in FORMS if weights.get(f, 0.0) > 0]
        self._weights = [weights[f] for f in self._forms]
        compound = [f for f in _COMPOUND if weights.get(f, 0.0) > 0]
        self._inner = compound or ["and"]
        self._inner_weights = [weights.get(f, 1.0) for f in self._inner]

    def _lit(self, person: int) -> Node:
        return ("lit", person, self.rng.random() < 0.5)

    def _people(self, n: int, speaker: int, k: int) -> list[int]:
        pool = list(range(n)) if self.config.self_reference else [p for p in range(n) if p != speaker]
        if len(pool) < k:
            pool = list(range(n))
        return self.rng.sample(pool, k)

    def _compound(self, form: str, n: int, speaker: int, depth: int) -> Node:
        rng = self.rng
        if form == "one":
            k = rng.randint(2, max(2, min(self.config.max_one_arity, n)))
            return ("one", tuple(self._lit(p) for p in self._people(n, speaker, k)))
        people = self._people(n, speaker, 2)
        operands = []
        for person in people:
            if depth > 1 and rng.random() < self.config.nested_prob:
                inner = rng.choices(self._inner, self._inner_weights)[0]
                operands.append(self._compound(inner, n, speaker, depth - 1))
            else:
                operands.append(self._lit(person))
        return (form, operands[0], operands[1])

    def sample(self, n: int, speaker: int) -> Node:
        form = self.rng.choices(self._forms, self._weights)[0]
        if form == "lit":
            others = [p for p in range(n) if p != speaker] or [speaker]
            return self._lit(self.rng.choice(others))
        if form == "not":
            inner = self.rng.choices(self._inner, self._inner_weights)[0]
            return ("not", self._compound(inner, n, speaker, self.config.max_depth))
        return self._compound(form, n, speaker, self.config.max_depth)


def sample_puzzle(n: int, sampler: StatementSampler) -> tuple[list[Node], int]:
    """Statements of a uniquely solvable ``n``-person puzzle and the index of its solution assignment."""
    rng = sampler.rng
    while True:
        statements = [sampler.sample(n, s) for s in range(n)]
        for _ in range(sampler.config.max_redraws):
            mask = consistent_mask(statements, n)
            if mask and not mask & (mask - 1):  # exactly one consistent assignment
                return statements, mask.bit_length() - 1
            speaker = rng.randrange(n)
            statements[speaker] = sampler.sample(n, speaker)
