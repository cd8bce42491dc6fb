"""Summary, comparison and markdown tables from hand-built per-sample frames (evaluation/summary.py)."""

from __future__ import annotations

import polars as pl
import pytest

from rl_distill.evaluation.samples import SAMPLE_SCHEMA
from rl_distill.evaluation.summary import (
    SUMMARY_SCHEMA,
    comparison_table,
    difficulty_table,
    summarize,
    to_markdown,
)
from rl_distill.tasks.oops import OOPS_LEXICON


def _row(model, pid, level, decoding, idx, correct, verdict=None, fmt=True, tokens=10, cycles=1, oops=0,
         consistent=None):
    verdict = verdict or ("correct" if correct else "wrong")
    return (model, pid, level, decoding, idx, correct, verdict, fmt, tokens, cycles, oops, consistent)


@pytest.fixture
def frame() -> pl.DataFrame:
    rows = [
        # model a, problem p1 (level 2): sampled 1/4 correct, one unparseable (format broken), greedy correct
        _row("a", "p1", 2, "sampled", 0, True, tokens=10, oops=0),
        _row("a", "p1", 2, "sampled", 1, False, tokens=20, oops=1),
        _row("a", "p1", 2, "sampled", 2, False, "unparseable", fmt=False, tokens=30, cycles=2, oops=2),
        _row("a", "p1", 2, "sampled", 3, False, tokens=40, oops=1),
        _row("a", "p1", 2, "greedy", 0, True, tokens=12),
        # model a, problem p2 (level 3): sampled 3/4 correct, greedy correct
        _row("a", "p2", 3, "sampled", 0, True, tokens=50),
        _row("a", "p2", 3, "sampled", 1, True, tokens=50),
        _row("a", "p2", 3, "sampled", 2, True, tokens=50),
        _row("a", "p2", 3, "sampled", 3, False, tokens=50),
        _row("a", "p2", 3, "greedy", 0, True, tokens=50),
        # model b: greedy only, p1 wrong, p2 correct
        _row("b", "p1", 2, "greedy", 0, False, tokens=8),
        _row("b", "p2", 3, "greedy", 0, True, tokens=16, oops=3),
    ]
    return pl.DataFrame(rows, schema=SAMPLE_SCHEMA, orient="row")


def _get(summary: pl.DataFrame, model: str, difficulty: str, metric: str) -> dict:
    rows = summary.filter((pl.col("model") == model) & (pl.col("difficulty") == difficulty)
                          & (pl.col("metric") == metric))
    assert rows.height == 1, (model, difficulty, metric, rows)
    return rows.row(0, named=True)


def test_summary_values_hand_computed(frame: pl.DataFrame) -> None:
    s = summarize(frame, ks=(1, 2, 4), n_resamples=200)
    assert dict(s.schema) == SUMMARY_SCHEMA
    # accuracy = mean@4 = (1/4 + 3/4) / 2 = 0.5
    assert _get(s, "a", "all", "accuracy")["value"] == pytest.approx(0.5)
    assert _get(s, "a", "all", "mean@4")["value"] == pytest.approx(0.5)
    assert _get(s, "a", "all", "pass@1")["value"] == pytest.approx(0.5)
    # pass@2: p1 1 - C(3,2)/C(4,2) = 1 - 3/6 = 0.5 ; p2 n - c = 1 < 2 -> 1.0 ; mean 0.75
    assert _get(s, "a", "all", "pass@2")["value"] == pytest.approx(0.75)
    assert _get(s, "a", "all", "pass@4")["value"] == pytest.approx(1.0)
    assert _get(s, "a", "all", "greedy_accuracy")["value"] == pytest.approx(1.0)
    # response tokens: p1 (10+20+30+40)/4 = 25, p2 50 -> (25 + 50) / 2 = 37.5 (greedy rows not included)
    assert _get(s, "a", "all", "response_tokens")["value"] == pytest.approx(37.5)
    # format errors: p1 1/4, p2 0 -> 0.125 ; unparseable the same ; cycles p1 5/4, p2 1 -> 1.125
    assert _get(s, "a", "all", "format_error_rate")["value"] == pytest.approx(0.125)
    assert _get(s, "a", "all", "unparseable_rate")["value"] == pytest.approx(0.125)
    assert _get(s, "a", "all", "cycles")["value"] == pytest.approx(1.125)
    # oops: p1 (0+1+2+1)/4 = 1, p2 0 -> 0.5
    assert _get(s, "a", "all", "oops_rate")["value"] == pytest.approx(0.5)
    # per level: level 2 is p1 alone -> accuracy 0.25 with a zero-width interval (one problem)
    lvl2 = _get(s, "a", "2", "accuracy")
    assert (lvl2["value"], lvl2["ci_low"], lvl2["ci_high"]) == pytest.approx((0.25, 0.25, 0.25))
    assert _get(s, "a", "3", "pass@2")["value"] == pytest.approx(1.0)


def test_summary_intervals_bracket_the_estimate(frame: pl.DataFrame) -> None:
    s = summarize(frame, ks=(1,), n_resamples=200)
    assert (s["ci_low"] <= s["value"] + 1e-12).all() and (s["value"] <= s["ci_high"] + 1e-12).all()
    # bootstrap over the two per-problem accuracies {0.25, 0.75}: every resample mean lies in [0.25, 0.75]
    acc = _get(s, "a", "all", "accuracy")
    assert 0.25 <= acc["ci_low"] <= acc["ci_high"] <= 0.75


