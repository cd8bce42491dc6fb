"""Typed parameter blocks shared by the pipelines that train a model from scratch (teacher, student_init).

One job: ``{init_from, model, <phases>}`` -> frozen configs, validated when the Kedro context is created. A set
``init_from`` must name an existing complete HF directory; the error names the path and the parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rl_distill.engine.config import TrainConfig
from rl_distill.models.factory import ModelConfig
from rl_distill.pipelines.model_io import ModelDir
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
    """``parameters_teacher.yml``: the teacher = tiny model from config (or ``init_from``), SFT then GRPO."""

    init_from: str | None = None
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
