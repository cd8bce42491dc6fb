"""``reporting`` pipeline: one comparison report from the evaluation outputs.

``reporting.histories`` reads ``val/accuracy`` / ``rollout/reward_mean`` from each model's training run,
``reporting.figures`` draws the figures (``report_figures``: data/08_reporting/figures/*.png) and
``reporting.tables`` writes ``comparison_table_md`` / ``comparison_table_csv`` / ``difficulty_table_csv``.
The catalog logs them as artifacts of the active MLflow run (the ``kedro run`` parent run) under ``reporting/``.
The alpha sweep is drawn when ``tuning_trials_if_any`` holds a study's trials.
"""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from rl_distill.pipelines.reporting.nodes import build_figures, build_tables, collect_histories

INPUTS = {"eval_summary", "eval_samples", "eval_runs", "tuning_trials_if_any"}
# The blocks the report describes, each its own `params:` input: kedro-mlflow logs a node's `params:<block>` inputs
# under `<block>.*`, the names the training nodes log them under, so the parent run holds each parameter once (a
# whole-`parameters` input would log all of them again as `parameters.*`).
REPORT_BLOCKS = ("reporting", "data_curation", "teacher", "student_init", "distill", "evaluation", "tuning")
BLOCK_INPUTS = {block: f"params:{block}" for block in REPORT_BLOCKS}
OUTPUTS = {"report_figures", "comparison_table_md", "comparison_table_csv", "difficulty_table_csv"}


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([
        Node(collect_histories, ["eval_runs", "params:reporting"], "training_histories", name="histories"),
        Node(build_figures, {"eval_summary": "eval_summary", "eval_samples": "eval_samples",
                             "histories": "training_histories", "tuning_trials": "tuning_trials_if_any",
                             **BLOCK_INPUTS},
             ["report_figures", "figure_names"], name="figures"),
        Node(build_tables, {"eval_summary": "eval_summary", "eval_samples": "eval_samples", "eval_runs": "eval_runs",
                            "figure_names": "figure_names", **BLOCK_INPUTS},
             ["comparison_table_csv", "difficulty_table_csv", "comparison_table_md"], name="tables"),
    ], namespace="reporting", inputs=INPUTS, outputs=OUTPUTS, parameters=set(BLOCK_INPUTS.values()))
