"""Knights-and-Knaves, natural rendering: English statements, hand-computed traces, same puzzles as symbolic,
verifier and trace consistency on hand-written replies, config through the registry."""

from __future__ import annotations

import json

import pytest

from rl_distill.tasks.base import PROMPT_END, Verdict
from rl_distill.tasks.format import TAGS, is_well_formed
from rl_distill.tasks.knights_knaves import KnightsKnavesConfig, KnightsKnavesTask
from rl_distill.tasks.knights_knaves.logic import candidate_names, parse_puzzle, parse_statement
from rl_distill.tasks.knights_knaves.natural import case_lines, natural_trace, prompt_text, statement_text
from rl_distill.tasks.knights_knaves.roles import NAMES, canonical_roles, read_roles, refuted
from rl_distill.tasks.oops import count_oops
from rl_distill.tasks.registry import get_task
from rl_distill.typed_config import ConfigError

NATURAL = KnightsKnavesTask(KnightsKnavesConfig(render="natural"))
NESTED_NATURAL = KnightsKnavesTask(KnightsKnavesConfig(render="natural", max_depth=2))
ZO = ("Zoey", "Oliver")
ANSWER = "Zoey is a knight, and Oliver is a knave."

# The brief's puzzle: Zoey: "Oliver is a knave" (A:b); Oliver: "Zoey is a knight iff Oliver is a knight" (B:A~B).
#   Zoey knight, Oliver knight: "Oliver is a knave" is false, Zoey is a knight -> contradiction.
#   Zoey knight, Oliver knave: Zoey's statement true (fine); Oliver's: true iff false = false (fine for a knave).
REFERENCE = (
    "<think>Suppose Zoey is a knight and Oliver is a knight. Zoey says Oliver is a knave, which is false, but a knight "
    "tells the truth: contradiction.\n"
    "Suppose Zoey is a knight and Oliver is a knave. Zoey says Oliver is a knave, which is true, fine for a knight. "
    "Oliver's statement: true if and only if false, which is false, fine for a knave. No contradiction.</think>"
    "<answer>Zoey is a knight, and Oliver is a knave.</answer>"
)


def test_hand_computed_two_person_prompt_and_trace() -> None:
    statements = parse_puzzle("A:b;B:A~B")
    assert prompt_text(statements, ZO) == (
        "A very special island is inhabited only by knights and knaves. Knights always tell the truth, and knaves "
        "always lie. You meet 2 inhabitants: Zoey and Oliver. Zoey says, \"Oliver is a knave.\" Oliver says, "
        "\"Zoey is a knight if and only if Oliver is a knight.\" So who is a knight and who is a knave?"
    )
    assert natural_trace(statements, ZO, solution=1) == REFERENCE
    assert NATURAL.verify(REFERENCE, ANSWER) is Verdict.CORRECT
    assert NATURAL.trace_consistent(REFERENCE) is True


