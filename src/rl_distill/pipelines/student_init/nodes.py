"""Student warm start: the smaller student, briefly SFT'd on the traces so it knows the answer format (a cold start
that is clearly weaker than the teacher, leaving room to distil)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from rl_distill.io.model_dir import ModelDir
from rl_distill.parameters import PARAMETER_BLOCKS
from rl_distill.pipelines.model_configs import StudentInitParams, check_init_from, train_from_scratch
from rl_distill.pipelines.training import Phase
from rl_distill.typed_config import from_dict


@PARAMETER_BLOCKS.register("student_init")
def validate_student_init(block: Mapping[str, Any], where: str) -> None:
    params = from_dict(StudentInitParams, block, where=where)
    params.phase(where)
    check_init_from(params.init_from, where)


def train_student_init(train_examples: pl.DataFrame, val_examples: pl.DataFrame, tokenizer: Any,
                       params: Mapping[str, Any]) -> ModelDir:
    """Short SFT on the rows ``sft_data`` selects (all by default), in one nested MLflow run named
    ``student_init``; returns the final HF directory."""
    where = "parameters_student_init.yml:student_init"
    cfg = from_dict(StudentInitParams, params, where=where)
    return train_from_scratch("student_init", cfg.init_from, cfg.model, [Phase("sft", cfg.phase())],
                              cfg.sft_data.select(train_examples, where), val_examples, tokenizer,
                              extra_params={"sft_data": cfg.sft_data})
