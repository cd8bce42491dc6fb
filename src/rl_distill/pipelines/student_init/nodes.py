"""Student warm start: the smaller student, briefly SFT'd on the traces so it knows the answer format (a cold start
that is clearly weaker than the teacher, leaving room to distil)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from rl_distill.models.factory import build_model, check_shared_vocab, load_model_dir
from rl_distill.parameters import PARAMETER_BLOCKS
from rl_distill.pipelines.model_configs import StudentInitParams, check_init_from
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


@PARAMETER_BLOCKS.register("student_init")
def validate_student_init(block: Mapping[str, Any], where: str) -> None:
    params = from_dict(StudentInitParams, block, where=where)
    params.phase(where)
    check_init_from(params.init_from, where)


def train_student_init(train_examples: pl.DataFrame, val_examples: pl.DataFrame, tokenizer: Any,
                       params: Mapping[str, Any]) -> ModelDir:
    """Short SFT in one nested MLflow run named ``student_init``; returns the final HF directory."""
    cfg = from_dict(StudentInitParams, params, where="parameters_student_init.yml:student_init")
    if cfg.init_from is not None:
        _, tok = load_model_dir(cfg.init_from)
        check_shared_vocab(tok, tokenizer, names=(f"student ({cfg.init_from})", "project tokenizer"))
        return ModelDir(cfg.init_from).check()
    sft = cfg.phase()
    policy = build_model(cfg.model, tokenizer)
    desc = describe_model(policy, "student")
    tags = {"method": "student_init", "seed": sft.seed, "student": desc, "teacher": "none", "alpha": "n/a"}
    with model_run("student_init", tags=tags, params={"model": cfg.model, "sft": sft}) as logger:
        final, _ = run_phases(
            logger=logger, policy=policy, tokenizer=tokenizer, task=single_task(train_examples),
            train_examples=frame_to_examples(train_examples), val_examples=frame_to_examples(val_examples),
            phases=[Phase("sft", sft)],
            output_dir=work_dir("student_init", cfg.model, sft, frame_fingerprint(train_examples)))
    return final
