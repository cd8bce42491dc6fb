"""The end-of-run summary: which numbers it shows, from which table, and the MLflow link."""

from __future__ import annotations

import io
import json

import mlflow
import polars as pl
from rich.console import Console

from rl_distill.tracking.run_summary import print_summary, run_url, summary_table, wide_from_benchmark
from rl_distill.tracking.runs import comparison_view_url, label_parent_run


def _render(renderable) -> str:
    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(renderable)
    return console.file.getvalue()


def test_the_table_shows_accuracy_with_its_ci_and_the_length():
    table = pl.DataFrame({"model": ["teacher", "grpo"], "accuracy": [0.915, 0.2894],
                          "accuracy_ci_low": [0.88, 0.246], "accuracy_ci_high": [0.945, 0.3321],
                          "response_tokens": [95.4, None], "greedy_accuracy": [0.9, 0.3]})
    text = _render(summary_table(table, "comparison (test set)"))
    assert "comparison (test set)" in text
    assert "0.915 [0.880, 0.945]" in text and "0.289 [0.246, 0.332]" in text  # rounded to 3 digits
    lines = {line.split()[1]: line for line in text.splitlines() if line.startswith("│ ") and "[" in line}
    assert lines["teacher"].rstrip("│ ").endswith("95") and lines["grpo"].rstrip("│ ").endswith("-")  # None -> "-"
    assert "greedy" not in text  # only the headline columns


def test_the_benchmark_long_table_becomes_one_row_per_model():
    rows = [("grpo", "all", "accuracy", 0.289, 0.246, 0.332), ("rlad", "all", "accuracy", 0.271, 0.235, 0.309),
            ("rlad", "all", "accuracy_vs_grpo", -0.018, -0.055, 0.019), ("rlad", "3", "accuracy", 0.2, 0.1, 0.3),
            ("rlad", "all", "response_tokens", 102.0, 90.0, 110.0)]
    long = pl.DataFrame(rows, schema=["model", "difficulty", "metric", "value", "ci_low", "ci_high"], orient="row")
    wide = wide_from_benchmark(long)
    assert wide["model"].to_list() == ["grpo", "rlad"]
    assert wide.row(1, named=True) == {"model": "rlad", "accuracy": 0.271, "accuracy_ci_low": 0.235,
                                       "accuracy_ci_high": 0.309, "vs_grpo": -0.018, "response_tokens": 102.0,
                                       "trace_consistency": None}
    assert "-0.018" in _render(summary_table(wide, "benchmark"))


def test_the_summary_ends_with_the_report_path_and_the_mlflow_link(tmp_path):
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        experiment = mlflow.create_experiment("summary-test", artifact_location=str(tmp_path / "artifacts"))
        with mlflow.start_run(experiment_id=experiment) as run:
            pass
        url = run_url(run.info.run_id, "127.0.0.1", 5000)
    finally:
        mlflow.set_tracking_uri(before)
    assert url == f"http://127.0.0.1:5000/#/experiments/{experiment}/runs/{run.info.run_id}"
    console = Console(file=io.StringIO(), width=120, color_system=None)
    table = pl.DataFrame({"model": ["grpo"], "accuracy": [0.3]})
    compare = comparison_view_url(experiment, "127.0.0.1", 5000)
    assert compare == (f"http://127.0.0.1:5000/#/experiments/{experiment}/runs?workflowType=machine_learning"
                       "&viewStateShareKey=rl-distill-comparison")
    print_summary([("comparison", table, "data/08_reporting/comparison_table.md")], url, console,
                  comparison_url=compare)
    last = console.file.getvalue().strip().splitlines()[-3:]
    assert last == ["report: data/08_reporting/comparison_table.md", f"MLflow comparison: {compare}",
                    f"MLflow run: {url}  (open it with `make ui`)"]


def test_the_comparison_view_is_stored_on_the_experiment(tmp_path) -> None:
    """label_parent_run stores the runs-table view the comparison link opens: MLflow's UI reads it from the
    experiment tag mlflow.sharedViewState.<key> (JSON: selected columns, sort)."""
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        experiment = mlflow.create_experiment("e")
        run = mlflow.MlflowClient().create_run(experiment)
        label_parent_run(run.info.run_id, "default · local · params 0")
        tags = mlflow.MlflowClient().get_experiment(experiment).tags
    finally:
        mlflow.set_tracking_uri(before)
    view = json.loads(tags["mlflow.sharedViewState.rl-distill-comparison"])
    assert view["selectedColumns"][:3] == ["metrics.`eval/accuracy`", "metrics.`eval/accuracy_ci_low`",
                                           "metrics.`eval/accuracy_ci_high`"]
    assert {"tags.`method`", "tags.`seed`", "tags.`alpha`", "metrics.`eval/response_tokens`"} <= set(
        view["selectedColumns"])
    assert tags["mlflow.experimentKind"] == "custom_model_development"
