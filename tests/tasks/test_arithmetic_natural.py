"""Arithmetic, natural rendering: worked solutions by hand, same problems as symbolic, lenient answer reading."""

from __future__ import annotations

import json
import random

import pytest

from rl_distill.tasks.arithmetic import ArithmeticConfig, ArithmeticTask, natural_think
from rl_distill.tasks.base import PROMPT_END, Verdict
from rl_distill.tasks.format import TAGS, is_well_formed
from rl_distill.tasks.oops import count_oops
from rl_distill.tasks.registry import get_task
from rl_distill.typed_config import ConfigError

NATURAL = ArithmeticTask(ArithmeticConfig(render="natural"))
SYMBOLIC = ArithmeticTask()


@pytest.mark.parametrize(("a", "op", "b", "think"), [
    # 47 + 85: 7+5 = 12 (write 2, carry 1); 4+8+1 = 13, the last column writes 13 -> 132
    (47, "+", 85, "Add the digits from right to left: 7 + 5 = 12, write 2, carry 1; 4 + 8 + 1 = 13, write 13. "
                  "So 47 + 85 = 132."),
    # 17 + 25: 7+5 = 12 (write 2, carry 1); 1+2+1 = 4 -> 42
    (17, "+", 25, "Add the digits from right to left: 7 + 5 = 12, write 2, carry 1; 1 + 2 + 1 = 4, write 4. "
                  "So 17 + 25 = 42."),
    # 99 + 99: 9+9 = 18 (write 8, carry 1); 9+9+1 = 19 -> 198
    (99, "+", 99, "Add the digits from right to left: 9 + 9 = 18, write 8, carry 1; 9 + 9 + 1 = 19, write 19. "
                  "So 99 + 99 = 198."),
    # 47 * 85 = 47*5 + 47*80 = 235 + 3760 = 3995
    (47, "*", 85, "Multiply by each digit of 85 from the right: 47 * 5 = 235; 47 * 8 = 376, so 47 * 80 = 3760. "
                  "Add: 235 + 3760 = 3995. So 47 * 85 = 3995."),
    # 123 * 405 = 123*5 + 123*400 = 615 + 49200 = 49815 (the 0 digit adds nothing and is skipped)
    (123, "*", 405, "Multiply by each digit of 405 from the right: 123 * 5 = 615; 123 * 4 = 492, so 123 * 400 = "
                    "49200. Add: 615 + 49200 = 49815. So 123 * 405 = 49815."),
    # 12 * 20 = 12*2*10 = 240 (one partial product, nothing to add)
    (12, "*", 20, "Multiply by each digit of 20 from the right: 12 * 2 = 24, so 12 * 20 = 240. So 12 * 20 = 240."),
    (7, "*", 5, "7 * 5 = 35."),
    (3, "+", 4, "3 + 4 = 7."),
    (0, "*", 9, "0 * 9 = 0."),
])
def test_worked_solutions_by_hand(a: int, op: str, b: int, think: str) -> None:
    assert natural_think(a, op, b) == think


def test_self_correction_then_right_step() -> None:
    # every step: the wrong last digit (+1), "wait,", the right step
    assert natural_think(47, "+", 85, random.Random(0), rate=1.0) == (
        "Add the digits from right to left: 7 + 5 = 13, wait, 7 + 5 = 12, write 2, carry 1; 4 + 8 + 1 = 14, wait, "
        "4 + 8 + 1 = 13, write 13. So 47 + 85 = 132."
    )


def test_same_problems_as_symbolic_and_the_prompt() -> None:
    symbolic = SYMBOLIC.generate(50, 3, seed=9)
    natural = NATURAL.generate(50, 3, seed=9)
    for sym, nat in zip(symbolic, natural, strict=True):
        assert nat.meta == sym.meta and nat.answer == sym.answer
        meta = json.loads(nat.meta)
        assert nat.prompt == f"What is {meta['a']} {meta['op']} {meta['b']}?" + PROMPT_END


@pytest.mark.parametrize("digits", [1, 2, 3, 5, 8])
def test_every_natural_trace_verifies(digits: int) -> None:
    for ex in NATURAL.generate(80, digits, seed=digits, self_correction_rate=0.1):
        meta = json.loads(ex.meta)
        assert int(ex.answer) == (meta["a"] + meta["b"] if meta["op"] == "+" else meta["a"] * meta["b"])
        for trace in (ex.trace, ex.trace_clean):
            assert is_well_formed(trace)
            assert NATURAL.verify(trace, ex.answer) is Verdict.CORRECT
            assert trace.endswith(f" = {ex.answer}.</think><answer>{ex.answer}</answer>")
        assert count_oops(ex.trace_clean) == 0
        text = ex.prompt + ex.trace
        for tag in TAGS:
            text = text.replace(tag, "")
        assert set(text) <= set(NATURAL.alphabet)


@pytest.mark.parametrize(("reply", "answer", "verdict"), [
    ("42", "42", Verdict.CORRECT),
    ("42.", "42", Verdict.CORRECT),
    ("The answer is 42.", "42", Verdict.CORRECT),
    ("17 + 25 = 42", "42", Verdict.CORRECT),           # the last number counts, not the operands
    ("**42**", "42", Verdict.CORRECT),
    ("\\boxed{42}", "42", Verdict.CORRECT),
    ("42.0", "42", Verdict.CORRECT),                   # an integral decimal
    (" 042 ", "42", Verdict.CORRECT),
    ("1,234", "1234", Verdict.CORRECT),                # thousands separators
    ("The product is 1,234,567.", "1234567", Verdict.CORRECT),
    ("-3", "-3", Verdict.CORRECT),
    ("43", "42", Verdict.WRONG),
    ("17 + 25 = 43", "42", Verdict.WRONG),
    ("42 or maybe 41", "42", Verdict.WRONG),           # the last number is the answer
    ("41.5", "42", Verdict.WRONG),                     # a non-integer is a wrong number, not "5"
    ("-42", "42", Verdict.WRONG),
    ("1,243", "1234", Verdict.WRONG),
    ("12,34", "1234", Verdict.UNPARSEABLE),            # malformed separators: no number
    ("forty-two", "42", Verdict.UNPARSEABLE),
    ("", "42", Verdict.UNPARSEABLE),
    ("9" * 100, "42", Verdict.UNPARSEABLE),            # absurdly long numbers are not parsed
])
def test_natural_verifier_on_hand_written_replies(reply: str, answer: str, verdict: Verdict) -> None:
    assert NATURAL.verify(f"<think>x</think><answer>{reply}</answer>", answer) is verdict


def test_symbolic_parse_stays_strict() -> None:
    for reply in ("The answer is 42.", "17 + 25 = 42", "42.", "1,234"):
        assert SYMBOLIC.parse_answer(f"<answer>{reply}</answer>") is None
    assert NATURAL.parse_answer("<answer>The answer is 1,234.</answer>") == "1234"
    assert NATURAL.parse_answer("<think>The answer is 42</think>") is None  # no answer block


def test_render_through_the_registry() -> None:
    task = get_task("arithmetic", **{"render": "natural", "ops": ["*"]})  # as parsed from YAML
    assert task.config == ArithmeticConfig(ops=("*",), render="natural")
    assert task.alphabet == NATURAL.alphabet != SYMBOLIC.alphabet
    assert task.generate(1, 2, seed=0)[0].prompt.startswith("What is ")
    assert ArithmeticTask().config.render == "symbolic"
    with pytest.raises(ConfigError, match=r"task 'arithmetic' params: render='words' is not valid\. "
                                          r"Valid: symbolic, natural\."):
        get_task("arithmetic", render="words")
