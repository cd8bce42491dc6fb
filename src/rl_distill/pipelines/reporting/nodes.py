"""Reporting nodes: the evaluation tables -> comparison tables (markdown + csv) and figures.

Thin adapters over :mod:`rl_distill.evaluation.summary` / :mod:`rl_distill.evaluation.figures` and
:mod:`rl_distill.evaluation.report`. Training curves come from the MLflow runs listed in
``eval_runs`` (each model's training run), read through :mod:`rl_distill.tracking.history`, so
``kedro run --pipelines reporting`` works off persisted evaluation outputs. The catalog writes everything to
data/08_reporting/ and logs it as artifacts of the active (parent) MLflow run under ``reporting/``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import polars as pl
from matplotlib.figure import Figure

from rl_distill.evaluation import figures
from rl_distill.evaluation.report import build_report, lookup
from rl_distill.evaluation.samples import SAMPLED
from rl_distill.evaluation.summary import comparison_table, difficulty_table
from rl_distill.parameters import PARAMETER_BLOCKS
from rl_distill.pipelines.reporting.config import ReportingParams, load_params
from rl_distill.tracking import active_run_id
from rl_distill.tracking.history import Histories, metric_histories

log = logging.getLogger(__name__)
FIGURE_DIR = "figures"  # the report links figures relative to itself: figures/<name>.png
# What a difficulty level means for each task family (the x-axis label of the difficulty figures).
DIFFICULTY_MEANING = {"knights_knaves": "K&K: number of people", "arithmetic": "arithmetic: digits per operand"}


@PARAMETER_BLOCKS.register("reporting")
def validate_reporting(block: Mapping[str, Any], where: str) -> Any:
    """Context-creation parse of the ``reporting`` block (unknown keys / bad values raise ``ConfigError``)."""
    return load_params(block, where=where)


def collect_histories(eval_runs: pl.DataFrame, params: Mapping[str, Any]) -> Histories:
    """``{model: {key: [(step, value), ...]}}`` for ``curve_models`` (in that order) that were evaluated."""
    cfg = load_params(params)
    run_of = {r["model"]: r["run_id"] for r in eval_runs.iter_rows(named=True) if r["logged_to"] == "training_run"}
    models = [m for m in cfg.curve_methods() if m in set(eval_runs["model"].to_list())]
    return metric_histories({m: run_of.get(m) for m in models}, cfg.curve_keys)


def build_tables(eval_summary: pl.DataFrame, eval_samples: pl.DataFrame, eval_runs: pl.DataFrame,
                 figure_names: list[str], **parameters: Any) -> tuple[pl.DataFrame, pl.DataFrame, str]:
    """``comparison_table_csv`` (all levels, with CIs), ``difficulty_table_csv`` (first difficulty metric
    per level, with CIs) and ``comparison_table_md`` (the report: configuration, tables, figures).
    ``parameters``: the blocks the report describes, by name (``reporting``, ``distill``, ...)."""
    cfg = load_params(parameters.get("reporting"))
    table = comparison_table(eval_summary, cfg.comparison_metrics)
    by_level = difficulty_table(eval_summary, cfg.difficulty_metrics[0], with_ci=True)
    report = build_report(title=cfg.title, summary=eval_summary, samples=eval_samples, eval_runs=eval_runs,
                          params=parameters, comparison_metrics=cfg.comparison_metrics,
                          difficulty_metrics=cfg.difficulty_metrics,
                          figure_files=[f"{FIGURE_DIR}/{name}" for name in figure_names],
                          digits=cfg.digits, parent_run_id=active_run_id())
    return table, by_level, report


def difficulty_label(parameters: Mapping[str, Any]) -> str:
    """``difficulty (<meaning per curated task>)``, e.g. ``difficulty (K&K: number of people)``."""
    names = dict.fromkeys(t.get("name") for t in lookup(parameters, "data_curation.tasks", []) or []
                          if isinstance(t, Mapping))
    meanings = [DIFFICULTY_MEANING[n] for n in names if n in DIFFICULTY_MEANING]
    return f"difficulty ({'; '.join(meanings)})" if meanings else "difficulty level"


def _trials_available(trials: pl.DataFrame | None) -> bool:
    return trials is not None and trials.height > 0 and {"alpha", "value", "state"} <= set(trials.columns)


def _slug(metric: str) -> str:
    return metric.replace("@", "_at_").replace("/", "_")


def _alpha_trials(trials: pl.DataFrame) -> list[tuple[float, float | None, str]]:
    rows = trials.filter(pl.col("alpha").is_not_null())
    return [(float(r["alpha"]), None if r["value"] is None else float(r["value"]), str(r["state"]))
            for r in rows.iter_rows(named=True)]


def build_figures(eval_summary: pl.DataFrame, eval_samples: pl.DataFrame, histories: Histories,
                  tuning_trials: pl.DataFrame | None, **parameters: Any) -> tuple[dict[str, Figure], list[str]]:
    """``({file name: Figure}, file names)``: metric by difficulty (95% CIs), learning curves, response
    lengths, and the alpha sweep when ``tuning_trials`` holds trials (the tuning pipeline has run).
    ``parameters``: the parameter blocks by name, as for :func:`build_tables`."""
    cfg: ReportingParams = load_params(parameters.get("reporting"))
    out: dict[str, Figure] = {}
    present = set(eval_summary["metric"].to_list())
    for metric in cfg.difficulty_metrics:
        if metric in present:
            out[f"{_slug(metric)}_by_difficulty.png"] = figures.accuracy_by_difficulty(
                eval_summary, metric, difficulty_name=cfg.difficulty_name or difficulty_label(parameters))
        else:
            log.warning("reporting: no '%s' in the evaluation summary; its difficulty figure is skipped", metric)
    out["learning_curves.png"] = figures.learning_curves(histories, cfg.curve_keys, smoothing=cfg.smoothing,
                                                         smooth_keys=cfg.smooth_keys)
    decodings = set(eval_samples["decoding"].to_list())
    # Fall back to the other decoding when the configured one was not generated (e.g. num_samples: 0).
    decoding = cfg.length_decoding if cfg.length_decoding in decodings else next(iter(sorted(decodings)), SAMPLED)
    out["response_lengths.png"] = figures.response_lengths(eval_samples, decoding)
    if _trials_available(tuning_trials):
        objective = lookup(parameters, "tuning.metric", "objective")
        out["alpha_sweep.png"] = figures.alpha_sweep(_alpha_trials(tuning_trials), objective=objective)
    else:
        log.info("reporting: no tuning trials (run `kedro run --pipelines tuning`); alpha sweep skipped")
    return out, list(out)
