"""The Oops lexicon (method.md section 5): case-insensitive whole-word counts."""

from __future__ import annotations

from rl_distill.tasks.corrections import CORRECTION_MARKER
from rl_distill.tasks.oops import OOPS_LEXICON, count_oops


def test_lexicon_is_the_documented_list() -> None:
    assert OOPS_LEXICON == ("oops", "wait", "hmm", "let me try again", "let me re-check", "let me reconsider",
                            "i made a mistake", "actually")


def test_counts_each_phrase_once_per_occurrence() -> None:
    # wait(1) + Wait(1) + Let me try again(1) + I made a mistake(1) + hmm(1) = 5
    text = "A:b=1 wait, A:b=0. Wait. Let me try again: I made a mistake, hmm"
    assert count_oops(text) == 5


def test_no_partial_words() -> None:
    assert count_oops("awaited, actuallyx, hmmm, whoops") == 0
    assert count_oops("") == 0


def test_the_trace_correction_marker_is_counted() -> None:
    assert count_oops(f"x {CORRECTION_MARKER} y {CORRECTION_MARKER} z") == 2
