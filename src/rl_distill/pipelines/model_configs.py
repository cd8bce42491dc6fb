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

import numpy as np
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
from rl_distill.typed_config import ConfigError, check_range, from_dict


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
class SFTData:
    """Which curated training rows the student's cold-start SFT sees: a data asymmetry between the teacher (trained
    on every row) and the student, i.e. knowledge the teacher has and the student's cold start lacks, which only a
    teacher-guided method can hand over during RL (outcome reward alone must rediscover it).

    ``subsets``: the curated subsets (the ``subset`` column, e.g. ``knights_knaves``) it sees; null: all.
    ``withhold``: rows whose prompt contains this string (e.g. the K&K operator ``>``) are withheld, except a
    ``withhold_keep`` fraction of them drawn with ``seed``; null: none withheld.
    """

    subsets: tuple[str, ...] | None = None
    withhold: str | None = None
    withhold_keep: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.subsets is not None and not self.subsets:
            raise ConfigError("student_init.sft_data.subsets=[]: an empty list leaves the student no SFT data; "
                              "name at least one subset, or null for all")
        if self.withhold == "":
            raise ConfigError("student_init.sft_data.withhold='': every prompt contains the empty string; "
                              "give the string to withhold (e.g. '>') or null")
        check_range("student_init.sft_data.withhold_keep", self.withhold_keep, 0.0, 1.0)

    def select(self, train_examples: pl.DataFrame, where: str = "student_init") -> pl.DataFrame:
        """The rows the student's SFT sees. A subset the split lacks is a ConfigError naming the ones it has; so is
        a filter that leaves no row."""
        rows = train_examples
        if self.subsets is not None:
            have = sorted(set(rows["subset"].to_list())) if "subset" in rows.columns else []
            absent = [name for name in self.subsets if name not in have]
            if absent:
                raise ConfigError(f"{where}.sft_data.subsets: {absent} not in the train split, whose subsets are "
                                  f"{have}; name subsets from data_curation.tasks (a task's `subset`, else `name`)")
            rows = rows.filter(pl.col("subset").is_in(list(self.subsets)))
        if self.withhold is not None:
            hit = rows["prompt"].str.contains(self.withhold, literal=True)
            draw = np.random.default_rng(self.seed).random(rows.height) < self.withhold_keep
            rows = rows.filter(~hit | pl.Series(draw))
        if rows.height == 0:
            raise ConfigError(f"{where}.sft_data leaves no training row ({self}); loosen it")
        return rows


@dataclass(frozen=True)
class StudentInitParams:
    """``parameters_student_init.yml``: the smaller student, briefly SFT'd so it knows the answer format, on the
    rows ``sft_data`` selects (all by default)."""

    init_from: str | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    sft: dict[str, Any] = field(default_factory=dict)
    sft_data: SFTData = field(default_factory=SFTData)

    def phase(self, where: str = "student_init") -> TrainConfig:
        return phase_config(self.sft, f"{where}.sft", sft=True)


def train_from_scratch(name: str, init_from: str | None, model_cfg: ModelConfig, phases: list[Phase],
                       train_examples: pl.DataFrame, val_examples: pl.DataFrame, tokenizer: Any,
                       extra_params: Mapping[str, Any] | None = None) -> ModelDir:
    """``init_from`` if set (vocabulary checked against ``tokenizer``), else build ``model_cfg`` and train it through
    ``phases`` in one nested MLflow run named ``name`` (tags: method, seed, student, teacher, alpha; params: the
    model, each phase's config and ``extra_params``)."""
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
    params = {"model": model_cfg, **{phase.name: phase.config for phase in phases}, **(extra_params or {})}
    with model_run(name, tags=tags, params=params) as logger:
        final, _ = run_phases(
            name=name, logger=logger, policy=policy, tokenizer=tokenizer, task=single_task(train_examples),
            train_examples=frame_to_examples(train_examples), val_examples=frame_to_examples(val_examples),
            phases=phases, output_dir=work_dir(name, model_cfg, *[p.config for p in phases],
                                               frame_fingerprint(train_examples)))
    return final