def test_hand_computed_compound_trace_follows_the_symbolic_order() -> None:
    # A: B&c; B: A~C; C: A^b (the symbolic test's puzzle, solution abC after 7 candidates), A=Ava, B=Leo, C=Mia.
    #   ABC: B&c = 1&0 = 0, Ava a knight -> x      ABc: 1&1 = 1 ok; A~C = 1~0 = 0, Leo a knight -> x
    #   AbC: 0&0 = 0 -> x                          Abc: 0&1 = 0 -> x
    #   aBC: 1&0 = 0 ok; 0~1 = 0, Leo a knight -> x      aBc: 1&1 = 1, Ava a knave -> x
    #   abC: 0&0 = 0 ok; 0~1 = 0 ok; A^b = exactly one of (0, 1) = 1 ok (Mia a knight)
    names = ("Ava", "Leo", "Mia")
    trace = natural_trace(parse_puzzle("A:B&c;B:A~C;C:A^b"), names, candidate_names(3).index("abC"))
    knight_false = "which is false, but a knight tells the truth: contradiction."
    assert trace == (
        "<think>Suppose Ava is a knight, Leo is a knight, and Mia is a knight. Ava's statement: true and false, "
        f"{knight_false}\n"
        "Suppose Ava is a knight, Leo is a knight, and Mia is a knave. Ava's statement: true and true, which is true, "
        f"fine for a knight. Leo's statement: true if and only if false, {knight_false}\n"
        "Suppose Ava is a knight, Leo is a knave, and Mia is a knight. Ava's statement: false and false, "
        f"{knight_false}\n"
        "Suppose Ava is a knight, Leo is a knave, and Mia is a knave. Ava's statement: false and true, "
        f"{knight_false}\n"
        "Suppose Ava is a knave, Leo is a knight, and Mia is a knight. Ava's statement: true and false, which is "
        f"false, fine for a knave. Leo's statement: false if and only if true, {knight_false}\n"
        "Suppose Ava is a knave, Leo is a knight, and Mia is a knave. Ava's statement: true and true, which is true, "
        "but a knave lies: contradiction.\n"
        "Suppose Ava is a knave, Leo is a knave, and Mia is a knight. Ava's statement: false and false, which is "
        "false, fine for a knave. Leo's statement: false if and only if true, which is false, fine for a knave. "
        "Mia's statement: exactly one of false, true, which is true, fine for a knight. No contradiction.</think>"
        "<answer>Ava is a knave, Leo is a knave, and Mia is a knight.</answer>"
    )


def test_nested_check_reduces_innermost_first() -> None:
    # Leo: "Ava is a knight and (Mia is a knave or Ava is a knave)" under all knights: 1 and (0 or 0) = 1 and 0 = 0.
    lines = case_lines(parse_puzzle("A:B;B:A&(c|a);C:b"), ("Ava", "Leo", "Mia"), candidate_names(3).index("ABc"))
    assert lines[0] == (
        "Suppose Ava is a knight, Leo is a knight, and Mia is a knight. Ava says Leo is a knight, which is true, fine "
        "for a knight. Leo's statement: true and (false or false), that is true and false, which is false, but a "
        "knight tells the truth: contradiction."
    )


@pytest.mark.parametrize(("symbolic", "english"), [
    ("b", "Oliver is a knave"),
    ("A", "Zoey is a knight"),
    ("!A", "Zoey is not a knight"),
    ("A&b", "Zoey is a knight and Oliver is a knave"),
    ("A|C", "Zoey is a knight or Ava is a knight"),
    ("a>B", "if Zoey is a knave then Oliver is a knight"),
    ("A~b", "Zoey is a knight if and only if Oliver is a knave"),
    ("A^b^C", "exactly one of the following is true: Zoey is a knight, Oliver is a knave, Ava is a knight"),
    ("!(A&b)", "it is not the case that (Zoey is a knight and Oliver is a knave)"),
    ("!(A^b)", "it is not the case that (exactly one of the following is true: Zoey is a knight, Oliver is a knave)"),
    ("A&(b|C)", "Zoey is a knight and (Oliver is a knave or Ava is a knight)"),
    ("(A~b)>c", "if (Zoey is a knight if and only if Oliver is a knave) then Ava is a knave"),
    ("(A>b)~(C&a)",
     "(if Zoey is a knight then Oliver is a knave) if and only if (Ava is a knight and Zoey is a knave)"),
    ("!((A|b)&c)", "it is not the case that ((Zoey is a knight or Oliver is a knave) and Ava is a knave)"),
])
def test_every_statement_form_in_english(symbolic: str, english: str) -> None:
    assert statement_text(parse_statement(symbolic), ("Zoey", "Oliver", "Ava")) == english


