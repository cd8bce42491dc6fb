"""Teacher node: build the larger tiny model (or reuse ``init_from``), SFT on the curated traces, then GRPO until
validation accuracy stops improving or the step budget ends (the teacher is RL-trained, as in RLAD's setup)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from rl_distill.io.model_dir import ModelDir
from rl_distill.parameters import PARAMETER_BLOCKS
from rl_distill.pipelines.model_configs import TeacherParams, check_init_from, train_from_scratch
from rl_distill.pipelines.training import Phase
from rl_distill.typed_config import from_dict


@PARAMETER_BLOCKS.register("teacher")
def validate_teacher(block: Mapping[str, Any], where: str) -> None:
    params = from_dict(TeacherParams, block, where=where)
    params.phases(where)
    check_init_from(params.init_from, where)


def train_teacher(train_examples: pl.DataFrame, val_examples: pl.DataFrame, tokenizer: Any,
                  params: Mapping[str, Any]) -> ModelDir:
    """SFT then GRPO in one nested MLflow run named ``teacher``; returns the final HF directory."""
    cfg = from_dict(TeacherParams, params, where="parameters_teacher.yml:teacher")
    sft, grpo = cfg.phases()
    return train_from_scratch("teacher", cfg.init_from, cfg.model, [Phase("sft", sft), Phase("grpo", grpo)],
                              train_examples, val_examples, tokenizer)
