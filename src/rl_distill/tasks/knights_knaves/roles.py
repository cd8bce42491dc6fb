"""Reading role assignments ("Zoey is a knight") out of free text: answers and suppositions of natural K&K replies.

One job: turn what a real model writes in its final ``<answer>`` (or in a "Suppose ..." line of its trace) into a
canonical role assignment, ``Oliver=knave;Zoey=knight`` (people sorted by name, ``=``, the role; ``;`` between).
Names are those of the fixed pool :data:`NAMES` (case-insensitive, whole words), so other capitalised words ("So",
"Answer", "Both") are never mistaken for people. The reader scans the text left to right:

- name first (``Zoey is a knight``, ``Zoey: Knight``, ``(1) Zoey is a knight``, ``Zoey=knight``): a role word
  gives its role to the last name seen since the previous role; a plural role word (``knights``) to all of them
  (``Zoey and Oliver are knaves``);
- role first (``Knights: Zoey, Ava``, ``The knave is Oliver``): a role word with no name pending, followed by
  ``:``, ``=``, ``-``, ``is`` or ``are``, gives its role to the names after it, up to the end of the sentence or
  the next role word;
- a negation between the name and the role flips it (``Zoey is not a knave`` is a knight); a negated role with
  no name pending is ignored (``Zoey is a knight, not a knave``);
- ``.``, ``;`` and newlines end a sentence: a name without a role in its sentence is dropped.

A person given two different roles makes the whole text unreadable (None), as does text naming nobody. The
contradiction check of trace lines (:func:`refuted`) treats "no contradiction", "does not lead to a
contradiction", "without contradiction" as no contradiction, and every other mention of "contradict..." as one.
"""

from __future__ import annotations

import re

#: The pool puzzle names are drawn from: common first names, distinct, none an English word or a role word.
NAMES: tuple[str, ...] = (
    "Zoey", "Oliver", "Emma", "Liam", "Sophia", "Noah", "Ava", "Ethan", "Mia", "Lucas",
    "Amelia", "Jacob", "Harper", "Henry", "Ella", "Samuel", "Evelyn", "Daniel", "Chloe", "James",
    "Penelope", "Owen", "Jackson", "Leo", "Nora", "David", "Isabella", "Mason", "Scarlett", "Logan",
)
KNIGHT, KNAVE = "knight", "knave"
ROLES = (KNIGHT, KNAVE)

_BY_LOWER = {name.lower(): name for name in NAMES}
_TOKEN = re.compile(
    r"\b(?P<name>" + "|".join(NAMES) + r")\b"
    r"|\b(?P<role>knight|knave)(?P<plural>s)?\b"
    r"|(?P<neg>\bnot\b|n['\u2019]t\b|\bnever\b)"
    r"|(?P<end>[.;\n])(?!\d)",
    re.IGNORECASE)
#: What may follow a role word that introduces the names it applies to (role-first answers).
_ROLE_FIRST = re.compile(r"\s*(?::|=|-|\bis\b|\bare\b)", re.IGNORECASE)
_CONTRADICTION = re.compile(r"\bcontradict\w*", re.IGNORECASE)
_NEGATED = re.compile(r"\b(?:no|not|without|never)\b|n['\u2019]t\b", re.IGNORECASE)
_CLAUSE_BREAK = re.compile(r"[.,;:!?\n]")


def _flip(role: str) -> str:
    return KNAVE if role == KNIGHT else KNIGHT


def read_roles(text: str) -> dict[str, str] | None:
    """Person -> role written in ``text`` (module docstring), or None when nobody is named or a person gets two
    different roles.

    >>> read_roles("Zoey is a knight, and Oliver is a knave.")
    {'Zoey': 'knight', 'Oliver': 'knave'}
    >>> read_roles("Knights: Ava, Leo; knave: Mia")
    {'Ava': 'knight', 'Leo': 'knight', 'Mia': 'knave'}
    >>> read_roles("Zoey and Oliver are knaves") == {"Zoey": "knave", "Oliver": "knave"}
    True
    >>> read_roles("Zoey is a knight. Zoey is a knave.") is None
    True
    """
    roles: dict[str, str] = {}
    pending: list[str] = []
    negated = False
    role_first: str | None = None

    def assign(name: str, role: str) -> bool:  # False when ``name`` already has the other role
        return roles.setdefault(name, role) == role

    for match in _TOKEN.finditer(text):
        kind = match.lastgroup if match.lastgroup != "plural" else "role"
        if kind == "end":
            pending, negated, role_first = [], False, None
        elif kind == "neg":
            negated = True
        elif kind == "name":
            name = _BY_LOWER[match.group("name").lower()]
            if role_first is not None:
                if not assign(name, role_first):
                    return None
            else:
                pending.append(name)
        else:
            role = match.group("role").lower()
            if pending:
                role = _flip(role) if negated else role
                targets = pending if match.group("plural") else pending[-1:]
                if not all(assign(name, role) for name in targets):
                    return None
                role_first = None
            elif not negated and _ROLE_FIRST.match(text, match.end()):
                role_first = role
            else:
                role_first = None
            pending, negated = [], False
    return roles or None


