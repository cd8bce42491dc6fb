"""The think-answer format: cycles, the format check, the final answer (edge cases by hand)."""

from __future__ import annotations

import pytest

from rl_distill.tasks.format import Cycle, final_answer, is_well_formed, parse_cycles

ONE = "<think>AB A:b0 x\nAb A:b1 b:a0</think><answer>Ab</answer>"


def test_single_cycle_is_well_formed() -> None:
    assert parse_cycles(ONE) == [Cycle(think="AB A:b0 x\nAb A:b1 b:a0", answer="Ab", well_formed=True)]
    assert is_well_formed(ONE)
    assert final_answer(ONE) == "Ab"


def test_several_cycles_with_whitespace_between() -> None:
    text = "  <think>a</think> <answer>1</answer>\n<think>b</think>\n<answer>2</answer>\n"
    cycles = parse_cycles(text)
    assert [(c.think, c.answer, c.well_formed) for c in cycles] == [("a", "1", True), ("b", "2", True)]
    assert is_well_formed(text)
    assert is_well_formed(text, max_cycles=2)
    assert not is_well_formed(text, max_cycles=1)
    assert final_answer(text) == "2"  # the last answer counts


@pytest.mark.parametrize("text", [
    "",                                                    # nothing
    "Ab",                                                  # no tags
    "<think>x</think>",                                    # no answer
    "<answer>Ab</answer>",                                 # no think
    "<think>x</think><answer>Ab",                          # unclosed answer
    "<think>x<answer>Ab</answer>",                         # unclosed think
    "<think>x</think><answer>Ab</answer> extra",           # trailing text
    "pre <think>x</think><answer>Ab</answer>",             # leading text
    "<think>x</think>junk<answer>Ab</answer>",             # text between think and answer
    "<think><think>x</think><answer>Ab</answer>",          # nested open tag
    "<think>x</think><answer>A<answer>b</answer>",         # tag inside the answer
    "<think>x</think><answer>Ab</answer></answer>",        # stray close tag
])
def test_malformed_texts_fail_the_format_check(text: str) -> None:
    assert not is_well_formed(text)


def test_final_answer_is_found_even_when_the_format_is_bad() -> None:
    assert final_answer("junk <answer> AbC </answer> junk") == "AbC"
    assert final_answer("<think>x</think><answer>   </answer>") is None  # empty answer
    assert final_answer("<answer>unclosed") is None
    assert final_answer("no tags at all") is None


def test_stray_text_becomes_a_malformed_cycle() -> None:
    cycles = parse_cycles("<think>a</think><answer>1</answer> oops")
    assert [c.well_formed for c in cycles] == [True, False]
    assert cycles[1].think == "oops" and cycles[1].answer is None