@pytest.mark.parametrize("depth", [1, 2])
@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_same_puzzles_as_the_symbolic_rendering(n: int, depth: int) -> None:
    symbolic = KnightsKnavesTask(KnightsKnavesConfig(max_depth=depth)).generate(20, n, seed=11)
    natural = KnightsKnavesTask(KnightsKnavesConfig(max_depth=depth, render="natural")).generate(20, n, seed=11)
    for sym, nat in zip(symbolic, natural, strict=True):
        meta = json.loads(nat.meta)
        names = tuple(meta["names"])
        assert meta["symbolic"] + PROMPT_END == sym.prompt  # the same statements ...
        assert nat.prompt == prompt_text(parse_puzzle(meta["symbolic"]), names) + PROMPT_END  # ... rendered in words
        assert meta["candidates_tried"] == json.loads(sym.meta)["candidates_tried"]
        expected = {name: "knight" if letter.isupper() else "knave" for name, letter in zip(names, sym.answer)}
        assert read_roles(nat.answer) == expected  # the same solution
        # the same case analysis: one line per tried candidate, each ending where the symbolic one does
        sym_lines = sym.trace.split("</think>")[0].removeprefix("<think>").split("\n")
        nat_lines = nat.trace.split("</think>")[0].removeprefix("<think>").split("\n")
        assert len(nat_lines) == len(sym_lines)
        for s_line, n_line in zip(sym_lines, nat_lines):
            assert s_line.endswith(" x") == n_line.endswith(": contradiction.") == refuted(n_line)
            assert len(s_line.split()) - 1 - s_line.endswith(" x") == n_line.count(", which is ")


@pytest.mark.parametrize(("task", "n", "count"), [
    (NATURAL, 2, 150), (NATURAL, 3, 80), (NATURAL, 4, 30), (NATURAL, 5, 12),
    (NESTED_NATURAL, 2, 80), (NESTED_NATURAL, 3, 40), (NESTED_NATURAL, 5, 8),
])
def test_every_natural_trace_verifies_and_is_consistent(task: KnightsKnavesTask, n: int, count: int) -> None:
    for seed in (0, 1):
        for ex in task.generate(count, n, seed=seed, self_correction_rate=0.15):
            for trace in (ex.trace, ex.trace_clean):
                assert is_well_formed(trace)
                assert task.verify(trace, ex.answer) is Verdict.CORRECT, trace
                assert task.trace_consistent(trace) is True, trace
            text = ex.prompt + ex.trace
            for tag in TAGS:
                text = text.replace(tag, "")
            assert set(text) <= set(task.alphabet)
            names = json.loads(ex.meta)["names"]
            assert len(set(names)) == n and set(names) <= set(NAMES)
            assert ex.prompt.endswith("So who is a knight and who is a knave?" + PROMPT_END)


def test_names_are_seeded_and_drawn_per_puzzle() -> None:
    assert len(set(NAMES)) == len(NAMES) >= 20
    first = NATURAL.generate(30, 3, seed=4)
    assert [e.prompt for e in first] == [e.prompt for e in NATURAL.generate(30, 3, seed=4)]
    assert len({tuple(json.loads(e.meta)["names"]) for e in first}) > 20  # not one fixed cast
    assert [e.prompt for e in NATURAL.generate(30, 3, seed=5)] != [e.prompt for e in first]
    # the correction rate changes neither the puzzles nor the names
    corrected = NATURAL.generate(30, 3, seed=4, self_correction_rate=0.5)
    assert [e.prompt for e in corrected] == [e.prompt for e in first]
    assert [e.trace_clean for e in corrected] == [e.trace for e in first]


def test_question_key_ignores_the_names() -> None:
    # One puzzle told with two casts is one question for dedupe and split disjointness (as in the symbolic form).
    examples = NATURAL.generate(400, 2, seed=0)
    keys = {NATURAL.question_key(e.prompt) for e in examples}
    puzzles = {json.loads(e.meta)["symbolic"] for e in examples}
    assert len(keys) == len(puzzles) < len({e.prompt for e in examples})
    one = prompt_text(parse_puzzle("A:b;B:A~B"), ("Zoey", "Oliver")) + PROMPT_END
    other = prompt_text(parse_puzzle("A:b;B:A~B"), ("Mia", "Leo")) + PROMPT_END
    swapped = prompt_text(parse_puzzle("A:B;B:A~B"), ("Mia", "Leo")) + PROMPT_END
    assert NATURAL.question_key(one) == NATURAL.question_key(other) != NATURAL.question_key(swapped)
    assert KnightsKnavesTask().question_key("A:b;B:a\n") == "A:b;B:a"  # symbolic: unchanged