def test_greedy_only_model_gets_behaviour_from_greedy_rows(frame: pl.DataFrame) -> None:
    s = summarize(frame, ks=(1,), n_resamples=100)
    b_metrics = set(s.filter(pl.col("model") == "b")["metric"].to_list())
    assert "accuracy" not in b_metrics and "pass@1" not in b_metrics
    assert _get(s, "b", "all", "greedy_accuracy")["value"] == pytest.approx(0.5)  # (0 + 1) / 2
    assert _get(s, "b", "all", "response_tokens")["value"] == pytest.approx(12.0)  # (8 + 16) / 2
    assert _get(s, "b", "all", "oops_rate")["value"] == pytest.approx(1.5)  # (0 + 3) / 2


def test_summary_order_and_difficulty_labels(frame: pl.DataFrame) -> None:
    s = summarize(frame, ks=(1,), n_resamples=50)
    assert s["model"].unique(maintain_order=True).to_list() == ["a", "b"]
    levels = s.filter(pl.col("model") == "a")["difficulty"].unique(maintain_order=True).to_list()
    assert levels == ["all", "2", "3"]


def test_pass_at_k_larger_than_samples_is_an_error(frame: pl.DataFrame) -> None:
    with pytest.raises(ValueError, match="pass@8 needs at least 8"):
        summarize(frame, ks=(8,), n_resamples=10)


def test_summary_is_seeded(frame: pl.DataFrame) -> None:
    assert summarize(frame, seed=3, n_resamples=100).equals(summarize(frame, seed=3, n_resamples=100))


def test_comparison_table_wide(frame: pl.DataFrame) -> None:
    s = summarize(frame, ks=(1, 4), n_resamples=100)
    wide = comparison_table(s, metrics=("accuracy", "greedy_accuracy", "pass@k", "oops_rate", "not_a_metric"))
    assert wide["model"].to_list() == ["a", "b"]
    assert wide.columns == ["model",
                            "accuracy", "accuracy_ci_low", "accuracy_ci_high",
                            "greedy_accuracy", "greedy_accuracy_ci_low", "greedy_accuracy_ci_high",
                            "pass@4", "pass@4_ci_low", "pass@4_ci_high",  # pass@k -> the largest k present
                            "oops_rate", "oops_rate_ci_low", "oops_rate_ci_high"]
    assert wide["accuracy"][0] == pytest.approx(0.5)
    assert wide["accuracy"][1] is None  # model b has no sampled rows
    assert comparison_table(s, with_ci=False, metrics=("accuracy",)).columns == ["model", "accuracy"]


def test_difficulty_table(frame: pl.DataFrame) -> None:
    s = summarize(frame, ks=(1,), n_resamples=50)
    wide = difficulty_table(s, "greedy_accuracy")
    assert wide.columns == ["model", "2", "3", "all"]
    assert wide.row(1) == ("b", 0.0, 1.0, 0.5)
    assert "2_ci_low" in difficulty_table(s, "accuracy", with_ci=True).columns


def test_to_markdown_renders_ci_cells_and_oops_footnote(frame: pl.DataFrame) -> None:
    s = summarize(frame, ks=(1,), n_resamples=100)
    md = to_markdown(comparison_table(s, metrics=("accuracy", "response_tokens", "oops_rate")))
    lines = md.splitlines()
    assert lines[0] == "| model | accuracy | response_tokens | oops_rate † |"
    assert lines[1] == "|---|---:|---:|---:|"
    acc = _get(s, "a", "all", "accuracy")
    assert lines[2].startswith(f"| a | 0.500 [{acc['ci_low']:.3f}, {acc['ci_high']:.3f}] | 37.500 [")
    assert lines[3].startswith("| b | – | 12.000 [")  # missing accuracy -> en dash
    assert "bootstrap CI" in md
    assert all(word in md for word in OOPS_LEXICON)  # the lexicon is stated beside the Oops column


def test_to_markdown_plain_table_and_escaping() -> None:
    table = pl.DataFrame({"name": ["x|y", "z"], "n": [3, 4], "v": [1234.5678, None]})
    md = to_markdown(table, footnotes=("a note",))
    assert md.splitlines() == ["| name | n | v |", "|---|---:|---:|", "| x\\|y | 3 | 1234.6 |",
                               "| z | 4 | – |", "", "a note"]


def test_trace_consistency_is_the_share_of_consistent_replies_and_absent_without_traces() -> None:
    rows = [
        # p1: 3 of 4 sampled replies answer what their trace reached -> 0.75 ; p2: 1 of 2 -> 0.5 ; mean 0.625
        *[_row("kk", "p1", 2, "sampled", i, True, consistent=c) for i, c in enumerate([True, True, True, False])],
        _row("kk", "p2", 3, "sampled", 0, True, consistent=True),
        _row("kk", "p2", 3, "sampled", 1, False, consistent=False),
        _row("math", "q1", 1, "sampled", 0, True),  # a task without a checkable trace: null
    ]
    summary = summarize(pl.DataFrame(rows, schema=SAMPLE_SCHEMA, orient="row"), n_resamples=50)
    value = summary.filter((pl.col("model") == "kk") & (pl.col("metric") == "trace_consistency"))
    assert dict(zip(value["difficulty"], value["value"])) == {"all": 0.625, "2": 0.75, "3": 0.5}
    assert summary.filter((pl.col("model") == "math") & (pl.col("metric") == "trace_consistency")).is_empty()
