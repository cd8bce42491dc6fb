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


def test_report_sets_rtap_against_grpo_and_student_init():
    """Issue 19: the R-TAP section, built from a real seed table: accuracy, Oops, tokens and cycles of rtap, grpo and
    student_init, the paired differences to both, and C_phi's held-out AUROC / ECE per seed."""
    from rl_distill.evaluation.seeds import seed_table

    rows = []
    for model, seeds, correct, oops, tokens, cycles in [
            ("student_init", [None], [True, False], 2, 90, 1), ("grpo", [0, 1], [True, False], 1, 60, 1),
            ("rtap", [0, 1], [True, True], 0, 40, 2)]:
        for seed in seeds:
            for p, ok in enumerate(correct):
                rows.append({"model": model, "example_id": f"p{p}", "difficulty": 3, "decoding": "sampled",
                             "sample_idx": 0, "correct": ok, "n_tokens": tokens, "trace_consistent": True,
                             "oops": oops, "n_cycles": cycles, "seed": seed})
    table = seed_table(pl.DataFrame(rows), baseline="grpo", references=["student_init"], n_resamples=100)
    conf = {0: {"confidence/auroc": 0.6, "confidence/ece": 0.2, "confidence/num_cycles": 128.0},
            1: {"confidence/auroc": 0.7, "confidence/ece": 0.1, "confidence/num_cycles": 128.0}}
    text = render_report(table, [0, 1], "grpo", 0.95, [], references=["student_init"], confidence={"rtap": conf})
    section = text.split("## rtap against grpo and student_init")[1].split("## Learning curves")[0]
    lines = {line.split("|")[1].strip(): line for line in section.splitlines() if line.startswith("| ")}
    # grpo and student_init solve p0 only, rtap both: problems resampled give [0, 1] for every one-problem gap.
    assert lines["accuracy"] == "| accuracy | 1.000 [1.000, 1.000] | 0.500 [0.000, 1.000] | 0.500 [0.000, 1.000] | " \
           "0.500 [0.000, 1.000] | 0.500 [0.000, 1.000] |"
    assert lines["oops_rate"].endswith("| -1.000 [-1.000, -1.000] | -2.000 [-2.000, -2.000] |")
    assert lines["response_tokens"].endswith("| -20.000 [-20.000, -20.000] | -50.000 [-50.000, -50.000] |")
    assert lines["cycles"].split("|")[2].strip() == "2.000 [2.000, 2.000]"
    assert "seeds 0, 1: AUROC 0.600 / 0.700 (mean 0.650); ECE 0.200 / 0.100 (mean 0.150)." in section
    assert "difficulty" not in section.split("ECE 0.200")[1]  # no level baseline measured, none reported
    conf[0]["confidence/level_auroc"], conf[1]["confidence/level_auroc"] = 0.65, 0.55
    text = render_report(table, [0, 1], "grpo", 0.95, [], references=["student_init"], confidence={"rtap": conf})
    assert "training cycles) scores AUROC 0.650 / 0.550 (mean 0.600)" in text
    assert "AUROC intervals" not in text
    conf[0].update({"confidence/auroc_low": 0.55, "confidence/auroc_high": 0.66})
    conf[1].update({"confidence/auroc_low": 0.62, "confidence/auroc_high": 0.77})
    text = render_report(table, [0, 1], "grpo", 0.95, [], references=["student_init"], confidence={"rtap": conf})
    assert "AUROC 0.600 [0.550, 0.660] / 0.700 [0.620, 0.770] (mean 0.650); ECE 0.200 / 0.100" in text
    assert "AUROC intervals: 95% bootstrap over the held-out questions" in text
    assert "## rtap against" not in render_report(table, [0, 1], "grpo", 0.95, [])  # no C_phi metrics, no section