def test_natural_self_corrections() -> None:
    examples = NATURAL.generate(40, 3, seed=3, self_correction_rate=0.3)
    corrected = [e for e in examples if e.trace != e.trace_clean]
    assert corrected
    for ex in corrected:
        assert count_oops(ex.trace) == ex.trace.count("wait,") > 0
        assert count_oops(ex.trace_clean) == 0
        # the wrong value comes first, then the right one with its verdict
        assert ", which is true, wait, which is false, " in ex.trace or ", which is false, wait, which is true, " \
            in ex.trace


@pytest.mark.parametrize(("reply", "verdict", "canonical"), [
    ("Zoey is a knight, and Oliver is a knave", Verdict.CORRECT, "Oliver=knave;Zoey=knight"),
    ("(1) Zoey is a knight (2) Oliver is a knave", Verdict.CORRECT, "Oliver=knave;Zoey=knight"),
    ("(1) Zoey is a knight\n(2) Oliver is a knave", Verdict.CORRECT, "Oliver=knave;Zoey=knight"),
    ("Zoey: knight; Oliver: knave", Verdict.CORRECT, "Oliver=knave;Zoey=knight"),
    ("Zoey is a Knight and Oliver is a Knave.", Verdict.CORRECT, "Oliver=knave;Zoey=knight"),
    ("Oliver is a knave.\nZoey is a knight.", Verdict.CORRECT, "Oliver=knave;Zoey=knight"),  # any order
    ("- **Zoey**: Knight\n- **Oliver**: Knave", Verdict.CORRECT, "Oliver=knave;Zoey=knight"),
    ("Knights: Zoey. Knaves: Oliver.", Verdict.CORRECT, "Oliver=knave;Zoey=knight"),  # roles first
    ("The knight is Zoey and the knave is Oliver.", Verdict.CORRECT, "Oliver=knave;Zoey=knight"),
    ("Zoey is a knight, not a knave, and Oliver isn't a knight.", Verdict.CORRECT, "Oliver=knave;Zoey=knight"),
    ("Oliver=knave;Zoey=knight", Verdict.CORRECT, "Oliver=knave;Zoey=knight"),  # the canonical form reads back
    ("zoey is a knight and oliver is a knave", Verdict.CORRECT, "Oliver=knave;Zoey=knight"),
    ("Zoey is a knave, and Oliver is a knight.", Verdict.WRONG, "Oliver=knight;Zoey=knave"),
    ("Zoey and Oliver are both knights.", Verdict.WRONG, "Oliver=knight;Zoey=knight"),  # plural: both
    ("Zoey is a knight.", Verdict.WRONG, "Zoey=knight"),  # one of two people: not correct
    ("So Zoey is a knight.", Verdict.WRONG, "Zoey=knight"),  # "So" is not a person
    ("Zoey is a knight, Oliver is a knave, and Ava is a knight.", Verdict.WRONG, "Ava=knight;Oliver=knave;Zoey=knight"),
    ("Zoey is a knight and Oliver is a knave. Oliver is a knight.", Verdict.UNPARSEABLE, None),  # two roles
    ("I cannot tell who is who.", Verdict.UNPARSEABLE, None),
    ("Zoey and Oliver.", Verdict.UNPARSEABLE, None),  # names without roles
    ("", Verdict.UNPARSEABLE, None),
])
def test_verifier_on_hand_written_replies(reply: str, verdict: Verdict, canonical: str | None) -> None:
    completion = f"<think>some reasoning</think><answer>{reply}</answer>"
    assert NATURAL.parse_answer(completion) == canonical
    assert NATURAL.verify(completion, ANSWER) is verdict


def test_no_answer_block_is_unparseable() -> None:
    assert NATURAL.verify(ANSWER, ANSWER) is Verdict.UNPARSEABLE
    assert NATURAL.verify(f"<think>{ANSWER}</think>", ANSWER) is Verdict.UNPARSEABLE


