"""Arithmetic: carry-by-carry traces by hand, every trace verifies, integer answers."""

from __future__ import annotations

import random

import pytest

from rl_distill.tasks.arithmetic import ArithmeticConfig, ArithmeticTask, arithmetic_think
from rl_distill.tasks.base import Verdict
from rl_distill.tasks.format import TAGS, is_well_formed

TASK = ArithmeticTask()


def test_addition_trace_by_hand() -> None:
    # 47 + 85: 7+5+0 = 12 (write 2, carry 1); 4+8+1 = 13 (write 3, carry 1) -> 132
    assert arithmetic_think(47, "+", 85) == "7+5+0=12 4+8+1=13 =132"


def test_multiplication_trace_by_hand() -> None:
    # 47 * 85: 47*5 = 235 (7*5 = 35, 4*5+3 = 23); 47*8 = 376 (7*8 = 56, 4*8+5 = 37);
    # 235 + 3760: 5+0 = 05, 3+6 = 09, 2+7 = 09, 0+3 = 03 -> 3995 (= 47 * 85)
    assert arithmetic_think(47, "*", 85) == (
        "7*5+0=35 4*5+3=23 =235\n"
        "7*8+0=56 4*8+5=37 =376\n"
        "235+3760: 5+0+0=05 3+6+0=09 2+7+0=09 0+3+0=03 =3995"
    )


def test_single_digit() -> None:
    assert arithmetic_think(7, "*", 5) == "7*5+0=35 =35"
    assert arithmetic_think(3, "+", 4) == "3+4+0=07 =7"


@pytest.mark.parametrize("digits", [1, 2, 3, 5])
def test_every_trace_verifies(digits: int) -> None:
    for ex in TASK.generate(100, digits, seed=digits, self_correction_rate=0.1):
        a, op, b = int(ex.prompt[:digits]), ex.prompt[digits], int(ex.prompt[digits + 1:-1])
        assert int(ex.answer) == (a + b if op == "+" else a * b)
        for trace in (ex.trace, ex.trace_clean):
            assert is_well_formed(trace)
            assert TASK.verify(trace, ex.answer) is Verdict.CORRECT
        text = ex.prompt + ex.trace
        for tag in TAGS:
            text = text.replace(tag, "")
        assert set(text) <= set(TASK.alphabet)


def test_self_correction_then_right_step() -> None:
    think = arithmetic_think(47, "+", 85, random.Random(0), rate=1.0)
    # every step: the wrong last digit (+1), "wait,", the right step
    assert think == "7+5+0=13 wait, 7+5+0=12 4+8+1=14 wait, 4+8+1=13 =132"


def test_ops_config() -> None:
    only_add = ArithmeticTask(ArithmeticConfig(ops=("+",)))
    assert all("+" in ex.prompt for ex in only_add.generate(30, 2, seed=0))


@pytest.mark.parametrize(("text", "verdict"), [
    ("132", Verdict.CORRECT), (" 1 32 ", Verdict.CORRECT), ("0132", Verdict.CORRECT), ("+132", Verdict.CORRECT),
    ("133", Verdict.WRONG), ("-132", Verdict.WRONG),
    ("13 2a", Verdict.UNPARSEABLE), ("", Verdict.UNPARSEABLE), ("1e2", Verdict.UNPARSEABLE),
    ("9" * 100, Verdict.UNPARSEABLE),  # absurdly long numbers are not parsed
])
def test_verifier_edge_cases(text: str, verdict: Verdict) -> None:
    assert TASK.verify(f"<think>x</think><answer>{text}</answer>", "132") is verdict
