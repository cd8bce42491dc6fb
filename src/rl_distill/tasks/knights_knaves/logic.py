"""Knights-and-Knaves statements: syntax tree, compact notation, truth tables as bitmasks, and a parser.

Notation (miniature.md, "Encoding that worked"): people are ``A``..``H``; an upper-case letter means "X is a
knight", a lower-case one "X is a knave". Operators: ``!`` not, ``&`` and, ``|`` or, ``>`` implies, ``~`` iff,
and ``^`` "exactly one of" (n-ary: ``A^b^C`` is true when exactly one of the three literals is true, not a
chained xor). Compound operands are parenthesised, so no precedence rules are needed. A puzzle prompt is
``A:b;B:A&c;C:b^c``: speaker, colon, statement. A knight's statement is true and a knave's is false.

Truth tables are Python ints with one bit per assignment: bit ``k`` is assignment ``k`` of the fixed candidate
order, where person ``i`` (A = 0) is a knave in assignment ``k`` iff bit ``n-1-i`` of ``k`` is set. So
assignment 0 is "all knights" (``ABC``), 1 is ``ABc``, 2 is ``AbC``, ... as the trace enumerates them.

Tree nodes are tuples: ``("lit", person, knight)``, ``("not", child)``, ``(op, left, right)`` for op in
``and/or/imp/iff``, ``("one", (child, ...))``. In a value tree (used for the trace) leaves may also be ints
0/1.
"""

from __future__ import annotations

import functools
from typing import Any

PEOPLE = "ABCDEFGH"
MAX_PEOPLE = len(PEOPLE)
BINARY_SYMBOLS = {"and": "&", "or": "|", "imp": ">", "iff": "~"}
ONE_SYMBOL = "^"
NOT_SYMBOL = "!"
SYMBOL_TO_OP = {**{s: op for op, s in BINARY_SYMBOLS.items()}, ONE_SYMBOL: "one"}

Node = Any  # a tuple as described in the module docstring, or an int 0/1 in value trees


def role_letter(person: int, knight: bool) -> str:
    """``role_letter(1, False) == 'b'``: upper case for a knight, lower case for a knave."""
    letter = PEOPLE[person]
    return letter if knight else letter.lower()


@functools.cache
def knight_masks(n: int) -> tuple[int, ...]:
    """Truth table of "person i is a knight" for each of ``n`` people (bit k = assignment k)."""
    return tuple(
        sum(1 << k for k in range(1 << n) if not (k >> (n - 1 - i)) & 1) for i in range(n)
    )


@functools.cache
def candidate_names(n: int) -> tuple[str, ...]:
    """Assignments in trace order: ``candidate_names(2) == ('AB', 'Ab', 'aB', 'ab')``."""
    return tuple(
        "".join(role_letter(i, not (k >> (n - 1 - i)) & 1) for i in range(n)) for k in range(1 << n)
    )


def full_mask(n: int) -> int:
    return (1 << (1 << n)) - 1


def truth_mask(node: Node, n: int) -> int:
    """Truth table of ``node`` over all 2^n assignments, as an int bitmask."""
    kind = node[0]
    full = full_mask(n)
    if kind == "lit":
        mask = knight_masks(n)[node[1]]
        return mask if node[2] else full ^ mask
    if kind == "not":
        return full ^ truth_mask(node[1], n)
    if kind == "one":
        ones = twos = 0
        for child in node[1]:
            value = truth_mask(child, n)
            twos |= ones & value
            ones ^= value
        return ones & ~twos & full
    left, right = truth_mask(node[1], n), truth_mask(node[2], n)
    if kind == "and":
        return left & right
    if kind == "or":
        return left | right
    if kind == "imp":
        return (full ^ left) | right
    return full ^ (left ^ right)  # iff


def consistent_mask(statements: list[Node], n: int) -> int:
    """Assignments under which every speaker's statement is true iff the speaker is a knight."""
    full = full_mask(n)
    mask = full
    for knight, statement in zip(knight_masks(n), statements):
        mask &= full ^ (knight ^ truth_mask(statement, n))
    return mask


def evaluate(node: Node, knights: tuple[bool, ...]) -> bool:
    """Truth of ``node`` when ``knights[i]`` says whether person i is a knight (slow twin of truth_mask)."""
    kind = node[0]
    if kind == "lit":
        return knights[node[1]] == node[2]
    if kind == "not":
        return not evaluate(node[1], knights)
    if kind == "one":
        return sum(evaluate(c, knights) for c in node[1]) == 1
    left, right = evaluate(node[1], knights), evaluate(node[2], knights)
    table = {"and": left and right, "or": left or right, "imp": (not left) or right, "iff": left == right}
    return table[kind]


def people_in(node: Node) -> tuple[int, ...]:
    """Sorted distinct people a statement mentions."""
    if node[0] == "lit":
        return (node[1],)
    children = node[1] if node[0] == "one" else node[1:]
    return tuple(sorted({p for child in children for p in people_in(child)}))


# ----------------------------------------------------------------------------------------------- rendering


def _operand(node: Node, text: str) -> str:
    return text if isinstance(node, int) or node[0] in ("lit", "not") else f"({text})"


def render(node: Node) -> str:
    """Compact notation: ``render(("and", ("lit", 0, True), ("lit", 2, False))) == 'A&c'``."""
    if isinstance(node, int):
        return str(node)
    kind = node[0]
    if kind == "lit":
        return role_letter(node[1], node[2])
    if kind == "not":
        child = node[1]
        inner = render(child)
        return NOT_SYMBOL + (inner if isinstance(child, int) or child[0] == "lit" else f"({inner})")
    if kind == "one":
        return ONE_SYMBOL.join(_operand(c, render(c)) for c in node[1])
    symbol = BINARY_SYMBOLS[kind]
    return f"{_operand(node[1], render(node[1]))}{symbol}{_operand(node[2], render(node[2]))}"


