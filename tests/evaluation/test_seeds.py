"""Seed statistics: two-way bootstrap and paired differences to the baseline, on hand-built grids."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from rl_distill.evaluation.seeds import seed_table, two_way_bootstrap


def _samples(model: str, grid: list[list[float]], k: int = 2, difficulty: int = 3) -> list[dict]:
    """Rows whose per-(seed, problem) accuracy is ``grid[s][p]`` (k samples, round(v * k) of them correct)."""
    rows = []
    for s, row in enumerate(grid):
        for p, v in enumerate(row):
            for i in range(k):
                rows.append({"model": model, "example_id": f"p{p}", "difficulty": difficulty, "decoding": "sampled",
                             "sample_idx": i, "correct": i < round(v * k), "n_tokens": 10 * (s + 1),
                             "trace_consistent": True, "seed": s})
    return rows


def test_paired_difference_of_a_constant_shift_has_a_zero_width_interval() -> None:
    # rlad = grpo + 0.5 on every (seed, problem) cell: the paired difference is 0.5 in every resample,
    # while each method's own interval is wide (its cells vary).
    grpo = [[0.0, 0.5, 0.0], [0.5, 0.0, 0.0]]
    rlad = [[0.5, 1.0, 0.5], [1.0, 0.5, 0.5]]
    table = seed_table(pl.DataFrame(_samples("grpo", grpo) + _samples("rlad", rlad)), n_resamples=300)
    acc = table.filter((pl.col("difficulty") == "all") & (pl.col("metric") == "accuracy"))
    assert dict(zip(acc["model"], acc["value"])) == {"grpo": pytest.approx(1 / 6), "rlad": pytest.approx(2 / 3)}
    assert dict(zip(acc["model"], acc["per_seed"])) == {"grpo": "0.167, 0.167", "rlad": "0.667, 0.667"}
    diff = table.filter((pl.col("difficulty") == "all") & (pl.col("metric") == "accuracy_vs_grpo")).row(0, named=True)
    assert diff["model"] == "rlad" and diff["n_seeds"] == 2
    assert (diff["value"], diff["ci_low"], diff["ci_high"]) == pytest.approx((0.5, 0.5, 0.5))
    rlad_acc = acc.filter(pl.col("model") == "rlad").row(0, named=True)
    assert rlad_acc["ci_low"] < 0.6 < 0.7 < rlad_acc["ci_high"]
    tokens = table.filter((pl.col("metric") == "response_tokens") & (pl.col("model") == "grpo")
                          & (pl.col("difficulty") == "all"))
    assert tokens["value"][0] == 15.0 and tokens["per_seed"][0] == "10.000, 20.000"  # seed 0: 10, seed 1: 20 tokens


def test_unpaired_models_get_no_difference_row() -> None:
    frame = pl.DataFrame(_samples("grpo", [[0.5, 0.5], [0.5, 0.0]]) + _samples("teacher", [[1.0, 1.0]]))
    table = seed_table(frame, n_resamples=50)
    assert table.filter(pl.col("metric").str.ends_with("_vs_grpo")).is_empty()  # one-seed teacher: not paired
    assert set(table["difficulty"]) == {"all", "3"}


def test_two_way_bootstrap_covers_seed_noise() -> None:
    # Seeds disagree completely (0 vs 1 on every problem): the interval must span most of [0, 1].
    est, lo, hi = two_way_bootstrap(np.array([[0.0] * 20, [1.0] * 20]), n_resamples=2000, seed=1)
    assert est == 0.5 and lo == 0.0 and hi == 1.0


def test_a_reference_trained_once_pairs_with_every_seed() -> None:
    """rtap vs student_init (trained once, the start of every seed): its one row pairs with each seed's row, problem
    by problem. rtap = student_init + 0.5 everywhere, so the paired difference is exactly 0.5."""
    frame = pl.DataFrame(_samples("student_init", [[0.0, 0.5, 0.0]])
                         + _samples("rtap", [[0.5, 1.0, 0.5], [0.5, 1.0, 0.5]])
                         + _samples("grpo", [[0.5, 0.5, 0.5], [0.0, 0.5, 0.0]])).drop("seed")
    seeds = [None] * 6 + [s for s in (0, 1) for _ in range(6)] * 2
    frame = frame.with_columns(pl.Series("seed", seeds, dtype=pl.Int64), pl.col("n_tokens").alias("oops"),
                               pl.lit(1).alias("n_cycles"))
    table = seed_table(frame, baseline="grpo", references=["student_init"], n_resamples=200)
    vs = table.filter((pl.col("difficulty") == "all") & (pl.col("metric") == "accuracy_vs_student_init"))
    rows = {r["model"]: r for r in vs.iter_rows(named=True)}
    assert set(rows) == {"rtap", "grpo"}
    assert (rows["rtap"]["value"], rows["rtap"]["ci_low"], rows["rtap"]["ci_high"]) == pytest.approx((0.5, 0.5, 0.5))
    assert rows["rtap"]["per_seed"] == "+0.500, +0.500" and rows["rtap"]["n_seeds"] == 2
    assert rows["grpo"]["value"] == pytest.approx((0.5 + 1 / 6) / 2 - 1 / 6)
    metrics = set(table.filter(pl.col("model") == "rtap")["metric"])
    assert {"oops_rate", "cycles", "oops_rate_vs_grpo", "cycles_vs_student_init"} <= metrics
    oops = table.filter((pl.col("model") == "rtap") & (pl.col("metric") == "oops_rate")
                        & (pl.col("difficulty") == "all"))
    assert oops["value"][0] == 15.0  # the test rows carry oops = n_tokens: 10 at seed 0, 20 at seed 1
