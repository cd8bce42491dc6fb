"""Distillation nodes, one template for every method id (``offline_kd``, ``grpo``, ``kl_kd``, ``rlad``).

Every method starts from the same ``student_init`` checkpoint, trains on the same filtered RL prompts with the same
step budget and seed (``distill.common``), and differs only by its own block of ``parameters_distill.yml``: the
registered loss and its config (RL methods), or reject-sampled teacher traces + the ``sft`` loss (``offline_kd``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import torch

from rl_distill.engine.config import TrainConfig
from rl_distill.models.factory import check_shared_vocab, load_model_dir, resolve_dtype
from rl_distill.parameters import PARAMETER_BLOCKS
from rl_distill.pipelines.model_io import ModelDir
from rl_distill.pipelines.training import (
    Phase,
    describe_model,
    frame_fingerprint,
    frame_to_examples,
    model_fingerprint,
    run_phases,
    single_task,
    work_dir,
)
from rl_distill.rollout.base import RolloutConfig, build_rollout_engine
from rl_distill.tasks.base import Verdict
from rl_distill.tracking import model_run
from rl_distill.tuning import apply_best_params, best_optim_overrides
from rl_distill.typed_config import ConfigError, from_dict

RL_METHODS = ("grpo", "kl_kd", "rlad")
METHODS = ("offline_kd", *RL_METHODS)


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` on top of ``base``, recursively for nested mappings.

    >>> deep_merge({"a": 1, "o": {"lr": 1, "b": 2}}, {"o": {"lr": 3}})
    {'a': 1, 'o': {'lr': 3, 'b': 2}}
    """
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@dataclass(frozen=True)
class MethodParams:
    """One method's block: ``loss`` (name + config; RL methods), ``train`` overrides of ``distill.common``,
    and for ``offline_kd`` the reject-sampling settings. ``use_tuned_params`` (rlad) merges the Optuna study's
    best parameters from ``tuned_params_path`` into the loss config and optimizer."""

    loss: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    samples_per_prompt: int = 4
    sample_temperature: float = 1.0
    use_tuned_params: bool = False
    tuned_params_path: str = "data/07_model_output/best_rlad_params.json"

    def train_config(self, common: Mapping[str, Any], method: str, where: str) -> TrainConfig:
        merged = deep_merge(common, self.train)
        if method == "offline_kd":
            merged["loss"] = {"name": "sft"}
        else:
            if not self.loss or self.loss.get("name") != method:
                raise ConfigError(f"{where}.loss.name must be '{method}' (one id per method), got {self.loss!r}")
            merged["loss"] = self.loss
            if self.use_tuned_params:
                merged = _apply_tuned(merged, Path(self.tuned_params_path), where)
        return from_dict(TrainConfig, merged, where=where)


def _apply_tuned(train: dict[str, Any], path: Path, where: str) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(f"{where}.use_tuned_params is true but {path} does not exist: run "
                          "`kedro run --pipelines tuning` first, or set use_tuned_params: false")
    return apply_tuned_params(train, json.loads(path.read_text()))


def apply_tuned_params(train: Mapping[str, Any], best: Mapping[str, Any]) -> dict[str, Any]:
    """A train block with the tuned loss parameters (alpha, eps_high) and learning rate of ``best`` merged in."""
    out = copy.deepcopy(dict(train))
    loss = dict(out["loss"])
    loss["config"] = apply_best_params(loss.get("config", {}), best)
    out["loss"] = loss
    lr = best_optim_overrides(best)
    if lr:
        out["optimizer"] = {**out.get("optimizer", {}), **lr}
    return out


@PARAMETER_BLOCKS.register("distill")
def validate_distill(block: Mapping[str, Any], where: str) -> None:
    unknown = sorted(set(block) - {"common", *METHODS})
    if unknown:
        raise ConfigError(f"{where}: unknown key '{unknown[0]}'. Valid keys: common, {', '.join(METHODS)}.")
    for method in METHODS:
        if method in block:
            params = from_dict(MethodParams, block[method], where=f"{where}.{method}")
            if not (method == "rlad" and params.use_tuned_params):
                params.train_config(block.get("common", {}), method, f"{where}.{method}")


