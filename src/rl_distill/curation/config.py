"""The typed parameters of the ``data_curation`` pipeline (``conf/*/parameters_data_curation.yml``).

Each default lives here once. Building the config also builds every task spec's task (validating its ``params``
through the task's own config), so a misspelled task name or parameter fails when the Kedro context is created.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rl_distill.models.factory import check_local_model_path
from rl_distill.models.prompt_format import PromptFormat
from rl_distill.registry import UnknownNameError
from rl_distill.tasks.base import ON_BAD_ROW
from rl_distill.tasks.registry import get_task
from rl_distill.typed_config import ConfigError, check_choice, check_range


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """One task family to generate or load.

    ``difficulties``: difficulty levels (K&K: people; arithmetic: digits; jsonl: the value of ``difficulty_field``,
    or a label). ``n_per_difficulty``: rows to generate per level before curation (jsonl: at most this many rows).
    ``params``: the task's own config (e.g. K&K ``max_depth``). ``subset``: a label for this spec (default: the task
    name), so one task can appear twice, e.g. ``knights_knaves`` and ``knights_knaves_nested`` at n=3. Splits are
    stratified by (subset, difficulty).
    """

    name: str
    difficulties: tuple[int, ...] = (2, 3)
    n_per_difficulty: int = 1000
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    subset: str | None = None

    def __post_init__(self) -> None:
        if not self.difficulties:
            raise ConfigError("difficulties: give at least one difficulty level.")
        if len(set(self.difficulties)) != len(self.difficulties):
            raise ConfigError(f"difficulties: {list(self.difficulties)} repeats a level.")
        check_range("n_per_difficulty", self.n_per_difficulty, 1)
        try:
            get_task(self.name, **self.params)  # unknown task names / params fail here
        except UnknownNameError as exc:
            raise ConfigError(f"name: {exc}") from None

    @property
    def label(self) -> str:
        return self.subset or self.name


@dataclasses.dataclass(frozen=True)
class SplitConfig:
    """Rows per (subset, difficulty) for val and test; the rest is train.

    When a level has too few distinct rows (K&K n=2 has only ~1000 distinct puzzles), val and test shrink
    proportionally so that at least ``min_train_fraction`` of the level stays in train; the statistics table
    reports it (``eval_scaled``).
    """

    val_per_difficulty: int = 200
    test_per_difficulty: int = 200
    min_train_fraction: float = 0.5

    def __post_init__(self) -> None:
        check_range("val_per_difficulty", self.val_per_difficulty, 0)
        check_range("test_per_difficulty", self.test_per_difficulty, 0)
        check_range("min_train_fraction", self.min_train_fraction, 0.0, 1.0)


@dataclasses.dataclass(frozen=True)
class DataCurationConfig:
    """Top-level block ``data_curation``.

    ``max_tokens``: length budget of ``<bos> + prompt + trace + <eos>`` in tokens; longer rows are dropped.
    ``self_correction_rate``: per-step probability of a "wait," self-correction in ``trace`` (``trace_clean`` has
    none). ``on_bad_row``: "error" (fail naming file, line and field) or "skip" (skip and count) for loaded files.
    ``tokenizer_path``: an HF tokenizer directory or hub id to use instead of building the char-level one (a local
    path must exist). ``prompt_format``: how prompts reach the model (chat template, system prompt;
    :class:`rl_distill.models.prompt_format.PromptFormat`).
    ``workers``: processes for generation (1 = in-process). ``chunk_size``: rows per generation chunk (each chunk
    has its own derived seed, so results do not depend on ``workers``). ``log_to_mlflow``: log the statistics
    table to the active MLflow run.
    """

    tasks: tuple[TaskSpec, ...] = (TaskSpec(name="knights_knaves"),)
    max_tokens: int = 256
    split: SplitConfig = dataclasses.field(default_factory=SplitConfig)
    seed: int = 0
    self_correction_rate: float = 0.1
    on_bad_row: str = "error"
    tokenizer_path: str | None = None
    prompt_format: PromptFormat = dataclasses.field(default_factory=PromptFormat)
    workers: int = 1
    chunk_size: int = 5000
    log_to_mlflow: bool = True

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ConfigError("tasks: give at least one task spec.")
        strata = [(spec.label, d) for spec in self.tasks for d in spec.difficulties]
        repeated = sorted({s for s in strata if strata.count(s) > 1})
        if repeated:
            raise ConfigError(f"tasks: (subset, difficulty) {repeated[0]} appears twice; give one spec a `subset`.")
        check_range("max_tokens", self.max_tokens, 8)
        check_range("self_correction_rate", self.self_correction_rate, 0.0, 1.0)
        check_choice("on_bad_row", self.on_bad_row, ON_BAD_ROW)
        check_range("workers", self.workers, 1)
        check_range("chunk_size", self.chunk_size, 1)
        check_local_model_path("tokenizer_path", self.tokenizer_path)
