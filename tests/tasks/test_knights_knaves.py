"""Knights-and-Knaves: unique solutions (brute force), traces that verify, notation, verifier edge cases."""

from __future__ import annotations

import itertools

import pytest

from rl_distill.tasks.base import PROMPT_END, Verdict
from rl_distill.tasks.format import TAGS, is_well_formed
from rl_distill.tasks.knights_knaves import KnightsKnavesConfig, KnightsKnavesTask
from rl_distill.tasks.knights_knaves.logic import (
    candidate_names,
    evaluate,
    parse_puzzle,
    parse_statement,
    render,
    truth_mask,
)
from rl_distill.tasks.knights_knaves.trace import write_trace
from rl_distill.tasks.oops import count_oops

TASK = KnightsKnavesTask()
NESTED = KnightsKnavesTask(KnightsKnavesConfig(max_depth=2))


def _holds(node, knights: tuple[bool, ...]) -> bool:
    """An evaluator written independently of the package's (the test's own brute force)."""
    kind = node[0]
    if kind == "lit":
        return knights[node[1]] is node[2]
    if kind == "not":
        return not _holds(node[1], knights)
    if kind == "one":
        return [_holds(c, knights) for c in node[1]].count(True) == 1
    a, b = _holds(node[1], knights), _holds(node[2], knights)
    return {"and": a and b, "or": a or b, "imp": b or not a, "iff": a is b}[kind]


def _solutions(prompt: str) -> list[str]:
    statements = parse_puzzle(prompt.removesuffix(PROMPT_END))
    n = len(statements)
    found = []
    for knights in itertools.product([True, False], repeat=n):
        if all(_holds(s, knights) is knights[i] for i, s in enumerate(statements)):
            found.append("".join("ABCDEFGH"[i] if k else "abcdefgh"[i] for i, k in enumerate(knights)))
    return found


@pytest.mark.parametrize(("task", "n", "count"), [
    (TASK, 2, 300), (TASK, 3, 300), (TASK, 4, 150), (TASK, 5, 60), (TASK, 6, 30), (TASK, 8, 5),
    (NESTED, 3, 200),
])
def test_every_generated_puzzle_has_exactly_one_solution_and_a_verified_trace(task, n, count) -> None:
    for ex in task.generate(count, n, seed=7, self_correction_rate=0.1):
        assert _solutions(ex.prompt) == [ex.answer], ex.prompt
        for trace in (ex.trace, ex.trace_clean):
            assert is_well_formed(trace)
            assert task.verify(trace, ex.answer) is Verdict.CORRECT
        text = ex.prompt + ex.trace
        for tag in TAGS:
            text = text.replace(tag, "")
        assert set(text) <= set(task.alphabet)


def test_hand_computed_two_person_trace() -> None:
    # A: "B is a knave"; B: "A is a knave". Candidates in order AB, Ab, aB, ab:
    #   AB: A (knight) says b; B is a knight so b=0; a knight needs 1 -> contradiction.
    #   Ab: A says b -> 1, fine; b (knave) says a -> A is a knight so a=0; a knave needs 0 -> consistent.
    # (aB is also consistent: this puzzle has two solutions, so the trace just shows the mechanics.)
    statements = parse_puzzle("A:b;B:a")
    trace = write_trace(statements, 2, solution=1)
    assert trace == "<think>AB A:b0 x\nAb A:b1 b:a0</think><answer>Ab</answer>"


def test_hand_computed_compound_trace() -> None:
    # A: "B is a knight and C is a knave" (B&c); B: "A iff C" (A~C); C: "exactly one of: A is a knight, B is a
    # knave" (A^b). By hand, candidate by candidate (a knight's statement must be 1, a knave's 0):
    #   ABC: B&c = 1&0 = 0, A is a knight -> x       ABc: B&c = 1&1 = 1 ok; A~C = 1~0 = 0, B knight -> x
    #   AbC: B&c = 0&0 = 0 -> x                      Abc: B&c = 0&1 = 0 -> x
    #   aBC: 1&0 = 0 ok (knave); A~C = 0~1 = 0, B knight -> x      aBc: 1&1 = 1, a knave -> x
    #   abC: 0&0 = 0 ok; 0~1 = 0 ok (knave); A^b = 0^1 = 1 ok (C knight) -> the solution
    assert _solutions("A:B&c;B:A~C;C:A^b") == ["abC"]
    trace = write_trace(parse_puzzle("A:B&c;B:A~C;C:A^b"), 3, solution=candidate_names(3).index("abC"))
    assert trace == (
        "<think>ABC A:B1&c0=0 x\n"
        "ABc A:B1&c1=1 B:A1~C0=0 x\n"
        "AbC A:B0&c0=0 x\n"
        "Abc A:B0&c1=0 x\n"
        "aBC a:B1&c0=0 B:A0~C1=0 x\n"
        "aBc a:B1&c1=1 x\n"
        "abC a:B0&c0=0 b:A0~C1=0 C:A0^b1=1</think><answer>abC</answer>"
    )


