"""The ``arithmetic`` task: multi-digit + and * with a carry-by-carry trace (difficulty = digits).

Cheap and fully local; the smoke environment uses it. Both operands have exactly ``difficulty`` digits.
Prompt: ``47+85`` or ``47*85`` followed by a newline. Answer: the integer in decimal (``132``); the verifier
compares integer values, ignoring whitespace and leading zeros. Traces work right to left, one column per
step, each step written with a two-digit result whose first digit is the next carry:

    47+85   <think>7+5+0=12 4+8+1=13 =132</think><answer>132</answer>
    47*85   <think>7*5+0=35 4*5+3=23 =235
            7*8+0=56 4*8+5=37 =376
            235+3760: 5+0+0=05 3+6+0=09 2+7+0=09 0+3+0=03 =3995</think><answer>3995</answer>

Multiplication writes one partial product per digit of the second operand (digit times digit plus carry), then
adds each shifted partial product to the running sum column by column. With a self-correction rate a step is
sometimes first written with a wrong last digit, then ``wait,`` and the right step.
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
from typing import Any, ClassVar

from rl_distill.tasks.base import PROMPT_END, Example, Task, example_id
from rl_distill.tasks.corrections import CORRECTION_MARKER, corrected_step
from rl_distill.tasks.format import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN
from rl_distill.typed_config import ConfigError

OPS = ("+", "*")
MAX_DIGITS = 12
_INTEGER = re.compile(r"[+-]?\d+")
_WS = re.compile(r"\s+")


@dataclasses.dataclass(frozen=True)
class ArithmeticConfig:
    """``ops``: operators drawn uniformly per example, from ``+`` and ``*``."""

    ops: tuple[str, ...] = OPS

    def __post_init__(self) -> None:
        if not self.ops:
            raise ConfigError(f"ops: give at least one of {', '.join(OPS)}.")
        for op in self.ops:
            if op not in OPS:
                raise ConfigError(f"ops: unknown operator {op!r}. Valid: {', '.join(OPS)}.")


class _Writer:
    """Collects trace steps, each possibly self-corrected."""

    def __init__(self, rng: random.Random | None, rate: float) -> None:
        self.rng, self.rate = rng, rate

    def step(self, text: str) -> str:
        if self.rng is None:
            return text
        wrong = text[:-1] + str((int(text[-1]) + 1) % 10)
        return corrected_step(text, wrong, self.rng, self.rate)


def _digits(value: int) -> list[int]:
    """Decimal digits, least significant first."""
    return [int(c) for c in reversed(str(value))]


def _column_sum(a: int, b: int, writer: _Writer) -> tuple[list[str], int]:
    """Column steps of ``a + b`` (``x+y+carry=cd``) and the sum."""
    da, db = _digits(a), _digits(b)
    width = max(len(da), len(db))
    da += [0] * (width - len(da))
    db += [0] * (width - len(db))
    steps, carry = [], 0
    for x, y in zip(da, db):
        total = x + y + carry
        steps.append(writer.step(f"{x}+{y}+{carry}={total:02d}"))
        carry = total // 10
    return steps, a + b


def _partial_product(a: int, digit: int, writer: _Writer) -> tuple[list[str], int]:
    """Steps of ``a * digit`` (``x*d+carry=cd``) and the product."""
    steps, carry = [], 0
    for x in _digits(a):
        total = x * digit + carry
        steps.append(writer.step(f"{x}*{digit}+{carry}={total:02d}"))
        carry = total // 10
    return steps, a * digit


def arithmetic_think(a: int, op: str, b: int, rng: random.Random | None = None, rate: float = 0.0) -> str:
    """The reasoning inside ``<think>`` for ``a op b`` (see the module docstring)."""
    writer = _Writer(rng, rate)
    if op == "+":
        steps, total = _column_sum(a, b, writer)
        return " ".join([*steps, f"={total}"])
    lines, running = [], 0
    for shift, digit in enumerate(_digits(b)):
        steps, partial = _partial_product(a, digit, writer)
        lines.append(" ".join([*steps, f"={partial}"]))
        if shift == 0:
            running = partial
            continue
        shifted = partial * 10**shift
        steps, running = _column_sum(running, shifted, writer)
        lines.append(" ".join([f"{running - shifted}+{shifted}:", *steps, f"={running}"]))
    return "\n".join(lines)


class ArithmeticTask(Task):
    """Addition and multiplication of two ``difficulty``-digit numbers."""

    name: ClassVar[str] = "arithmetic"
    alphabet: ClassVar[str] = "".join(sorted(set("0123456789+*=: \n" + CORRECTION_MARKER + PROMPT_END)))
    Config = ArithmeticConfig

    def __init__(self, config: ArithmeticConfig | None = None) -> None:
        self.config = config or ArithmeticConfig()

    def generate(self, n: int, difficulty: int, seed: int, **opts: Any) -> list[Example]:
        """``n`` problems whose operands have ``difficulty`` digits (1..12).

        ``self_correction_rate``: probability that each step of ``trace`` is first written wrong, then
        corrected.

        >>> ex = ArithmeticTask(ArithmeticConfig(ops=("+",))).generate(1, 2, seed=0)[0]
        >>> ArithmeticTask().verify(ex.trace, ex.answer).value
        'correct'
        """
        if not 1 <= difficulty <= MAX_DIGITS:
            raise ValueError(f"arithmetic difficulty (digits) must be in 1..{MAX_DIGITS}, got {difficulty}")
        rate, _ = self.generation_options(opts)
        rng = random.Random(f"{self.name}:{difficulty}:{seed}")
        corrections = random.Random(f"{self.name}:{difficulty}:{seed}:corrections")
        low = 0 if difficulty == 1 else 10 ** (difficulty - 1)
        high = 10**difficulty - 1
        examples = []
        for _ in range(n):
            op = rng.choice(self.config.ops)
            a, b = rng.randint(low, high), rng.randint(low, high)
            question = f"{a}{op}{b}"
            answer = str(a + b if op == "+" else a * b)
            tail = f"{THINK_CLOSE}{ANSWER_OPEN}{answer}{ANSWER_CLOSE}"
            clean = THINK_OPEN + arithmetic_think(a, op, b) + tail
            trace = THINK_OPEN + arithmetic_think(a, op, b, corrections, rate) + tail if rate > 0 else clean
            examples.append(Example(
                id=example_id(self.name, difficulty, self.question_key(question)),
                task=self.name, difficulty=difficulty, prompt=question + PROMPT_END, trace=trace,
                answer=answer, trace_clean=clean, meta=json.dumps({"op": op, "a": a, "b": b}),
            ))
        return examples

    def parse_answer(self, completion: str) -> str | None:
        """The integer in the final answer, canonical (``' 0132 '`` -> ``'132'``), or None.

        >>> ArithmeticTask().parse_answer("<think>..</think><answer> 1 32 </answer>")
        '132'
        >>> ArithmeticTask().parse_answer("<answer>12a</answer>") is None
        True
        """
        text = self.answer_text(completion)
        if text is None:
            return None
        text = _WS.sub("", text)
        if not _INTEGER.fullmatch(text) or len(text) > 64:
            return None
        return str(int(text))

    def answers_match(self, predicted: str, answer: str) -> bool:
        try:
            return int(predicted) == int(_WS.sub("", answer))
        except ValueError:
            return False
