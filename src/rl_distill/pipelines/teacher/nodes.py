"""Teacher node: build the larger tiny model (or reuse ``init_from``), SFT on the curated traces, then GRPO until
validation accuracy stops improving or the step budget ends (the teacher is RL-trained, as in RLAD's setup)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from rl_distill.models.factory import build_model, check_shared_vocab, load_model_dir
from rl_distill.parameters import PARAMETER_BLOCKS
from rl_distill.pipelines.model_configs import TeacherParams, check_init_from
from rl_distill.pipelines.model_io import ModelDir
from rl_distill.pipelines.training import (
    Phase,
    describe_model,
    frame_fingerprint,
    frame_to_examples,
    run_phases,
    single_task,
    work_dir,
)
from rl_distill.tracking import model_run
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
    if cfg.init_from is not None:
        _, teacher_tok = load_model_dir(cfg.init_from)
        check_shared_vocab(teacher_tok, tokenizer, names=(f"teacher ({cfg.init_from})", "project tokenizer"))
        return ModelDir(cfg.init_from).check()
    sft, grpo = cfg.phases()
    policy = build_model(cfg.model, tokenizer)
    desc = describe_model(policy, "teacher")
    tags = {"method": "teacher", "seed": grpo.seed, "teacher": desc, "student": desc, "alpha": "n/a"}
    with model_run("teacher", tags=tags, params={"model": cfg.model, "sft": sft, "grpo": grpo}) as logger:
        final, _ = run_phases(
            logger=logger, policy=policy, tokenizer=tokenizer, task=single_task(train_examples),
            train_examples=frame_to_examples(train_examples), val_examples=frame_to_examples(val_examples),
            phases=[Phase("sft", sft), Phase("grpo", grpo)],
            output_dir=work_dir("teacher", cfg.model, sft, grpo, frame_fingerprint(train_examples)))
    return final
