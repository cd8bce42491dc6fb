"""The think-answer output format: tags, cycle parsing, the format check and the final answer.

A completion is one or more cycles ``<think> ... </think><answer> ... </answer>`` (R-TAP writes several, each
conditioned on the earlier ones; method.md section 5), separated by optional whitespace and with nothing else
around them. The final answer is the content of the last complete ``<answer>`` block. Every function here is
total: any string gives a result, never an exception.
"""

from __future__ import annotations

import dataclasses
import re

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
ANSWER_OPEN = "<answer>"
ANSWER_CLOSE = "</answer>"
TAGS = (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)

_NO_TAG = r"(?:(?!</?think>|</?answer>).)*"
_CYCLE = re.compile(
    rf"<think>(?P<think>{_NO_TAG})</think>\s*<answer>(?P<answer>{_NO_TAG})</answer>", re.DOTALL)
_ANSWER = re.compile(rf"<answer>({_NO_TAG})</answer>", re.DOTALL)
_THINK_HEAD = re.compile(rf"<think>({_NO_TAG})", re.DOTALL)
_WS = re.compile(r"\s*")


@dataclasses.dataclass(frozen=True)
class Cycle:
    """One think-answer cycle. ``answer`` is None when the cycle has no complete answer block."""

    think: str
    answer: str | None
    well_formed: bool


def _malformed(segment: str) -> Cycle:
    head = _THINK_HEAD.match(segment)
    think = head.group(1) if head else segment
    answers = _ANSWER.findall(segment)
    return Cycle(think=think, answer=answers[-1] if answers else None, well_formed=False)


def parse_cycles(text: str) -> list[Cycle]:
    """Split ``text`` into cycles; stray text between or around cycles becomes a malformed cycle.

    >>> parse_cycles("<think>A:b=0 x</think><answer>Ab</answer>")
    [Cycle(think='A:b=0 x', answer='Ab', well_formed=True)]
    >>> two = "<think>1</think><answer>2</answer>\\n<think>3</think><answer>4</answer>"
    >>> [c.well_formed for c in parse_cycles(two)]
    [True, True]
    >>> parse_cycles("hello <think>x</think>")
    [Cycle(think='hello ', answer=None, well_formed=False), Cycle(think='x', answer=None, well_formed=False)]
    >>> parse_cycles("   ")
    []
    """
    cycles: list[Cycle] = []
    pos = _WS.match(text, 0).end()
    while pos < len(text):
        match = _CYCLE.match(text, pos)
        if match:
            cycles.append(Cycle(think=match.group("think"), answer=match.group("answer"), well_formed=True))
            end = match.end()
        else:
            nxt = text.find(THINK_OPEN, pos + 1)
            end = len(text) if nxt < 0 else nxt
            cycles.append(_malformed(text[pos:end]))
        pos = _WS.match(text, end).end()
    return cycles


def is_well_formed(text: str, max_cycles: int | None = None) -> bool:
    """True when ``text`` is one or more well-formed cycles (at most ``max_cycles``) and nothing else.

    >>> is_well_formed("<think>7+5+0=12</think><answer>12</answer>")
    True
    >>> is_well_formed("<think>a</think><answer>1</answer><think>b</think><answer>2</answer>", max_cycles=1)
    False
    >>> is_well_formed("<think>a</think><answer>1</answer> trailing")
    False
    >>> is_well_formed("<think><think></think><answer>1</answer>")
    False
    """
    cycles = parse_cycles(text)
    if not cycles or not all(c.well_formed for c in cycles):
        return False
    return max_cycles is None or len(cycles) <= max_cycles


def final_answer(text: str) -> str | None:
    """The stripped content of the last complete ``<answer>...</answer>`` block, or None (also if empty).

    Looked up even when the format is broken: the format is scored separately (see
    :mod:`rl_distill.tasks.rewards`).

    >>> final_answer("<think>x</think><answer> AbC </answer>")
    'AbC'
    >>> final_answer("<think>x</think><answer>1</answer><think>y</think><answer>2</answer>")
    '2'
    >>> final_answer("<answer>unclosed") is None
    True
    """
    found = _ANSWER.findall(text)
    if not found:
        return None
    content = found[-1].strip()
    return content or None
