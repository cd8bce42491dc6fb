"""Evaluation nodes: one trained model on the held-out test split -> per-sample records + ``eval/*`` metrics.

Each node adapts: checkpoint + test frame + ``parameters_evaluation.yml`` -> one call of the Kedro-free
:func:`rl_distill.evaluation.samples.evaluate_model` and :func:`rl_distill.evaluation.summary.summarize`.
The model's metrics go into the MLflow run it was trained in (its directory's ``mlflow_run.json``), so one
run holds a method's training curves and its test numbers; a model without that file (e.g. loaded with
``init_from``) gets a new nested run ``eval.<model>`` under the active ``kedro run`` run. Metric names
(architecture principle 8): ``eval/<metric>`` over all problems and ``eval/<metric>_d<level>`` per difficulty,
with ``@`` spelled ``_at_`` (MLflow rejects ``@`` in names): ``eval/accuracy``, ``eval/accuracy_d3``,
``eval/pass_at_4``, ``eval/response_tokens``, ``eval/oops_rate``, ...
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from rl_distill.evaluation.samples import SAMPLE_SCHEMA, evaluate_model
from rl_distill.evaluation.summary import ALL, SUMMARY_SCHEMA, summarize
from rl_distill.evaluation.test_split import mlflow_metrics, select_test_examples
from rl_distill.io.model_dir import ModelDir
from rl_distill.parameters import PARAMETER_BLOCKS
from rl_distill.pipelines.evaluation.config import EvaluationParams, load_params
from rl_distill.pipelines.training import RUN_FILE, frame_to_examples, single_task
from rl_distill.tracking import RunLogger, active_run_id, model_run
from rl_distill.tracking.history import run_exists
from rl_distill.typed_config import to_dict

log = logging.getLogger(__name__)
RUNS_SCHEMA = {"model": pl.String, "run_id": pl.String, "run_name": pl.String, "logged_to": pl.String}


@PARAMETER_BLOCKS.register("evaluation")
def validate_evaluation(block: Mapping[str, Any], where: str) -> Any:
    """Context-creation parse of the ``evaluation`` block (unknown keys / bad values raise ``ConfigError``)."""
    return load_params(block, where=where)


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def read_run_id(model_dir: Path) -> str | None:
    """The training run id recorded in ``<model_dir>/mlflow_run.json``, or None."""
    path = Path(model_dir) / RUN_FILE
    if not path.exists():
        return None
    return json.loads(path.read_text()).get("run_id") or None


def _log_metrics(model_name: str, model_dir: Path, metrics: Mapping[str, float], summary: pl.DataFrame,
                 cfg: EvaluationParams) -> dict[str, Any]:
    """Log into the model's training run, else a new nested ``eval.<model>`` run; skip with no MLflow run."""
    info = {"model": model_name, "run_id": None, "run_name": None, "logged_to": "none"}
    if not cfg.log_to_mlflow:
        return info

    def write(logger: RunLogger) -> None:
        logger.log_metrics(metrics, step=0)
        logger.log_table_csv(summary, "eval/summary.csv")
        logger.log_dict({"decoding": to_dict(cfg.decoding_for(model_name)), "ks": list(cfg.ks),
                         "max_test_examples": cfg.max_test_examples, "subsample_seed": cfg.subsample_seed},
                        "eval/config.json")
        logger.set_tags({"eval.parent_run_id": active_run_id() or ""})

    run_id = read_run_id(model_dir)
    if run_exists(run_id):
        write(RunLogger(run_id))
        return {**info, "run_id": run_id, "run_name": model_name, "logged_to": "training_run"}
    if active_run_id() is None:
        log.warning("evaluation of %s: no MLflow run to log into (no %s and no active run); metrics only in "
                    "the catalog tables", model_name, RUN_FILE)
        return info
    if run_id:
        log.warning("evaluation of %s: run %s from %s is not in this tracking store; logging to a new run",
                    model_name, run_id, RUN_FILE)
    name = f"eval.{model_name}"
    with model_run(name, tags={"method": model_name, "phase": "eval"}) as logger:
        write(logger)
    return {**info, "run_id": logger.run_id, "run_name": name, "logged_to": "eval_run"}


def evaluate_checkpoint(model_dir: ModelDir, test_examples: pl.DataFrame, tokenizer: Any, params: Mapping[str, Any],
                        *, model_name: str) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Evaluate the checkpoint ``model_dir`` as ``model_name``: per-sample frame and where it was logged.

    Every model reads its prompts through the project's ``tokenizer`` (one prompt format for all, e.g. a model
    given by ``init_from`` whose own tokenizer carries another system prompt); the directory's vocabulary must match.
    """
    # torch/transformers only when a model is evaluated
    from rl_distill.models.factory import check_shared_vocab, load_model_dir

    cfg = load_params(params)
    frame = select_test_examples(test_examples, cfg.max_test_examples, cfg.subsample_seed)
    task = single_task(frame)
    model, own_tokenizer = load_model_dir(ModelDir(model_dir.path).check().path)
    check_shared_vocab(own_tokenizer, tokenizer, names=(f"{model_name} ({model_dir.path})", "project tokenizer"))
    model.to(_device(cfg.device))
    samples = evaluate_model(model_name, model, tokenizer, task, frame_to_examples(frame),
                             cfg.decoding_for(model_name))
    summary = summarize(samples, cfg.ks, n_resamples=cfg.bootstrap.n_resamples, level=cfg.bootstrap.level,
                        seed=cfg.bootstrap.seed)
    acc = summary.filter((pl.col("metric") == "accuracy") & (pl.col("difficulty") == ALL))
    log.info("%s: accuracy %s (n=%d)", model_name,
             f"{acc['value'][0]:.3f}" if acc.height else "n/a", frame.height)
    return samples, _log_metrics(model_name, model_dir.path, mlflow_metrics(summary, samples), summary, cfg)


def combine_evaluations(params: Mapping[str, Any], *parts: Any) -> tuple[pl.DataFrame, pl.DataFrame,
                                                                         pl.DataFrame, pl.DataFrame]:
    """``parts`` = every model's samples frame, then every model's run record (same order).

    Returns ``eval_samples`` (all per-sample records), ``eval_summary`` twice (the tidy model x difficulty x
    metric table, for its parquet and csv copies) and ``eval_runs`` (model -> MLflow run holding its
    ``eval/*`` metrics).
    """
    if len(parts) % 2:
        raise ValueError(f"combine_evaluations expects samples and run records in pairs, got {len(parts)} parts")
    cfg = load_params(params)
    half = len(parts) // 2
    frames, runs = parts[:half], parts[half:]
    samples = pl.concat([f.cast(SAMPLE_SCHEMA) for f in frames]) if frames else pl.DataFrame(schema=SAMPLE_SCHEMA)
    summary = (summarize(samples, cfg.ks, n_resamples=cfg.bootstrap.n_resamples, level=cfg.bootstrap.level,
                         seed=cfg.bootstrap.seed) if samples.height else pl.DataFrame(schema=SUMMARY_SCHEMA))
    eval_runs = pl.DataFrame([dict(r) for r in runs], schema=RUNS_SCHEMA)
    return samples, summary, summary, eval_runs
