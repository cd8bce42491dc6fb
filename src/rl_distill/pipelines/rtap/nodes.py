"""R-TAP node: from the same ``student_init`` and RL prompts as the distillation methods, train the confidence
generator (stage 1, its own nested MLflow run ``rtap_confidence``) and then the policy with recursive think-answer
rollouts and R-TAP rewards (stage 2, nested run ``rtap``). See :mod:`rl_distill.rtap` (arXiv 2603.02099).

The GRPO stage's training block is ``distill.common`` (same prompts, budget and seed as single-pass GRPO) with
``rtap.train`` on top, so the report compares R-TAP and GRPO on equal terms.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from rl_distill.engine.method_params import deep_merge
from rl_distill.io.model_dir import ModelDir
from rl_distill.known_methods import run_tag_keys
from rl_distill.models.factory import load_model_dir
from rl_distill.parameters import PARAMETER_BLOCKS
from rl_distill.pipelines.training import (
    RUN_FILE,
    describe_model,
    frame_fingerprint,
    frame_to_examples,
    model_fingerprint,
    single_task,
    work_dir,
)
from rl_distill.rtap import RTAPConfig, train_rtap
from rl_distill.tracking import detached_run, model_run
from rl_distill.typed_config import ConfigError, from_dict

CONFIDENCE_METRICS_FILE = "confidence_metrics.json"


def rtap_config(common: Mapping[str, Any], block: Mapping[str, Any], where: str) -> RTAPConfig:
    """``rtap`` block with its ``train`` laid over ``distill.common``."""
    block = dict(block)
    block["train"] = deep_merge(common, block.get("train", {}))
    return from_dict(RTAPConfig, block, where=where)


@PARAMETER_BLOCKS.register("rtap")
def validate_rtap(block: Mapping[str, Any], where: str) -> None:
    # distill.common is validated with the distill block; here the rtap keys themselves.
    from_dict(RTAPConfig, {k: v for k, v in block.items() if k != "train"}, where=where)


def split_questions(cfg: RTAPConfig, rl_prompts: pl.DataFrame, train_examples: pl.DataFrame) -> pl.DataFrame | None:
    """The training split's rows of the RL prompts' task family (the one verifier a run trains with) where
    ``rtap.confidence.questions`` is ``train_examples``; None where stage 1 reads the RL prompts themselves."""
    if cfg.confidence.questions == "rl_prompts":
        return None
    families = sorted(set(rl_prompts["task"].to_list()))
    rows = train_examples.filter(pl.col("task").is_in(families))
    if rows.is_empty():
        raise ConfigError(f"rtap.confidence.questions='train_examples' but the training split holds no example of "
                          f"the RL prompts' task {families}; set rtap.confidence.questions: rl_prompts.")
    return rows


def shared_stage1_dir(cfg: RTAPConfig, student_init_model: ModelDir, rl_prompts: pl.DataFrame,
                      val_examples: pl.DataFrame, train_examples: pl.DataFrame) -> Path:
    """A work dir for stage 1 keyed by everything it reads (C_phi's config, the sampling settings, the start model,
    its questions and the held-out ones), not by the training seed: the benchmark's seeds share one stage 1."""
    split = split_questions(cfg, rl_prompts, train_examples)
    return work_dir("rtap-stage1", cfg.confidence, cfg.train.rollout, model_fingerprint(student_init_model),
                    frame_fingerprint(rl_prompts if split is None else split), frame_fingerprint(val_examples))


def train_rtap_student(student_init_model: ModelDir, rl_prompts: pl.DataFrame, val_examples: pl.DataFrame,
                       tokenizer: Any, common: Mapping[str, Any], params: Mapping[str, Any],
                       train_examples: pl.DataFrame, stage1_dir: Path | None = None) -> ModelDir:
    """Stage 1 + stage 2 from ``student_init``; returns the trained policy's HF directory. ``train_examples`` (the
    SFT training split) is read only where ``rtap.confidence.questions`` is ``train_examples``. ``stage1_dir``
    (see :func:`shared_stage1_dir`) is left in place for the next run that shares it; by default stage 1 lives in
    this run's work dir and is removed with its checkpoints."""
    cfg = rtap_config(common, params, where="parameters_rtap.yml:rtap")
    split = split_questions(cfg, rl_prompts, train_examples)
    policy, _ = load_model_dir(student_init_model.path)
    task = single_task(rl_prompts)
    # the split's ids join the work-dir hash only where stage 1 reads it
    data = [frame_fingerprint(rl_prompts)] + ([] if split is None else [frame_fingerprint(split)])
    out = work_dir("rtap", cfg, model_fingerprint(student_init_model), *data)
    tags = {"method": "rtap", **dict.fromkeys(run_tag_keys(), "n/a"), "seed": cfg.train.seed,
            "student": describe_model(policy, "student"), "teacher": "none"}
    with detached_run("rtap_confidence", tags={**tags, "method": "rtap_confidence"},
                      params={"confidence": cfg.confidence, "cycles": cfg.cycles}) as conf_logger, \
            model_run("rtap", tags=tags, params={"train": cfg.train, "cycles": cfg.cycles,
                                                 "rewards": cfg.rewards}) as logger:
        result = train_rtap(policy=policy, tokenizer=tokenizer, task=task,
                            train_examples=frame_to_examples(rl_prompts), val_examples=frame_to_examples(val_examples),
                            config=cfg, output_dir=out,
                            split_examples=None if split is None else frame_to_examples(split), stage1_dir=stage1_dir,
                            log_fn=lambda m, s: logger.log_metrics(m, step=s),
                            confidence_log_fn=lambda m, s: conf_logger.log_metrics(m, step=s))
        conf_logger.log_artifact(result.confidence_dir, "confidence_generator")
        final = ModelDir(result.train.final_model_dir).check()
        (final.path / RUN_FILE).write_text(json.dumps({"run_id": logger.run_id}))
        # C_phi's held-out AUROC / ECE beside the policy, for the reports (the benchmark reads them per seed).
        (final.path / CONFIDENCE_METRICS_FILE).write_text(json.dumps(result.confidence_metrics, indent=1))
        logger.log_model(final.path)
    # Done: a re-run trains again instead of silently reusing this result (see training.run_phases).
    for leftover in ("checkpoints", "confidence_stage1"):
        shutil.rmtree(out / leftover, ignore_errors=True)
    return final
