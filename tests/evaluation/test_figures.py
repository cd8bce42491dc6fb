"""Every figure renders to a PNG with labelled axes and a distinct style per method (figures.py)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from matplotlib.figure import Figure

from rl_distill.evaluation.figures import (
    accuracy_by_difficulty,
    alpha_sweep,
    learning_curves,
    method_styles,
    response_lengths,
)
from rl_distill.evaluation.summary import summarize

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _render(fig: Figure, path: Path) -> None:
    assert isinstance(fig, Figure)
    fig.savefig(path)
    assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 5_000
    for ax in fig.axes:
        if ax.has_data():
            assert ax.get_ylabel(), ax
            # a twin axis shares its x axis (and label) with its sibling
            assert any(a.get_xlabel() for a in ax.get_shared_x_axes().get_siblings(ax)), ax


def _legend_labels(fig: Figure) -> list[str]:
    legends = fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    return [t.get_text() for leg in legends for t in leg.get_texts()]


def test_method_styles_are_stable_and_distinct() -> None:
    styles = method_styles(["rlad", "grpo", "custom_a", "custom_b"])
    assert styles["rlad"] == method_styles(["teacher", "rlad"])["rlad"]  # a known id keeps its style anywhere
    assert len(set(styles.values())) == 4
    assert len({c for c, _ in method_styles([f"m{i}" for i in range(5)]).values()}) == 5


def test_accuracy_by_difficulty(synthetic_samples: pl.DataFrame, tmp_path: Path) -> None:
    summary = summarize(synthetic_samples, ks=(1, 4), n_resamples=100)
    fig = accuracy_by_difficulty(summary)
    _render(fig, tmp_path / "acc.png")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2", "3", "all"]
    assert _legend_labels(fig) == ["grpo", "rlad", "my_model"]
    assert len(ax.patches) == 3 * 3  # 3 models x (2 levels + all)
    _render(accuracy_by_difficulty(summary, "pass@4", include_all=False), tmp_path / "pass.png")
    one_level = summarize(synthetic_samples.filter(pl.col("difficulty") == 3), n_resamples=50)
    labels = [t.get_text() for t in accuracy_by_difficulty(one_level).axes[0].get_xticklabels()]
    assert labels == ["3"]  # "all" would repeat the only level
    with pytest.raises(ValueError, match="metrics present"):
        accuracy_by_difficulty(summary, "nope")


def test_learning_curves(tmp_path: Path) -> None:
    histories = {
        "grpo": {"val/accuracy": [(0, 0.2), (10, 0.4), (20, 0.5)],
                 "rollout/reward_mean": [(s, -1 + 0.05 * s) for s in range(1, 21)]},
        "rlad": {"val/accuracy": [(0, 0.2), (10, 0.5), (20, 0.6)],
                 "rollout/reward_mean": [(s, -1 + 0.07 * s) for s in range(20, 0, -1)]},  # unsorted input
        "offline_kd": {"val/accuracy": [(0, 0.2), (20, 0.3)]},  # no rollouts
    }
    fig = learning_curves(histories)
    _render(fig, tmp_path / "curves.png")
    assert [ax.get_title() for ax in fig.axes] == ["val/accuracy", "rollout/reward_mean"]
    assert len(fig.axes[0].lines) == 3 and len(fig.axes[1].lines) == 2
    assert list(fig.axes[1].lines[1].get_xdata()) == list(range(1, 21))
    assert _legend_labels(fig) == ["grpo", "rlad", "offline_kd"]
    smooth = learning_curves(histories, smoothing=0.8, smooth_keys=("rollout/reward_mean",))
    assert len(smooth.axes[0].lines) == 3  # validation points left raw
    assert len(smooth.axes[1].lines) == 4  # raw faint + EMA line per method
    assert smooth.axes[1].get_title() == "rollout/reward_mean (EMA 0.8)"
    _render(learning_curves({"grpo": {}}), tmp_path / "empty.png")
    with pytest.raises(ValueError, match="smoothing"):
        learning_curves(histories, smoothing=1.0)


def test_response_lengths(synthetic_samples: pl.DataFrame, tmp_path: Path) -> None:
    fig = response_lengths(synthetic_samples)
    _render(fig, tmp_path / "len.png")
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["grpo", "rlad", "my_model"]
    with pytest.raises(ValueError, match="decodings present"):
        response_lengths(synthetic_samples, decoding="beam")


def test_alpha_sweep(tmp_path: Path) -> None:
    trials = [(0.1, 0.40, "COMPLETE"), (0.3, 0.52, "COMPLETE"), (0.5, 0.55, "COMPLETE"),
              (0.5, 0.50, "COMPLETE"), (0.9, 0.30, "TrialState.PRUNED"), (0.7, None, "FAIL")]
    fig = alpha_sweep(trials)
    _render(fig, tmp_path / "alpha.png")
    labels = _legend_labels(fig)
    assert labels[:4] == ["trial, complete (4)", "best per alpha", "trial, pruned (1)", "trial, failed (1)"]
    assert "paper ablation (MATH, %)" in labels
    best_line = fig.axes[0].lines[0]
    assert list(best_line.get_ydata()) == [0.40, 0.52, 0.55]  # best per distinct alpha 0.1 / 0.3 / 0.5
    _render(alpha_sweep([]), tmp_path / "alpha_empty.png")
