"""Tuning node: an Optuna study over RLAD's teacher-mixture coefficient alpha (and optionally eps_high, lr).

Each trial is a short ``rlad`` training from the same ``student_init`` and teacher through the same engine, scored by
validation accuracy (never test accuracy); see :mod:`rl_distill.tuning` for the study, storage and MLflow layout.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from rl_distill.core.methods import METHODS
from rl_distill.engine.method_params import deep_merge, plan_method
from rl_distill.engine.trainer import train
from rl_distill.io.model_dir import ModelDir
from rl_distill.models.factory import load_model_dir, resolve_dtype
from rl_distill.parameters import PARAMETER_BLOCKS
from rl_distill.pipelines.distill.nodes import tuned_merger
from rl_distill.pipelines.training import frame_to_examples, single_task
from rl_distill.tuning import load_study, load_tuning_config, run_study, study_trials_table, training_objective
from rl_distill.tuning import validate_tuning_block as _validate
from rl_distill.typed_config import from_dict

PARAMETER_BLOCKS.register("tuning")(_validate)


def tune_rlad(student_init_model: ModelDir, selected_teacher_model: ModelDir, rl_prompts: pl.DataFrame,
              val_examples: pl.DataFrame, tokenizer: Any, tuning: Mapping[str, Any], common: Mapping[str, Any],
              rlad: Mapping[str, Any]) -> tuple[dict[str, Any], pl.DataFrame]:
    """Run (or resume) the study; returns ``best_rlad_params`` and the trials table (for the alpha sweep)."""
    cfg = load_tuning_config(tuning, where="parameters_tuning.yml:tuning")
    # Trials start from the method's own raw training block (never from earlier tuned values).
    plan = plan_method(METHODS.get(cfg.method), common, rlad, f"parameters_distill.yml:distill.{cfg.method}")
    base = deep_merge(plan.raw_train, {"total_steps": cfg.steps_per_trial, "validation": {"every": cfg.eval_every}})
    task = single_task(rl_prompts)
    train_ex, val_ex = frame_to_examples(rl_prompts), frame_to_examples(val_examples)

    def train_once(params: Mapping[str, Any], log_fn: Any) -> Any:
        from rl_distill.engine.config import TrainConfig

        config = from_dict(TrainConfig, tuned_merger(params, "tuning trial")(base), where="tuning trial")
        policy, _ = load_model_dir(student_init_model.path)  # every trial starts from the same student_init
        teacher, _ = load_model_dir(selected_teacher_model.path, dtype=resolve_dtype(config.teacher_dtype))
        with tempfile.TemporaryDirectory(prefix="rlad-trial-") as tmp:
            return train(policy=policy, tokenizer=tokenizer, task=task, train_examples=train_ex,
                         val_examples=val_ex, config=config, teacher=teacher, log_fn=log_fn,
                         output_dir=Path(tmp), progress=False)

    result = run_study(cfg, training_objective(train_once))
    trials = study_trials_table(load_study(cfg.storage_path, cfg.study_name))
    return result.to_best_params(), trials