def canonical(roles: dict[str, str]) -> str:
    """``Oliver=knave;Zoey=knight``: people sorted by name.

    >>> canonical({"Zoey": "knight", "Oliver": "knave"})
    'Oliver=knave;Zoey=knight'
    """
    return ";".join(f"{name}={roles[name]}" for name in sorted(roles))


def canonical_roles(text: str) -> str | None:
    """:func:`canonical` of :func:`read_roles`, or None when the text does not read.

    >>> canonical_roles("(1) Zoey is a Knight (2) Oliver is a Knave")
    'Oliver=knave;Zoey=knight'
    >>> canonical_roles("I cannot tell.") is None
    True
    """
    roles = read_roles(text)
    return None if roles is None else canonical(roles)


def refuted(text: str) -> bool:
    """Whether ``text`` reports a contradiction (a mention of "contradict..." that its clause does not negate).

    >>> refuted("Zoey says Oliver is a knave, which is false, but a knight tells the truth: contradiction.")
    True
    >>> refuted("Oliver says Zoey is a knave, which is false, as a knave's statement must be. No contradiction.")
    False
    >>> refuted("This does not lead to a contradiction, but that contradicts Zoey's claim.")
    True
    """
    for match in _CONTRADICTION.finditer(text):
        start = max((m.end() for m in _CLAUSE_BREAK.finditer(text, 0, match.start())), default=0)
        if not _NEGATED.search(text, start, match.start()):
            return True
    return False


_NAME = re.compile(r"\b(?:" + "|".join(NAMES) + r")\b")


def anonymize(text: str) -> str:
    """``text`` with each pool name replaced by ``#i``, i its order of first appearance: the same puzzle told with
    other names gives the same text (for dedupe and split disjointness).

    >>> anonymize("You meet 2 inhabitants: Zoey and Oliver. Zoey says, \\"Oliver is a knave.\\"")
    'You meet 2 inhabitants: #0 and #1. #0 says, "#1 is a knave."'
    """
    order: dict[str, str] = {}
    return _NAME.sub(lambda m: order.setdefault(m.group(0), f"#{len(order)}"), text)


_SUPPOSE = re.compile(r"\b(?:suppose|assume)\b", re.IGNORECASE)
_SUPPOSITION_END = re.compile(r"[.\n]")


def supposition_answer(think: str) -> str | None:
    """The candidate a natural trace accepted: the last ``Suppose ...`` (or ``Assume ...``) line that names
    someone and reports no contradiction (:func:`refuted`), in canonical form; None when there is no such line.

    A line runs from one supposition to the next; its candidate is read from the supposition's sentence (up to
    the first ``.`` or newline).

    >>> supposition_answer("Suppose Zoey is a knight and Oliver is a knight. ... false, but a knight tells the "
    ...                    "truth: contradiction.\\nSuppose Zoey is a knight and Oliver is a knave. ... "
    ...                    "No contradiction.")
    'Oliver=knave;Zoey=knight'
    >>> supposition_answer("Suppose Zoey is a knight and Oliver is a knight. ... contradiction.") is None
    True
    """
    starts = [m.start() for m in _SUPPOSE.finditer(think)]
    for start, end in reversed(list(zip(starts, [*starts[1:], len(think)]))):
        line = think[start:end]
        if refuted(line):
            continue
        stop = _SUPPOSITION_END.search(line)
        roles = read_roles(line[:stop.start() if stop else len(line)])
        if roles is not None:
            return canonical(roles)
    return None
