"""Outcome rewards (Logic-RL defaults) by hand, multi-cycle format, and totality on arbitrary text (hypothesis)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rl_distill.tasks.arithmetic import ArithmeticTask
from rl_distill.tasks.base import Verdict
from rl_distill.tasks.format import TAGS, final_answer, is_well_formed, parse_cycles
from rl_distill.tasks.knights_knaves import KnightsKnavesTask
from rl_distill.tasks.registry import get_task
from rl_distill.tasks.rewards import OutcomeRewardConfig, outcome_reward, score_completion

KK = KnightsKnavesTask()


@pytest.mark.parametrize(("completion", "expected"), [
    ("<think>t</think><answer>Ab</answer>", 1.0 + 2.0),        # format ok, correct
    ("<think>t</think><answer>aB</answer>", 1.0 - 1.5),        # format ok, wrong
    ("<think>t</think><answer>?</answer>", 1.0 - 2.0),         # format ok, unparseable
    ("<answer>Ab</answer>", -1.0 - 2.0),                       # bad format: answer not judged (Logic-RL)
    ("", -1.0 - 2.0),
])
def test_logic_rl_defaults(completion: str, expected: float) -> None:
    assert outcome_reward(completion, "Ab", KK) == pytest.approx(expected)


def test_judging_answers_without_the_format() -> None:
    cfg = OutcomeRewardConfig(answer_requires_format=False)
    score = score_completion("<answer>Ab</answer>", "Ab", KK, cfg)
    assert (score.format_ok, score.verdict, score.total) == (False, Verdict.CORRECT, -1.0 + 2.0)
    # the verdict is reported even when the reward ignores it
    assert score_completion("<answer>Ab</answer>", "Ab", KK).verdict is Verdict.CORRECT


def test_several_cycles_last_answer_counts() -> None:
    text = "<think>first try</think><answer>aB</answer><think>wait, recheck</think><answer>Ab</answer>"
    assert outcome_reward(text, "Ab", KK) == 3.0
    assert outcome_reward(text, "Ab", KK, OutcomeRewardConfig(max_cycles=1)) == -1.0 - 2.0


def test_custom_values() -> None:
    cfg = OutcomeRewardConfig(format_ok=0.0, format_bad=0.0, answer_correct=1.0, answer_wrong=0.0,
                              answer_unparseable=0.0)
    assert outcome_reward("<think>t</think><answer>Ab</answer>", "Ab", KK, cfg) == 1.0
    assert outcome_reward("<think>t</think><answer>AB</answer>", "Ab", KK, cfg) == 0.0


_PIECES = st.one_of(st.sampled_from(TAGS), st.text(max_size=12), st.sampled_from(["Ab", "132", " ", "\n", "1/2"]))
_TEXT = st.one_of(st.text(max_size=200), st.lists(_PIECES, max_size=12).map("".join))


@pytest.fixture(scope="module")
def jsonl_task(tmp_path_factory: pytest.TempPathFactory):
    path: Path = tmp_path_factory.mktemp("jsonl") / "data.jsonl"
    path.write_text(json.dumps({"question": "q", "answer": "1/2"}) + "\n")
    return get_task("jsonl", data_files=[str(path)])


@settings(max_examples=300, deadline=None)
@given(text=_TEXT)
def test_format_functions_are_total(text: str) -> None:
    cycles = parse_cycles(text)
    assert isinstance(cycles, list)
    assert isinstance(is_well_formed(text), bool)
    answer = final_answer(text)
    assert answer is None or isinstance(answer, str)


@settings(max_examples=200, deadline=None)
@given(text=_TEXT)
def test_procedural_verifiers_never_raise(text: str) -> None:
    for task, answer in ((KK, "AbC"), (ArithmeticTask(), "132")):
        assert task.verify(text, answer) in set(Verdict)
        assert isinstance(outcome_reward(text, answer, task), float)


@settings(max_examples=60, deadline=None)
@given(text=_TEXT)
def test_math_verifier_never_raises(jsonl_task, text: str) -> None:
    assert jsonl_task.verify(text, "\\frac{1}{2}") in set(Verdict)
    assert isinstance(outcome_reward(text, "\\frac{1}{2}", jsonl_task), float)
