"""The benchmark report's gap-closed share, hand-computed, and its place in the markdown."""

from __future__ import annotations

import polars as pl
import pytest

from rl_distill.evaluation.seed_report import gap_closed, render_report


def _table() -> pl.DataFrame:
    rows = []
    for model, acc in {"teacher": (0.9, 0.8), "student_init": (0.3, 0.2), "grpo": (0.45, 0.2),
                       "rlad": (0.15, 0.5)}.items():
        for difficulty, value in zip(("all", "3"), acc):
            rows.append({"model": model, "difficulty": difficulty, "metric": "accuracy", "value": value,
                         "ci_low": value - 0.05, "ci_high": value + 0.05, "n_seeds": 1, "per_seed": f"{value}"})
    return pl.DataFrame(rows)


def test_gap_closed_by_hand():
    closed = {(r["model"], r["difficulty"]): r["gap_closed"] for r in gap_closed(_table()).iter_rows(named=True)}
    assert set(closed) == {("grpo", "all"), ("grpo", "3"), ("rlad", "all"), ("rlad", "3")}
    assert closed["grpo", "all"] == pytest.approx((0.45 - 0.3) / (0.9 - 0.3))  # 0.25
    assert closed["grpo", "3"] == pytest.approx(0.0)
    assert closed["rlad", "all"] == pytest.approx(-0.25)  # below the warm start
    assert closed["rlad", "3"] == pytest.approx(0.5)


def test_gap_closed_needs_both_references():
    assert gap_closed(_table().filter(pl.col("model") != "teacher")).is_empty()


def test_report_has_the_gap_section():
    text = render_report(_table(), [0, 1, 2], "grpo", 0.95, [])
    assert text.startswith("# Benchmark over seeds [0, 1, 2]\n")
    assert "## Share of the teacher - student_init gap closed" in text
    section = text.split("gap closed")[1]
    assert "| rlad" in section and "-0.25" in section and "0.25" in section
