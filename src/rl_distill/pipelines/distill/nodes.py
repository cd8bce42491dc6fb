"""Distillation nodes, one template for every registered ``rl`` / ``sft`` method (:mod:`rl_distill.core.methods`).

Every method starts from the same ``student_init`` checkpoint, trains on the same filtered RL prompts with the same
step budget and seed (``distill.common``), and differs only by its registered spec and its own block of
``parameters_distill.yml``. The nodes are thin adapters: parameters -> :class:`~rl_distill.engine.method_params.
MethodPlan` -> one library call; nothing here branches on a method id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from rl_distill.core.methods import METHODS
from rl_distill.engine.method_params import MethodPlan, plan_method
from rl_distill.engine.reject_sampling import reject_sample
from rl_distill.io.model_dir import ModelDir
from rl_distill.known_methods import distill_methods, run_tag_keys
from rl_distill.models.factory import check_shared_vocab, load_model_dir, resolve_dtype
from rl_distill.parameters import PARAMETER_BLOCKS, Typed
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
from rl_distill.tracking import model_run
from rl_distill.tuning import apply_best_params, best_optim_overrides
from rl_distill.typed_config import ConfigError, from_dict

WHERE = "parameters_distill.yml:distill"


def tuned_merger(best: Mapping[str, Any] | None, where: str):
    """A function laying the study record ``best`` (``best_<id>_params``) on a raw training block."""

    def merge(train: dict[str, Any]) -> dict[str, Any]:
        if best is None:
            raise ConfigError(f"{where}.use_tuned_params is true but no tuned parameters exist yet: run "
                              "`kedro run --pipelines tuning` first, or set use_tuned_params: false")
        loss = dict(train["loss"])
        loss["config"] = apply_best_params(loss.get("config", {}), best)
        lr = best_optim_overrides(best)
        return {**train, "loss": loss, **({"optimizer": {**train.get("optimizer", {}), **lr}} if lr else {})}

    return merge


def method_plan(method: str, common: Mapping[str, Any], block: Any,
                best: Mapping[str, Any] | None = None) -> MethodPlan:
    """The typed plan of ``distill.<method>`` over ``distill.common`` (tuned parameters on top when asked).
    ``block`` is the plan itself when the project hook parsed it at context creation, else the raw block."""
    where = f"{WHERE}.{method}"
    return plan_method(METHODS.get(method), common, block, where, tuned=tuned_merger(best, where))


@PARAMETER_BLOCKS.register("distill")
def validate_distill(block: Mapping[str, Any], where: str) -> Typed:
    from rl_distill.engine.config import TrainConfig

    methods = distill_methods()
    unknown = sorted(set(block) - {"common", *methods})
    if unknown:
        raise ConfigError(f"{where}: unknown key '{unknown[0]}'. Valid keys: common, {', '.join(methods)} "
                          "(the registered rl / sft methods).")
    common = block.get("common", {})
    from_dict(TrainConfig, common, where=f"{where}.common")  # a typo in common is reported under common
    plans = Typed()
    for method, spec in methods.items():
        if method not in block:
            raise ConfigError(f"{where}: method '{method}' is registered but has no block; add "
                              f"`{method}: {{loss: {{name: {spec.loss}}}}}` to conf/base/parameters_distill.yml.")
        plans[f"distill.{method}"] = plan_method(spec, common, block[method], f"{where}.{method}")
    return plans  # tuned values (use_tuned_params) are merged and checked when the node reads them


def reject_sample_teacher(teacher_model: ModelDir, rl_prompts: pl.DataFrame, tokenizer: Any,
                          common: Mapping[str, Any], params: Mapping[str, Any], method: str) -> pl.DataFrame:
    """Offline-KD data for an ``sft`` method: verified-correct teacher samples of the RL prompts (method.md sec. 4)."""
    plan = method_plan(method, common, params)
    teacher, _ = load_model_dir(teacher_model.path)
    rows = reject_sample(teacher, tokenizer, single_task(rl_prompts), frame_to_examples(rl_prompts),
                         plan.params.sample, plan.train.rollout.max_new_tokens, plan.train.seed)
    if not rows:
        raise ValueError(f"{method}: the teacher solved none of the RL prompts in its samples; nothing to distil. "
                         f"Raise distill.{method}.sample.samples_per_prompt or train the teacher longer.")
    return pl.DataFrame(rows)


def distill_student(student_init_model: ModelDir, teacher_model: ModelDir, train_data: pl.DataFrame,
                    val_examples: pl.DataFrame, tokenizer: Any, common: Mapping[str, Any],
                    params: Any, best_params: Mapping[str, Any] | None, method: str) -> ModelDir:
    """Train one method from ``student_init`` in a nested MLflow run named by the method id."""
    plan = method_plan(method, common, params, best_params)
    return train_plan(plan, student_init_model, teacher_model, train_data, val_examples, tokenizer)


def train_plan(plan: MethodPlan, student_init_model: ModelDir, teacher_model: ModelDir, train_data: pl.DataFrame,
               val_examples: pl.DataFrame, tokenizer: Any) -> ModelDir:
    """Train ``plan`` (one method, one seed) from ``student_init``; its nested MLflow run is named by the method id
    and tagged with the seed. Returns the final HF directory (which records its run id)."""
    method, train_cfg = plan.spec.name, plan.train
    uses_teacher = plan.spec.needs_teacher and plan.spec.trainer == "rl"
    policy, student_tok = load_model_dir(student_init_model.path)
    # Loaded directly in the precision it will score in (no fp32 copy next to a bf16 one).
    teacher, teacher_tok = load_model_dir(teacher_model.path,
                                          dtype=resolve_dtype(train_cfg.teacher_dtype) if uses_teacher else None)
    check_shared_vocab(teacher_tok, student_tok,
                       names=(f"teacher ({teacher_model.path})", f"student ({student_init_model.path})"))
    reference = load_model_dir(student_init_model.path)[0] if _needs_reference(train_cfg) else None
    tags = {"method": method, **plan.tag_values(run_tag_keys()), "seed": train_cfg.seed,
            "student": describe_model(policy, "student"), "teacher": describe_model(teacher, "teacher")}
    with model_run(method, tags=tags, params={"train": train_cfg, "method": method}) as logger:
        final, _ = run_phases(
            name=method, logger=logger, policy=policy, tokenizer=tokenizer, task=single_task(train_data),
            train_examples=frame_to_examples(train_data), val_examples=frame_to_examples(val_examples),
            phases=[Phase(method, train_cfg)],
            output_dir=work_dir(method, train_cfg, model_fingerprint(student_init_model),
                                model_fingerprint(teacher_model), frame_fingerprint(train_data)),
            teacher=teacher if uses_teacher else None, reference=reference)
    return final


def _needs_reference(cfg: Any) -> bool:
    """Whether the loss needs a separate reference model (with LoRA the trainer uses the base, adapters off)."""
    from rl_distill.core.losses import build_policy_loss

    if cfg.lora is not None:
        return False
    return bool(getattr(build_policy_loss(cfg.loss.name, cfg.loss.typed), "needs_ref", False))
