"""The ``evaluation`` parameter block as typed configs, and which catalog dataset holds each evaluated model.

One job: turn ``parameters_evaluation.yml`` into :class:`EvaluationParams` (unknown keys and out-of-range
values fail at context creation, naming the key) and list the models the pipeline evaluates.

The evaluated models are the teacher, the student_init and every registered method
(:func:`rl_distill.known_methods.known_methods`): a new method is evaluated without an edit here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rl_distill.evaluation.samples import EvalConfig
from rl_distill.known_methods import known_methods
from rl_distill.typed_config import ConfigError, check_choice, check_range, from_dict, to_dict

# The models every run has besides the methods -> the catalog dataset of their checkpoint (a ModelDirDataset).
BASE_MODELS: dict[str, str] = {"teacher": "selected_teacher_model", "student_init": "student_init_model"}


def evaluated_models() -> dict[str, str]:
    """model name (= MLflow run name = method id) -> catalog dataset of its checkpoint: :data:`BASE_MODELS`, then
    every registered method's ``<id>.student_model``."""
    return {**BASE_MODELS, **{method: f"{method}.student_model" for method in known_methods()}}


@dataclass(frozen=True)
class BootstrapConfig:
    """Percentile-bootstrap intervals of the summary: ``n_resamples`` resamples of problems, ``level`` coverage."""

    n_resamples: int = 1000
    level: float = 0.95
    seed: int = 0

    def __post_init__(self) -> None:
        check_range("n_resamples", self.n_resamples, 1)
        check_range("level", self.level, 0.0, 1.0, lo_open=True, hi_open=True)


@dataclass(frozen=True)
class EvaluationParams:
    """``evaluation`` block of ``parameters_evaluation.yml``.

    ``decoding`` holds :class:`~rl_distill.evaluation.samples.EvalConfig` (k samples at temperature 0.6 /
    top-p 0.95 plus one greedy sample; method.md section 6) and ``per_model`` overrides its fields for one
    model (e.g. ``rtap: {max_cycles: 4}``). ``ks`` are the pass@k values reported (each <= num_samples).
    ``max_test_examples`` caps the test split, drawn evenly across difficulty levels with
    ``subsample_seed`` (the same problems for every model). ``device``: ``auto`` (CUDA when present), ``cpu``
    or ``cuda``. ``log_to_mlflow``: write ``eval/*`` metrics into each model's training run.
    """

    decoding: EvalConfig = field(default_factory=EvalConfig)
    per_model: dict[str, dict[str, Any]] = field(default_factory=dict)
    ks: tuple[int, ...] = (1,)
    max_test_examples: int | None = None
    subsample_seed: int = 0
    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)
    device: str = "auto"
    log_to_mlflow: bool = True

    def __post_init__(self) -> None:
        if not self.ks:
            raise ConfigError("ks must list at least one k for pass@k, e.g. [1].")
        for k in self.ks:
            check_range("ks[]", k, 1)
        if self.decoding.num_samples and max(self.ks) > self.decoding.num_samples:
            raise ConfigError(f"pass@{max(self.ks)} needs at least {max(self.ks)} samples per problem but "
                              f"decoding.num_samples={self.decoding.num_samples}; raise num_samples or drop k.")
        if self.max_test_examples is not None:
            check_range("max_test_examples", self.max_test_examples, 1)
        check_choice("device", self.device, ("auto", "cpu", "cuda"))
        known = list(evaluated_models())
        for name, overrides in self.per_model.items():
            if name not in known:
                raise ConfigError(f"per_model: unknown model '{name}'. Evaluated models: {', '.join(known)}.")
            if not isinstance(overrides, Mapping):
                raise ConfigError(f"per_model.{name} must be a mapping of decoding fields, got {overrides!r}.")
            self.decoding_for(name)  # fails now, naming the key, rather than in the middle of a run

    def decoding_for(self, model: str) -> EvalConfig:
        """The decoding config of ``model``: ``decoding`` with its ``per_model`` overrides applied."""
        overrides = self.per_model.get(model)
        if not overrides:
            return self.decoding
        return from_dict(EvalConfig, {**to_dict(self.decoding), **overrides}, where=f"per_model.{model}")


def load_params(block: Mapping[str, Any] | None, where: str = "parameters_evaluation.yml:evaluation"
                ) -> EvaluationParams:
    """Validate the ``evaluation`` block into :class:`EvaluationParams` (raises ``ConfigError``)."""
    if isinstance(block, EvaluationParams):  # already parsed when the Kedro context was created
        return block
    return from_dict(EvaluationParams, block or {}, where=where)
