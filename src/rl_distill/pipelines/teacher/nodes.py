"""Teacher nodes: build the larger tiny model (or reuse ``init_from``), SFT on the curated traces, then GRPO until
validation accuracy stops improving or the step budget ends (the teacher is RL-trained, as in RLAD's setup); or use
the teacher shipped in the repository for exactly this config (:mod:`rl_distill.models.shipped`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from rl_distill.io.model_dir import ModelDir
from rl_distill.models.shipped import plain, verify_shipped
from rl_distill.parameters import PARAMETER_BLOCKS
from rl_distill.pipelines.model_configs import TeacherParams, check_init_from, train_from_scratch
from rl_distill.pipelines.training import Phase
from rl_distill.typed_config import ConfigError, from_dict

log = logging.getLogger(__name__)


@PARAMETER_BLOCKS.register("teacher")
def validate_teacher(block: Mapping[str, Any], where: str) -> None:
    params = from_dict(TeacherParams, block, where=where)
    params.phases(where)
    check_init_from(params.init_from, where)
    if params.shipped is not None and not Path(params.shipped).is_dir():
        raise ConfigError(f"{where}.shipped={params.shipped!r} does not exist; set it to the shipped teacher's "
                          "directory (models/teacher_kk) or to null to train the teacher in the run.")


def shipped_params(teacher: Mapping[str, Any], data_curation: Mapping[str, Any]) -> dict[str, Any]:
    """What a shipped teacher's provenance records: the teacher block (without where it lives) and the data."""
    return {"teacher": {k: v for k, v in teacher.items() if k not in ("shipped", "init_from")},
            "data_curation": dict(data_curation)}


def given_teacher(train_examples: pl.DataFrame, val_examples: pl.DataFrame, tokenizer: Any,
                  params: Mapping[str, Any], data_curation: Mapping[str, Any]) -> ModelDir:
    """The shipped teacher (``teacher.shipped``, verified against its provenance), else :func:`train_teacher`."""
    cfg = from_dict(TeacherParams, params, where="parameters_teacher.yml:teacher")
    if cfg.shipped is None or cfg.init_from is not None:
        return train_teacher(train_examples, val_examples, tokenizer, params)
    record = verify_shipped(Path(cfg.shipped), {"teacher": shipped_params(params, data_curation)["teacher"]},
                            keys=("teacher",))
    if plain(record["params"].get("data_curation")) != plain(dict(data_curation)):
        log.warning("the shipped teacher %s was trained on other data_curation settings than the current ones; "
                    "its vocabulary is checked, but retrain it (`kedro run --pipelines teacher`) for a clean "
                    "comparison", cfg.shipped)
    return train_from_scratch("teacher", cfg.shipped, cfg.model, [], train_examples, val_examples, tokenizer)


def train_teacher(train_examples: pl.DataFrame, val_examples: pl.DataFrame, tokenizer: Any,
                  params: Mapping[str, Any]) -> ModelDir:
    """SFT then GRPO in one nested MLflow run named ``teacher``; returns the final HF directory."""
    cfg = from_dict(TeacherParams, params, where="parameters_teacher.yml:teacher")
    sft, grpo = cfg.phases()
    return train_from_scratch("teacher", cfg.init_from, cfg.model, [Phase("sft", sft), Phase("grpo", grpo)],
                              train_examples, val_examples, tokenizer)
