"""The end-of-run summary printed after ``kedro run``: the comparison table, where the report is, the MLflow link.

One job: turn the report's comparison table (``comparison_table_csv``: one row per model, ``accuracy`` with
``accuracy_ci_low`` / ``accuracy_ci_high``, ``response_tokens``, ...) and the parent MLflow run into a few lines of
terminal output a researcher reads instead of scrolling back through the log.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import mlflow
import polars as pl
from rich.console import Console
from rich.table import Table


def run_url(run_id: str, host: str = "127.0.0.1", port: str | int = "5000") -> str:
    """The MLflow UI address of a run (``make ui`` serves the project's store there)."""
    experiment_id = mlflow.get_run(run_id).info.experiment_id
    return f"http://{host}:{port}/#/experiments/{experiment_id}/runs/{run_id}"


def _number(value: Any, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def wide_from_benchmark(table: pl.DataFrame, baseline: str = "grpo") -> pl.DataFrame:
    """The benchmark's long table (``model, difficulty, metric, value, ci_low, ci_high``; one row per metric) as
    the comparison table's wide shape, over all difficulties: ``accuracy`` with its CI, ``vs_grpo`` (the paired
    difference to the baseline), ``response_tokens``, ``trace_consistency``."""
    overall = table.filter(pl.col("difficulty") == "all")
    models = list(dict.fromkeys(overall["model"].to_list()))

    def column(metric: str, field: str = "value") -> list[Any]:
        lookup = {r["model"]: r[field] for r in overall.filter(pl.col("metric") == metric).iter_rows(named=True)}
        return [lookup.get(m) for m in models]

    return pl.DataFrame({
        "model": models, "accuracy": column("accuracy"), "accuracy_ci_low": column("accuracy", "ci_low"),
        "accuracy_ci_high": column("accuracy", "ci_high"), "vs_grpo": column(f"accuracy_vs_{baseline}"),
        "response_tokens": column("response_tokens"), "trace_consistency": column("trace_consistency"),
    }, schema={"model": pl.String, **{c: pl.Float64 for c in ("accuracy", "accuracy_ci_low", "accuracy_ci_high",
                                                              "vs_grpo", "response_tokens", "trace_consistency")}})


def summary_table(table: pl.DataFrame, title: str) -> Table:
    """A rich table of ``table``'s rows: model, accuracy [95% CI], and the response length when it is there."""
    out = Table(title=title, title_justify="left")
    out.add_column("model")
    out.add_column("accuracy [95% CI]", justify="right")
    columns: Sequence[tuple[str, str, int]] = [(c, h, d) for c, h, d in (
        ("vs_grpo", "vs grpo", 3), ("response_tokens", "response tokens", 0),
        ("trace_consistency", "trace consistency", 3)) if c in table.columns]
    for _, header, _ in columns:
        out.add_column(header, justify="right")
    for row in table.iter_rows(named=True):
        acc = _number(row.get("accuracy"), 3)
        if row.get("accuracy_ci_low") is not None:
            acc += f" [{_number(row['accuracy_ci_low'], 3)}, {_number(row.get('accuracy_ci_high'), 3)}]"
        out.add_row(str(row["model"]), acc, *(_number(row.get(c), d) for c, _, d in columns))
    return out


def print_summary(tables: Sequence[tuple[str, pl.DataFrame, str]], mlflow_url: str | None,
                  console: Console | None = None, comparison_url: str | None = None) -> None:
    """Print each ``(title, table, report path)``, the link to the MLflow comparison view (when there are tables)
    and the MLflow run's link (the last lines of the run)."""
    console = console or Console()
    for title, table, report in tables:
        console.print(summary_table(table, title))
        console.print(f"report: {report}")
    if tables and comparison_url is not None:
        console.print(f"MLflow comparison: {comparison_url}", soft_wrap=True)
    if mlflow_url is not None:  # never wrapped: a terminal makes the whole URL one link
        console.print(f"MLflow run: {mlflow_url}  (open it with `make ui`)", soft_wrap=True)
