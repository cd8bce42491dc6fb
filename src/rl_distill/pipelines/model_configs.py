"""The pipelines that train a model from scratch (teacher, student_init): typed parameter blocks and the one
function both nodes call.

``{init_from, model, <phases>}`` -> frozen configs, validated when the Kedro context is created. A set ``init_from``
must name an existing complete HF directory (the error names the path and the parameter) whose tokenizer matches the
project's; it is then used as is, and nothing is trained.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from rl_distill.engine.config import TrainConfig
from rl_distill.io.model_dir import ModelDir
from rl_distill.known_methods import run_tag_keys
from rl_distill.models.factory import ModelConfig, build_model, check_shared_vocab, load_model_dir
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
from rl_distill.typed_config import ConfigError, from_dict


def check_init_from(path: str | None, where: str) -> None:
    """A configured ``init_from`` must be a complete HF model directory (fail before any training)."""
    if path is None:
        return
    try:
        ModelDir(Path(path)).check()
    except FileNotFoundError as exc:
        raise ConfigError(f"{where}.init_from: {exc}") from exc


def phase_config(block: Mapping[str, Any] | None, where: str, *, sft: bool) -> TrainConfig:
    """A phase's TrainConfig; the SFT phase must use the ``sft`` loss and an RL phase must not."""
    cfg = from_dict(TrainConfig, block, where=where)
    if cfg.is_sft != sft:
        want = "sft" if sft else "an RL loss (grpo, kl_kd, rlad)"
        raise ConfigError(f"{where}.loss.name={cfg.loss.name!r}: this phase needs {want}.")
    return cfg


@dataclass(frozen=True)
class TeacherParams:
    """``parameters_teacher.yml``: the teacher = tiny model from config (or ``init_from``), SFT then GRPO.

    ``shipped``: the directory of the teacher trained with exactly this block and shipped in the repository (with
    its ``provenance.json``); ``kedro run`` uses it, ``kedro run --pipelines teacher`` retrains it.
    """

    init_from: str | None = None
    shipped: str | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    sft: dict[str, Any] = field(default_factory=dict)
    grpo: dict[str, Any] = field(default_factory=dict)

    def phases(self, where: str = "teacher") -> tuple[TrainConfig, TrainConfig]:
        return (phase_config(self.sft, f"{where}.sft", sft=True),
                phase_config({"loss": {"name": "grpo"}, **self.grpo}, f"{where}.grpo", sft=False))


@dataclass(frozen=True)
class StudentInitParams:
    """``parameters_student_init.yml``: the smaller student, briefly SFT'd so it knows the answer format."""

    init_from: str | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    sft: dict[str, Any] = field(default_factory=dict)

    def phase(self, where: str = "student_init") -> TrainConfig:
        return phase_config(self.sft, f"{where}.sft", sft=True)


def train_from_scratch(name: str, init_from: str | None, model_cfg: ModelConfig, phases: list[Phase],
                       train_examples: pl.DataFrame, val_examples: pl.DataFrame, tokenizer: Any) -> ModelDir:
    """``init_from`` if set (vocabulary checked against ``tokenizer``), else build ``model_cfg`` and train it through
    ``phases`` in one nested MLflow run named ``name`` (tags: method, seed, student, teacher, alpha)."""
    if init_from is not None:
        _, tok = load_model_dir(init_from)
        check_shared_vocab(tok, tokenizer, names=(f"{name} ({init_from})", "project tokenizer"))
        return ModelDir(init_from).check()
    if model_cfg.source == "pretrained" and (Path(model_cfg.path) / "tokenizer_config.json").exists():
        from transformers import AutoTokenizer

        own = AutoTokenizer.from_pretrained(model_cfg.path)
        check_shared_vocab(own, tokenizer, names=(f"{name}.model ({model_cfg.path})", "project tokenizer"))
    policy = build_model(model_cfg, tokenizer)
    desc = describe_model(policy, name)
    tags = {"method": name, "seed": phases[-1].config.seed, **dict.fromkeys(run_tag_keys(), "n/a"),
            "student": desc if name != "teacher" else "n/a", "teacher": desc if name == "teacher" else "n/a"}
    params = {"model": model_cfg, **{phase.name: phase.config for phase in phases}}
    with model_run(name, tags=tags, params=params) as logger:
        final, _ = run_phases(
            name=name, logger=logger, policy=policy, tokenizer=tokenizer, task=single_task(train_examples),
            train_examples=frame_to_examples(train_examples), val_examples=frame_to_examples(val_examples),
            phases=phases, output_dir=work_dir(name, model_cfg, *[p.config for p in phases],
                                               frame_fingerprint(train_examples)))
    return final
