"""The shared char-level tokenizer: layout, round trip on every task's text, save/load, fast token counts."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from transformers import AutoTokenizer

from rl_distill.curation.curation import token_length_expr, token_lengths
from rl_distill.models.tokenizer import SPECIAL_TOKENS, alphabet_for, build_tokenizer, char_level_added_tokens
from rl_distill.tasks.format import TAGS
from rl_distill.tasks.registry import get_task


@pytest.fixture(scope="module")
def jsonl_rows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tok") / "data.jsonl"
    rows = [{"question": "Natalia sold 48 clips in April; how many in May?", "answer": "48 / 2 = 24\n#### 24"},
            {"question": "Compute $\\frac{1}{2} + \\frac{1}{4}$.", "answer": "$\\boxed{\\frac{3}{4}}$"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


@pytest.fixture(scope="module")
def tasks(jsonl_rows: Path) -> list:
    return [get_task("knights_knaves"), get_task("knights_knaves", max_depth=2), get_task("arithmetic"),
            get_task("jsonl", data_files=[str(jsonl_rows)])]


def _texts(tasks: list) -> list[str]:
    texts = []
    for task in tasks:
        difficulties = (1,) if task.name == "jsonl" else (2, 3) if task.name == "knights_knaves" else (1, 3)
        for difficulty in difficulties:
            texts += [ex.prompt + ex.trace for ex in task.generate(40, difficulty, seed=0, self_correction_rate=0.2)]
    return texts


def test_layout_specials_then_tags_then_sorted_chars() -> None:
    tok = build_tokenizer("ba")
    vocab = tok.get_vocab()
    assert [vocab[t] for t in SPECIAL_TOKENS] == [0, 1, 2, 3]
    assert [vocab[t] for t in TAGS] == [4, 5, 6, 7]
    assert (vocab["a"], vocab["b"]) == (8, 9)
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    assert tok.padding_side == "left"


def test_tags_are_single_tokens_and_bos_is_prepended() -> None:
    tok = build_tokenizer("Ab")
    ids = tok("A<think>b</think><answer>A</answer>")["input_ids"]
    # <bos> A <think> b </think> <answer> A </answer>
    assert ids == [1, 8, 4, 9, 5, 6, 8, 7]
    assert tok("Ab", add_special_tokens=False)["input_ids"] == [8, 9]


def test_round_trip_on_every_task(tasks: list, tmp_path: Path) -> None:
    tok = build_tokenizer(alphabet_for(tasks))
    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert loaded.get_vocab() == tok.get_vocab()
    for text in _texts(tasks):
        ids = tok(text)["input_ids"]
        assert tok.unk_token_id not in ids, text
        assert loaded(text)["input_ids"] == ids
        # skip_special_tokens drops <bos> but keeps the tags (they are not special)
        assert loaded.decode(ids, skip_special_tokens=True) == text


def test_unknown_characters_become_unk() -> None:
    tok = build_tokenizer("ab")
    assert tok("aéb", add_special_tokens=False)["input_ids"] == [8, tok.unk_token_id, 9]


def test_left_padding_batch() -> None:
    tok = build_tokenizer("ab")
    batch = tok(["a", "abb"], padding=True)
    assert batch["input_ids"] == [[0, 0, 1, 8], [1, 8, 9, 9]]
    assert batch["attention_mask"] == [[0, 0, 1, 1], [1, 1, 1, 1]]


def test_fast_token_count_equals_encoding(tasks: list, tmp_path: Path) -> None:
    tok = build_tokenizer(alphabet_for(tasks))
    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    added = char_level_added_tokens(loaded)
    assert added == (*SPECIAL_TOKENS, *TAGS)
    texts = _texts(tasks) + ["<pad><eos>x", "", "日本<think>"]
    fast = pl.DataFrame({"t": texts}).select(token_length_expr("t", added))["t_tokens"].to_list()
    assert fast == token_lengths(loaded, texts)


def test_other_tokenizers_are_not_char_level() -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel({"<unk>": 0, "ab": 1}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    assert char_level_added_tokens(PreTrainedTokenizerFast(tokenizer_object=backend)) is None
    assert char_level_added_tokens(object()) is None
