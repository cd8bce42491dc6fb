"""Nodes of the ``data_curation`` pipeline: parameters -> typed config -> one call each.

Registers the ``data_curation`` parameter block (validated by :class:`.config.DataCurationConfig`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import polars as pl

from rl_distill.curation.config import DataCurationConfig
from rl_distill.curation.curation import curate, split, statistics
from rl_distill.curation.generation import generate_raw
from rl_distill.models.prompt_format import apply_prompt_format, uses_chat_template
from rl_distill.models.tokenizer import alphabet_for, build_tokenizer, load_tokenizer
from rl_distill.parameters import PARAMETER_BLOCKS
from rl_distill.tasks.base import Task
from rl_distill.tasks.registry import get_task
from rl_distill.typed_config import from_dict

logger = logging.getLogger(__name__)
WHERE = "parameters_data_curation.yml:data_curation"


@PARAMETER_BLOCKS.register("data_curation")
def validate_block(block: Mapping[str, Any], where: str) -> None:
    from_dict(DataCurationConfig, block, where=where)


def _config(params: Mapping[str, Any]) -> DataCurationConfig:
    return from_dict(DataCurationConfig, params, where=WHERE)


def _tasks(cfg: DataCurationConfig) -> dict[str, Task]:
    return {spec.label: get_task(spec.name, **spec.params) for spec in cfg.tasks}


def generate_examples(params: Mapping[str, Any]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Generate or load every task spec: (raw_examples, bad rows skipped)."""
    raw, bad = generate_raw(_config(params))
    if bad.height:
        logger.warning("skipped %d bad row(s) (on_bad_row: skip), e.g. %s", bad.height, bad["message"][0])
    logger.info("generated %d raw examples", raw.height)
    return raw, bad


def build_shared_tokenizer(params: Mapping[str, Any]) -> Any:
    """The tokenizer teacher and student share: char-level over the tasks' alphabet, or ``tokenizer_path``; with the
    configured prompt format (chat template, system prompt) applied."""
    cfg = _config(params)
    if cfg.tokenizer_path:
        tokenizer = load_tokenizer(cfg.tokenizer_path)
        source = f"data_curation.tokenizer_path={cfg.tokenizer_path!r}"
    else:
        tokenizer, source = build_tokenizer(alphabet_for(_tasks(cfg).values())), "the char-level tokenizer"
    apply_prompt_format(tokenizer, cfg.prompt_format, source)
    if uses_chat_template(tokenizer):
        logger.info("prompts go through the chat template of %s", source)
    return tokenizer


def curate_examples(raw: pl.DataFrame, tokenizer: Any, params: Mapping[str, Any]
                    ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(curated_examples, drop counts per stratum)."""
    cfg = _config(params)
    curated, drops = curate(raw, tokenizer, _tasks(cfg), cfg.max_tokens)
    logger.info("curated %d of %d raw examples", curated.height, raw.height)
    return curated, drops


def split_examples(curated: pl.DataFrame, params: Mapping[str, Any]
                   ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(train, val, test), stratified by (subset, difficulty), no question in two splits."""
    cfg = _config(params)
    parts = split(curated, cfg.split, cfg.seed)
    return parts["train"], parts["val"], parts["test"]


def summarise_curation(drops: pl.DataFrame, bad_rows: pl.DataFrame, train: pl.DataFrame, val: pl.DataFrame,
                       test: pl.DataFrame, params: Mapping[str, Any]) -> pl.DataFrame:
    """The statistics table; also logged to the active MLflow run (if any) as ``data_curation/curation_stats.csv``."""
    cfg = _config(params)
    stats = statistics(drops, bad_rows, {"train": train, "val": val, "test": test}, cfg.split)
    scaled = stats.filter(pl.col("eval_scaled") & (pl.col("subset") != "all"))
    for subset, difficulty in scaled.select("subset", "difficulty").iter_rows():
        logger.warning("%s difficulty %s has too few distinct rows: val/test shrunk to keep train", subset,
                       difficulty)
    if cfg.log_to_mlflow:
        _log_to_mlflow(stats)
    return stats


def _log_to_mlflow(stats: pl.DataFrame) -> None:
    from rl_distill.tracking import RunLogger, active_run_id

    run_id = active_run_id()
    if run_id is None:  # unit tests, notebooks: nothing to log into
        return
    run = RunLogger(run_id)
    run.log_table_csv(stats, "data_curation/curation_stats.csv")
    total = stats.filter(pl.col("subset") == "all").row(0, named=True)
    run.log_metrics({f"data/{name}_rows": float(total[name]) for name in ("kept", "train", "val", "test")}, step=0)