def reject_sample_teacher(teacher_model: ModelDir, rl_prompts: pl.DataFrame, tokenizer: Any,
                          common: Mapping[str, Any], params: Mapping[str, Any]) -> pl.DataFrame:
    """Offline KD data: ``samples_per_prompt`` teacher samples per RL prompt, keep the verified-correct ones
    (one per distinct completion) as SFT traces (method.md section 4)."""
    cfg = from_dict(MethodParams, params, where="parameters_distill.yml:distill.offline_kd")
    train_cfg = cfg.train_config(common, "offline_kd", "parameters_distill.yml:distill.offline_kd")
    teacher, _ = load_model_dir(teacher_model.path)
    task = single_task(rl_prompts)
    examples = frame_to_examples(rl_prompts)
    rollout = RolloutConfig(group_size=cfg.samples_per_prompt, temperature=cfg.sample_temperature,
                            max_new_tokens=train_cfg.rollout.max_new_tokens)
    engine = build_rollout_engine(rollout)
    torch.manual_seed(train_cfg.seed)
    rows = []
    for lo in range(0, len(examples), 32):
        chunk = examples[lo:lo + 32]
        batch = engine.generate(teacher, tokenizer, [e.prompt for e in chunk], rollout)
        seen = set()
        for text, i in zip(batch.texts, batch.prompt_index.tolist()):
            ex = chunk[i]
            if (ex.id, text) in seen or task.verify(text, ex.answer) != Verdict.CORRECT:
                continue
            seen.add((ex.id, text))
            rows.append({"id": f"{ex.id}#t{len(seen)}", "task": ex.task, "difficulty": ex.difficulty,
                         "prompt": ex.prompt, "trace": text, "answer": ex.answer})
    if not rows:
        raise ValueError("offline_kd: the teacher solved none of the RL prompts in its samples; nothing to distil. "
                         "Raise distill.offline_kd.samples_per_prompt or train the teacher longer.")
    return pl.DataFrame(rows)


def distill_student(student_init_model: ModelDir, teacher_model: ModelDir, train_data: pl.DataFrame,
                    val_examples: pl.DataFrame, tokenizer: Any, common: Mapping[str, Any],
                    params: Mapping[str, Any], method: str) -> ModelDir:
    """Train one method from ``student_init`` in a nested MLflow run named by the method id."""
    where = f"parameters_distill.yml:distill.{method}"
    cfg = from_dict(MethodParams, params, where=where)
    train_cfg = cfg.train_config(common, method, where)
    policy, student_tok = load_model_dir(student_init_model.path)
    # Loaded directly in the precision it will score in (no fp32 copy next to a bf16 one).
    teacher_dtype = resolve_dtype(train_cfg.teacher_dtype) if method != "offline_kd" else None
    teacher, teacher_tok = load_model_dir(teacher_model.path, dtype=teacher_dtype)
    check_shared_vocab(teacher_tok, student_tok,
                       names=(f"teacher ({teacher_model.path})", f"student ({student_init_model.path})"))
    reference = load_model_dir(student_init_model.path)[0] if _needs_reference(train_cfg) else None
    alpha = train_cfg.loss.config.get("alpha", 0.5) if method == "rlad" else "n/a"
    tags = {"method": method, "alpha": alpha, "seed": train_cfg.seed,
            "student": describe_model(policy, "student"), "teacher": describe_model(teacher, "teacher")}
    with model_run(method, tags=tags, params={"train": train_cfg, "method": method}) as logger:
        final, _ = run_phases(
            logger=logger, policy=policy, tokenizer=tokenizer, task=single_task(train_data),
            train_examples=frame_to_examples(train_data), val_examples=frame_to_examples(val_examples),
            phases=[Phase(method, train_cfg)],
            output_dir=work_dir(method, train_cfg, model_fingerprint(student_init_model),
                                model_fingerprint(teacher_model), frame_fingerprint(train_data)),
            teacher=teacher if method != "offline_kd" else None, reference=reference)
    return final


def _needs_reference(cfg: TrainConfig) -> bool:
    from rl_distill.core.losses import build_policy_loss

    return bool(getattr(build_policy_loss(cfg.loss.name, cfg.loss.config), "needs_ref", False))
