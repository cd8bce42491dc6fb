"""The evaluated test problems and the MLflow names of their metrics.

One job: pick the same capped, difficulty-balanced test problems for every model (:func:`select_test_examples`) and
name each summary row as an MLflow metric (:func:`metric_key`, :func:`mlflow_metrics`; MLflow forbids ``@``).
"""

from __future__ import annotations

import polars as pl

from rl_distill.evaluation.summary import ALL


def select_test_examples(frame: pl.DataFrame, max_examples: int | None, seed: int) -> pl.DataFrame:
    """At most ``max_examples`` rows, drawn round-robin over difficulty levels after a seeded shuffle.

    Every level keeps ``~max_examples / levels`` problems (all of a level that has fewer), so a cap never
    drops the hard levels; the same seed gives the same problems to every model. Output sorted by
    (difficulty, id).
    """
    if max_examples is None or frame.height <= max_examples:
        return frame.sort(["difficulty", "id"])
    ranked = (frame.sample(fraction=1.0, shuffle=True, seed=seed)
              .with_columns(pl.int_range(pl.len()).over("difficulty").alias("_rank")))
    return ranked.sort(["_rank", "difficulty"]).head(max_examples).drop("_rank").sort(["difficulty", "id"])


def metric_key(metric: str, difficulty: str) -> str:
    """MLflow name of one summary row.

    >>> metric_key("accuracy", "all"), metric_key("pass@4", "3")
    ('eval/accuracy', 'eval/pass_at_4_d3')
    """
    name = metric.replace("@", "_at_")
    return f"eval/{name}" if difficulty == ALL else f"eval/{name}_d{difficulty}"


def mlflow_metrics(summary: pl.DataFrame, samples: pl.DataFrame) -> dict[str, float]:
    """``eval/*`` metrics of one model's summary, plus ``eval/n_problems`` (and per level). Over all problems, a
    metric's 95% CI bounds come along as ``eval/<metric>_ci_low`` / ``_ci_high`` (columns of the MLflow runs table)."""
    metrics = {metric_key(r["metric"], r["difficulty"]): r["value"] for r in summary.iter_rows(named=True)}
    for r in summary.filter(pl.col("difficulty") == ALL).iter_rows(named=True):
        for bound in ("ci_low", "ci_high"):
            if r[bound] is not None:
                metrics[f"{metric_key(r['metric'], ALL)}_{bound}"] = r[bound]
    per_level = samples.group_by("difficulty").agg(pl.col("example_id").n_unique().alias("n"))
    metrics["eval/n_problems"] = float(samples["example_id"].n_unique())
    for row in per_level.iter_rows(named=True):
        metrics[f"eval/n_problems_d{row['difficulty']}"] = float(row["n"])
    return metrics