def substitute(node: Node, knights: tuple[bool, ...]) -> Node:
    """Replace every literal by its truth value (0/1) under ``knights``."""
    kind = node[0]
    if kind == "lit":
        return int(knights[node[1]] == node[2])
    if kind == "not":
        return ("not", substitute(node[1], knights))
    if kind == "one":
        return ("one", tuple(substitute(c, knights) for c in node[1]))
    return (kind, substitute(node[1], knights), substitute(node[2], knights))


def _apply(kind: str, values: list[int]) -> int:
    if kind == "not":
        return 1 - values[0]
    if kind == "one":
        return int(sum(values) == 1)
    left, right = values
    table = {"and": left & right, "or": left | right, "imp": (1 - left) | right, "iff": int(left == right)}
    return table[kind]


def reduce_once(node: Node) -> Node:
    """Collapse every sub-tree whose operands are all values (one local evaluation step)."""
    if isinstance(node, int):
        return node
    kind = node[0]
    children = list(node[1]) if kind == "one" else list(node[1:])
    if all(isinstance(c, int) for c in children):
        return _apply(kind, children)
    reduced = [reduce_once(c) for c in children]
    return ("one", tuple(reduced)) if kind == "one" else (kind, *reduced)


def annotate(node: Node, knights: tuple[bool, ...]) -> str:
    """The statement with each literal followed by its truth value (``A&c`` -> ``A1&c0``)."""
    kind = node[0]
    if kind == "lit":
        return role_letter(node[1], node[2]) + str(int(knights[node[1]] == node[2]))
    if kind == "not":
        child = node[1]
        inner = annotate(child, knights)
        return NOT_SYMBOL + (inner if child[0] == "lit" else f"({inner})")
    if kind == "one":
        return ONE_SYMBOL.join(_operand(c, annotate(c, knights)) for c in node[1])
    symbol = BINARY_SYMBOLS[kind]
    return (f"{_operand(node[1], annotate(node[1], knights))}{symbol}"
            f"{_operand(node[2], annotate(node[2], knights))}")


def reduction_steps(node: Node, knights: tuple[bool, ...]) -> list[str]:
    """The evaluation of ``node`` written step by step; the last character of the last step is the value.

    The first step copies the statement with each literal's truth value after it (the local lookup); each
    further step collapses every innermost operator.

    >>> A, b, C = ("lit", 0, True), ("lit", 1, False), ("lit", 2, True)
    >>> reduction_steps(("and", A, ("or", b, C)), (True, True, False))
    ['A1&(b0|C0)', '1&0', '0']
    >>> reduction_steps(("not", ("iff", A, b)), (True, True, True))
    ['!(A1~b0)', '!0', '1']
    >>> reduction_steps(b, (True, False, True))
    ['b1']
    """
    steps = [annotate(node, knights)]
    tree = substitute(node, knights)
    while not isinstance(tree, int):
        tree = reduce_once(tree)
        steps.append(render(tree))
    return steps


# ----------------------------------------------------------------------------------------------- parsing


class ParseError(ValueError):
    """A statement or puzzle string is not in the compact notation."""


def _parse_operand(text: str, pos: int) -> tuple[Node, int]:
    if pos >= len(text):
        raise ParseError(f"unexpected end of statement {text!r}")
    char = text[pos]
    if char == NOT_SYMBOL:
        child, pos = _parse_operand(text, pos + 1)
        return ("not", child), pos
    if char == "(":
        node, pos = _parse_expr(text, pos + 1)
        if pos >= len(text) or text[pos] != ")":
            raise ParseError(f"missing ')' in {text!r}")
        return node, pos + 1
    if char.upper() in PEOPLE:
        return ("lit", PEOPLE.index(char.upper()), char.isupper()), pos + 1
    raise ParseError(f"unexpected {char!r} at {pos} in {text!r}")


def _parse_expr(text: str, pos: int) -> tuple[Node, int]:
    first, pos = _parse_operand(text, pos)
    operands, symbol = [first], None
    while pos < len(text) and text[pos] in SYMBOL_TO_OP:
        if symbol is not None and text[pos] != symbol:
            raise ParseError(f"mixed operators without parentheses in {text!r}")
        symbol = text[pos]
        operand, pos = _parse_operand(text, pos + 1)
        operands.append(operand)
    if symbol is None:
        return first, pos
    op = SYMBOL_TO_OP[symbol]
    if op == "one":
        return ("one", tuple(operands)), pos
    if len(operands) != 2:
        raise ParseError(f"'{symbol}' takes two operands in {text!r}")
    return (op, operands[0], operands[1]), pos


def parse_statement(text: str) -> Node:
    """Inverse of :func:`render`: ``parse_statement('A&(b|C)')`` gives the tree."""
    node, pos = _parse_expr(text, 0)
    if pos != len(text):
        raise ParseError(f"trailing {text[pos:]!r} in {text!r}")
    return node


def parse_puzzle(prompt: str) -> list[Node]:
    """The statements of a prompt ``A:...;B:...``, in speaker order (speakers must be A, B, C, ...)."""
    statements = []
    for i, part in enumerate(prompt.strip().split(";")):
        speaker, sep, body = part.partition(":")
        if not sep or i >= MAX_PEOPLE or speaker != PEOPLE[i]:
            expected = PEOPLE[min(i, MAX_PEOPLE - 1)]
            raise ParseError(f"statement {i} {part!r} does not start with '{expected}:'")
        statements.append(parse_statement(body))
    return statements
