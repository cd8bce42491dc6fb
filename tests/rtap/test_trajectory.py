"""M (first-correct cycle) and truncation on hand-built trajectories (R-TAP, arXiv 2603.02099, Sec. 3)."""

from __future__ import annotations

import pytest

from rl_distill.rtap.trajectory import (
    cycle_spans,
    ends_with_eos,
    first_correct_cycle,
    truncate_after,
    truncation_mask,
)

EOS = 2


@pytest.mark.parametrize(
    ("correct", "m"),
    [
        ([True, False, False, False], 1),  # right at once
        ([False, False, True, True], 3),  # first correct is cycle 3; the later correct one does not matter
        ([False, False, False, False], 4),  # none correct: M = T = 4
        ([False, False], 2),  # eos after 2 cycles, none correct: M over the cycles present
        ([False], 1),
    ],
)
def test_first_correct_cycle(correct: list[bool], m: int) -> None:
    assert first_correct_cycle(correct) == m


def test_first_correct_cycle_needs_a_cycle() -> None:
    with pytest.raises(ValueError, match="at least one cycle"):
        first_correct_cycle([])


def test_truncation_keeps_cycles_up_to_m() -> None:
    # cycles of 3, 2 and 4 tokens; cycle 2 is the first correct one -> keep 3 + 2 = 5 tokens.
    cycles = [[10, 11, 12], [20, 21], [30, 31, 32, 33]]
    ids, spans = truncate_after(cycles, m=2)
    assert ids == [10, 11, 12, 20, 21]
    assert spans == [(0, 3), (3, 5)]
    ids, spans = truncate_after(cycles, m=2, eos_id=EOS)
    assert ids == [10, 11, 12, 20, 21, EOS]  # eos after the kept cycles, outside every cycle span
    assert spans == [(0, 3), (3, 5)]


def test_truncation_mask_zero_after_cycle_m() -> None:
    # The same trajectory untruncated (9 tokens) in a 10-wide row: loss only on cycles 1..2 (first 5 tokens).
    assert truncation_mask([3, 2, 4], m=2, width=10).tolist() == [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    # M = T: every generated token counts, padding does not.
    assert truncation_mask([3, 2, 4], m=3, width=10).tolist() == [1] * 9 + [0]


def test_truncate_rejects_m_outside_the_present_cycles() -> None:
    with pytest.raises(ValueError, match="outside"):
        truncate_after([[1], [2]], m=3)


def test_cycle_spans() -> None:
    # 0 + 2 = 2, 2 + 0 = 2 (an empty cycle), 2 + 1 = 3
    assert cycle_spans([2, 0, 1]) == [(0, 2), (2, 2), (2, 3)]


@pytest.mark.parametrize(
    ("stops", "m", "eos_after", "expected"),
    [
        (["answer", "answer", "answer"], 1, False, False),  # nothing sampled right after M: none appended
        (["answer"], 1, True, True),  # the policy's own eos right after cycle M = last (e.g. the peek)
        (["answer", "answer"], 2, True, True),
        (["answer", "answer"], 1, True, False),  # its eos followed cycle 2, which is cut
        (["answer", "eos"], 2, False, True),  # eos inside cycle M (malformed) is kept
        (["answer", "length"], 2, False, False),  # cycle M ran out of tokens: no eos invented
    ],
)
def test_ends_with_eos(stops: list[str], m: int, eos_after: bool, expected: bool) -> None:
    assert ends_with_eos(stops, m, eos_after) is expected