def test_nested_statement_check_reduces_innermost_first() -> None:
    # B: "A is a knight and (C is a knave or A is a knave)" under ABC: A1&(c0|a0) = 1&0 = 0 -> B (knight) x.
    trace = write_trace(parse_puzzle("A:B;B:A&(c|a);C:b"), 3, solution=candidate_names(3).index("ABc"))
    assert trace.startswith("<think>ABC A:B1 B:A1&(c0|a0)=1&0=0 x\n")


def test_candidate_order_and_answer_format() -> None:
    assert candidate_names(2) == ("AB", "Ab", "aB", "ab")
    assert candidate_names(3)[:3] == ("ABC", "ABc", "AbC")


@pytest.mark.parametrize("text", ["A", "b", "A&c", "A|b", "a>B", "A~b", "A^b^C", "!(A&b)", "A&(b|C)",
                                  "(A~b)>c", "!(A^B^c)"])
def test_render_parse_round_trip(text: str) -> None:
    assert render(parse_statement(text)) == text


def test_truth_tables_match_the_slow_evaluator() -> None:
    # Fast twin (bitmask over all 2^n assignments) against the per-assignment evaluator.
    n = 3
    for text in ["A", "b", "A&c", "A|b", "a>B", "A~b", "A^b^C", "!(A&b)", "A&(b|C)", "(A~b)>c"]:
        node = parse_statement(text)
        mask = truth_mask(node, n)
        for k, name in enumerate(candidate_names(n)):
            knights = tuple(c.isupper() for c in name)
            assert bool(mask >> k & 1) == evaluate(node, knights) == _holds(node, knights), (text, name)


def test_one_is_exactly_one_not_xor() -> None:
    # A^B^C with all three knights: xor would be 1 (odd count), "exactly one" is 0.
    assert evaluate(parse_statement("A^B^C"), (True, True, True)) is False


def test_same_seed_same_puzzles_and_rate_does_not_change_them() -> None:
    a = TASK.generate(20, 3, seed=1)
    b = TASK.generate(20, 3, seed=1, self_correction_rate=0.5)
    assert [e.prompt for e in a] == [e.prompt for e in b]
    assert [e.trace for e in a] == [e.trace_clean for e in b]
    assert [e.prompt for e in TASK.generate(20, 3, seed=2)] != [e.prompt for e in a]


def test_self_corrections_are_marked_and_counted() -> None:
    examples = TASK.generate(50, 3, seed=3, self_correction_rate=0.3)
    corrected = [e for e in examples if e.trace != e.trace_clean]
    assert corrected, "rate 0.3 over ~300 checks must correct something"
    for ex in corrected:
        assert count_oops(ex.trace) == ex.trace.count("wait,") > 0
        assert count_oops(ex.trace_clean) == 0
        assert TASK.verify(ex.trace, ex.answer) is Verdict.CORRECT


@pytest.mark.parametrize(("answer_text", "verdict"), [
    ("AbC", Verdict.CORRECT),
    (" A b C ", Verdict.CORRECT),       # whitespace ignored
    ("A,b,C", Verdict.CORRECT),         # commas ignored
    ("Abc", Verdict.WRONG),
    ("ABC", Verdict.WRONG),
    ("bAC", Verdict.WRONG),             # wrong order is wrong, not unparseable
    ("Ab", Verdict.WRONG),              # too few people
    ("AaC", Verdict.UNPARSEABLE),       # A named twice
    ("A=knight", Verdict.UNPARSEABLE),
    ("", Verdict.UNPARSEABLE),
    ("AbCZ", Verdict.UNPARSEABLE),
])
def test_verifier_edge_cases(answer_text: str, verdict: Verdict) -> None:
    assert TASK.verify(f"<think>...</think><answer>{answer_text}</answer>", "AbC") is verdict


def test_no_answer_block_is_unparseable() -> None:
    assert TASK.verify("AbC", "AbC") is Verdict.UNPARSEABLE
    assert TASK.verify("<think>AbC</think>", "AbC") is Verdict.UNPARSEABLE


def test_difficulty_out_of_range() -> None:
    with pytest.raises(ValueError, match="2..8"):
        TASK.generate(1, 9, seed=0)
    with pytest.raises(TypeError, match="unknown option"):
        TASK.generate(1, 2, seed=0, temperature=1.0)