def test_answers_match_compares_every_person() -> None:
    assert NATURAL.answers_match("Oliver=knave;Zoey=knight", ANSWER)
    assert not NATURAL.answers_match("Zoey=knight", ANSWER)
    assert not NATURAL.answers_match("Oliver=knave;Zoey=knight", "Zoey is a knight.")
    assert not NATURAL.answers_match("nothing", "nothing")  # neither reads: not a match
    assert canonical_roles("Ava: knave\nLeo: knight\nMia: knave") == "Ava=knave;Leo=knight;Mia=knave"


_KK_LINE = "Suppose Zoey is a knight and Oliver is a knight. Zoey says Oliver is a knave, which is false, but a " \
           "knight tells the truth: contradiction."
_KN_LINE = "Suppose Zoey is a knight and Oliver is a knave. Zoey says Oliver is a knave, which is true, fine for a " \
           "knight. Oliver's statement: true if and only if false, which is false, fine for a knave. No contradiction."


@pytest.mark.parametrize(("reply", "reached", "consistent"), [
    (REFERENCE, "Oliver=knave;Zoey=knight", True),  # the reference shape
    (f"<think>{_KK_LINE}\n{_KN_LINE}</think><answer>Zoey is a knave, and Oliver is a knight.</answer>",
     "Oliver=knave;Zoey=knight", False),  # the answer contradicts the trace
    (f"<think>{_KK_LINE}</think><answer>{ANSWER}</answer>", None, False),  # every candidate refuted
    (f"<think></think><answer>{ANSWER}</answer>", None, False),  # no trace: a guess
    (f"<think>{_KK_LINE}\n{_KN_LINE}</think><answer>Zoey is a knight.</answer>",
     "Oliver=knave;Zoey=knight", False),  # the answer names one person only
    ("<think>Assume Zoey is a knight and Oliver is a knave. Then Zoey's claim holds and Oliver's claim is false, "
     "which does not lead to a contradiction.</think><answer>(1) Zoey is a knight (2) Oliver is a knave</answer>",
     "Oliver=knave;Zoey=knight", True),  # a model's own wording
    ("<think>Suppose Zoey is a knight and Oliver is a knave. Zoey says Oliver is a knave, which is false, wait, "
     "which is true, fine for a knight. Oliver's statement: true if and only if false, which is false, fine for a "
     "knave. No contradiction.</think><answer>Zoey is a knight, and Oliver is a knave.</answer>",
     "Oliver=knave;Zoey=knight", True),  # a self-correction
    (f"<think>{_KN_LINE}</think><answer>{ANSWER}</answer><think>{_KK_LINE}</think><answer>{ANSWER}</answer>",
     None, False),  # only the final answer's cycle counts
])
def test_natural_trace_answer_and_consistency(reply: str, reached: str | None, consistent: bool) -> None:
    assert NATURAL.trace_answer(reply) == reached
    assert NATURAL.trace_consistent(reply) is consistent


def test_symbolic_default_is_unchanged() -> None:
    default = KnightsKnavesTask()
    assert default.config.render == "symbolic"
    symbolic_chars = "".join(sorted(set("ABCDEFGHabcdefgh:;&|>~^!()=01 \nxwait,")))  # as before ``render``
    assert default.alphabet == KnightsKnavesTask.alphabet == symbolic_chars
    assert {"Z", "y", '"', "'", ".", "?"} <= set(NATURAL.alphabet)
    assert KnightsKnavesTask.has_checkable_trace is True
    assert default.parse_answer("<answer>Zoey is a knight</answer>") is None  # symbolic stays strict


def test_render_through_the_registry() -> None:
    params = {"render": "natural", "max_depth": 2}  # as parsed from YAML
    task = get_task("knights_knaves", **params)
    assert task.config == KnightsKnavesConfig(render="natural", max_depth=2)
    assert task.alphabet == NATURAL.alphabet
    ex = task.generate(1, 2, seed=0)[0]
    assert ex.prompt.startswith("A very special island")
    with pytest.raises(ConfigError, match=r"task 'knights_knaves' params: render='english' is not valid\. "
                                          r"Valid: symbolic, natural\."):
        get_task("knights_knaves", render="english")
    with pytest.raises(ConfigError, match="expected a string"):
        get_task("knights_knaves", render=1)
