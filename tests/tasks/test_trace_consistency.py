"""Trace consistency: the final answer equals the candidate the reply's own K&K trace accepted."""

from __future__ import annotations

import pytest

from rl_distill.tasks.arithmetic import ArithmeticTask
from rl_distill.tasks.knights_knaves.task import KnightsKnavesTask

KK = KnightsKnavesTask()


@pytest.mark.parametrize(("reply", "expected"), [
    ("<think>AB A:b0 x\nAb A:b1 b:a0</think><answer>Ab</answer>", True),  # the reference shape
    ("<think>AB A:b0 x\nAb A:b1 b:a0</think><answer>AB</answer>", False),  # answer contradicts the trace
    ("<think></think><answer>Ab</answer>", False),  # no trace: a guess
    ("<think>AB A:b0 x</think><answer>Ab</answer>", False),  # the trace refuted every candidate it tried
    ("<think>AB A:b0 x\nAb A:b1 b:a0</think><answer>A</answer>", False),  # unparseable answer
    ("<think>AB A:b0 x\nAb A:b1 wait, A:b1 b:a0</think><answer>Ab</answer>", True),  # a self-correction
])
def test_kk_trace_consistency(reply: str, expected: bool) -> None:
    assert KK.trace_consistent(reply) is expected


def test_generated_reference_traces_are_consistent() -> None:
    for ex in KK.generate(20, difficulty=3, seed=0):
        assert KK.trace_consistent(ex.trace) is True, ex.trace


def test_tasks_without_a_checkable_trace_report_none() -> None:
    assert ArithmeticTask().trace_consistent("<think>1+1=2</think><answer>2</answer>") is None
