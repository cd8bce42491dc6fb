"""The ``arithmetic`` task: multi-digit + and * with a carry-by-carry trace (difficulty = digits).

Cheap and fully local; the smoke environment uses it. Both operands have exactly ``difficulty`` digits. Two
renderings (config ``render``) of the same problems for a given seed.

``symbolic`` (default; the char-level tokenizer). Prompt: ``47+85`` or ``47*85`` followed by a newline. Answer:
the integer in decimal (``132``); the verifier compares integer values, ignoring whitespace and leading zeros.
Traces work right to left, one column per step, each step written with a two-digit result whose first digit is
the next carry:

    47+85   <think>7+5+0=12 4+8+1=13 =132</think><answer>132</answer>
    47*85   <think>7*5+0=35 4*5+3=23 =235
            7*8+0=56 4*8+5=37 =376
            235+3760: 5+0+0=05 3+6+0=09 2+7+0=09 0+3+0=03 =3995</think><answer>3995</answer>

Multiplication writes one partial product per digit of the second operand (digit times digit plus carry), then
adds each shifted partial product to the running sum column by column. With a self-correction rate a step is
sometimes first written with a wrong last digit, then ``wait,`` and the right step.

``natural`` (pretrained LLMs with BPE tokenizers). Prompt: ``What is 47 + 85?`` / ``What is 47 * 85?``
followed by a newline. Trace: a short worked solution in words (:func:`natural_think`), columns for a sum, one
partial product per nonzero digit of the second operand for a product (a self-correction: ``47 * 5 = 236, wait,
47 * 5 = 235``):

    <think>Add the digits from right to left: 7 + 5 = 12, write 2, carry 1; 4 + 8 + 1 = 13, write 13. So 47 + 85
    = 132.</think><answer>132</answer>
    <think>Multiply by each digit of 85 from the right: 47 * 5 = 235; 47 * 8 = 376, so 47 * 80 = 3760. Add:
    235 + 3760 = 3995. So 47 * 85 = 3995.</think><answer>3995</answer>

(one line each; wrapped here). The verifier reads what a model writes in its final answer: the last number in it
(``The answer is 132.``, ``47 + 85 = 132``, ``1,234`` with thousands separators, ``-3``); a number with a
fractional part is a (wrong) non-integer answer, ``132.0`` reads as 132, and a block without a number is
unparseable.
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
import string
from collections.abc import Callable
from typing import Any, ClassVar

from rl_distill.tasks.base import PROMPT_END, RENDERS, Example, Task, example_id
from rl_distill.tasks.corrections import CORRECTION_MARKER, corrected_step
from rl_distill.tasks.format import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN
from rl_distill.typed_config import ConfigError, check_choice

OPS = ("+", "*")
MAX_DIGITS = 12
_INTEGER = re.compile(r"[+-]?\d+")
_WS = re.compile(r"\s+")
#: A number in free text: optional sign, digits with optional thousands commas, optional fractional part.
_NUMBER = re.compile(r"(?<![\d,.])([+-]?)(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?!\d|,\d)")


@dataclasses.dataclass(frozen=True)
class ArithmeticConfig:
    """``ops``: operators drawn uniformly per example, from ``+`` and ``*``. ``render``: ``symbolic`` (compact,
    char-level tokenizer) or ``natural`` (English, pretrained LLMs); the problems are the same either way."""

    ops: tuple[str, ...] = OPS
    render: str = "symbolic"

    def __post_init__(self) -> None:
        check_choice("render", self.render, RENDERS)
        if not self.ops:
            raise ConfigError(f"ops: give at least one of {', '.join(OPS)}.")
        for op in self.ops:
            if op not in OPS:
                raise ConfigError(f"ops: unknown operator {op!r}. Valid: {', '.join(OPS)}.")


class _Writer:
    """Collects trace steps, each possibly self-corrected (``pause``: written after a wrong step, before ``wait,``)."""

    def __init__(self, rng: random.Random | None, rate: float, pause: str = "") -> None:
        self.rng, self.rate, self.pause = rng, rate, pause

    def step(self, text: str) -> str:
        if self.rng is None:
            return text
        wrong = text[:-1] + str((int(text[-1]) + 1) % 10) + self.pause
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


def _natural_sum(a: int, b: int, writer: _Writer) -> str:
    """``Add the digits from right to left: 7 + 5 = 12, write 2, carry 1; ... So 17 + 25 = 42.``"""
    da, db = _digits(a), _digits(b)
    width = max(len(da), len(db))
    if width == 1:
        return writer.step(f"{a} + {b} = {a + b}") + "."
    da += [0] * (width - len(da))
    db += [0] * (width - len(db))
    steps, carry = [], 0
    for column, (x, y) in enumerate(zip(da, db)):
        total = x + y + carry
        step = writer.step(f"{x} + {y} + {carry} = {total}" if carry else f"{x} + {y} = {total}")
        if column == width - 1:
            steps.append(f"{step}, write {total}")
        else:
            steps.append(f"{step}, write {total % 10}" + (f", carry {total // 10}" if total >= 10 else ""))
        carry = total // 10
    return f"Add the digits from right to left: {'; '.join(steps)}. So {a} + {b} = {a + b}."


def _natural_product(a: int, b: int, writer: _Writer) -> str:
    """``Multiply by each digit of 85 from the right: 47 * 5 = 235; ... So 47 * 85 = 3995.``"""
    if b < 10:
        return writer.step(f"{a} * {b} = {a * b}") + "."
    partials, steps = [], []
    for shift, digit in enumerate(_digits(b)):
        if digit == 0:  # contributes nothing
            continue
        step = writer.step(f"{a} * {digit} = {a * digit}")
        partial = a * digit * 10**shift
        steps.append(step if shift == 0 else f"{step}, so {a} * {digit}{'0' * shift} = {partial}")
        partials.append(partial)
    text = f"Multiply by each digit of {b} from the right: " + "; ".join(steps) + "."
    if len(partials) > 1:
        sums, running = [], partials[0]
        for partial in partials[1:]:
            sums.append(writer.step(f"{running} + {partial} = {running + partial}"))
            running += partial
        text += " Add: " + "; ".join(sums) + "."
    return f"{text} So {a} * {b} = {a * b}."


def natural_think(a: int, op: str, b: int, rng: random.Random | None = None, rate: float = 0.0) -> str:
    """The worked solution inside ``<think>`` for ``a op b`` in words (see the module docstring).

    >>> natural_think(17, "+", 25)
    'Add the digits from right to left: 7 + 5 = 12, write 2, carry 1; 1 + 2 + 1 = 4, write 4. So 17 + 25 = 42.'
    >>> natural_think(7, "*", 5)
    '7 * 5 = 35.'
    """
    writer = _Writer(rng, rate, pause=",")
    return _natural_sum(a, b, writer) if op == "+" else _natural_product(a, b, writer)


def _parse_strict(text: str) -> str | None:
    """Symbolic: the whole answer is one integer (whitespace ignored)."""
    text = _WS.sub("", text)
    if not _INTEGER.fullmatch(text) or len(text) > 64:
        return None
    return str(int(text))


def _parse_last_number(text: str) -> str | None:
    """Natural: the last number written (module docstring), canonical; None without one.

    >>> [_parse_last_number(t) for t in ("The answer is 1,234.", "17 + 25 = 42", "-3", "42.0", "2.50", "none")]
    ['1234', '42', '-3', '42', '2.5', None]
    """
    found = list(_NUMBER.finditer(text))
    if not found:
        return None
    sign, whole, fraction = found[-1].groups()
    digits = whole.replace(",", "")
    if len(digits) > 64:
        return None
    fraction = (fraction or "").rstrip("0")
    if fraction:  # not an integer: kept, so the verdict is WRONG rather than UNPARSEABLE
        return f"{'-' if sign == '-' else ''}{int(digits)}.{fraction}"
    return str(int(sign + digits))


@dataclasses.dataclass(frozen=True)
class _Rendering:
    """How one rendering writes a problem and reads an answer."""

    alphabet: str
    question: Callable[[int, str, int], str]
    think: Callable[..., str]
    parse: Callable[[str], str | None]


RENDERINGS = {
    "symbolic": _Rendering(
        alphabet="".join(sorted(set("0123456789+*=: \n" + CORRECTION_MARKER + PROMPT_END))),
        question=lambda a, op, b: f"{a}{op}{b}", think=arithmetic_think, parse=_parse_strict),
    "natural": _Rendering(
        alphabet="".join(sorted(set(string.ascii_letters + string.digits + " .,;:?+*=\n" + CORRECTION_MARKER
                                    + PROMPT_END))),
        question=lambda a, op, b: f"What is {a} {op} {b}?", think=natural_think, parse=_parse_last_number),
}


class ArithmeticTask(Task):
    """Addition and multiplication of two ``difficulty``-digit numbers."""

    name: ClassVar[str] = "arithmetic"
    alphabet: str = RENDERINGS["symbolic"].alphabet  # the default rendering's; an instance sets its own
    Config = ArithmeticConfig

    def __init__(self, config: ArithmeticConfig | None = None) -> None:
        self.config = config or ArithmeticConfig()
        self.rendering = RENDERINGS[self.config.render]
        self.alphabet = self.rendering.alphabet

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
            question = self.rendering.question(a, op, b)
            answer = str(a + b if op == "+" else a * b)
            tail = f"{THINK_CLOSE}{ANSWER_OPEN}{answer}{ANSWER_CLOSE}"
            think = self.rendering.think
            clean = THINK_OPEN + think(a, op, b) + tail
            trace = THINK_OPEN + think(a, op, b, corrections, rate) + tail if rate > 0 else clean
            examples.append(Example(
                id=example_id(self.name, difficulty, self.question_key(question)),
                task=self.name, difficulty=difficulty, prompt=question + PROMPT_END, trace=trace,
                answer=answer, trace_clean=clean, meta=json.dumps({"op": op, "a": a, "b": b}),
            ))
        return examples

    def parse_answer(self, completion: str) -> str | None:
        """The number in the final answer, canonical (``' 0132 '`` -> ``'132'``), or None. Symbolic: the whole
        answer must be one integer. Natural: the last number in the answer (module docstring).

        >>> ArithmeticTask().parse_answer("<think>..</think><answer> 1 32 </answer>")
        '132'
        >>> ArithmeticTask().parse_answer("<answer>12a</answer>") is None
        True
        >>> ArithmeticTask(ArithmeticConfig(render="natural")).parse_answer("<answer>17 + 25 = 42.</answer>")
        '42'
        """
        text = self.answer_text(completion)
        return None if text is None else self.rendering.parse(text)

    def answers_match(self, predicted: str, answer: str) -> bool:
        try:
            return int(predicted) == int(_WS.sub("", answer))
        except ValueError:
            return False
