"""The typed ``tuning`` parameter block: study, storage, sampler, pruner and the search space as data.

One job: turn ``parameters_tuning.yml:tuning`` into a frozen :class:`TuningConfig` and reject bad input (an
alpha range outside [0, 1], low > high, an unknown parameter, sampler or pruner name, bad sampler/pruner
kwargs, a test metric as the objective) with a :class:`~rl_distill.typed_config.ConfigError` that names the
value, before any trial.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna

from rl_distill.tuning.factories import PRUNERS, SAMPLERS, build_pruner, build_sampler
from rl_distill.typed_config import ConfigError, check_choice, check_range, from_dict


@dataclass(frozen=True)
class TunableParam:
    """Where a tunable parameter may range and which config it overrides (``loss`` or ``optim``)."""

    lo: float
    hi: float
    lo_open: bool
    hi_open: bool
    target: str
    doc: str


# The parameters a study may tune: RLAD's teacher-mixture coefficient alpha (method.md section 3, paper Eq.
# 3-5: alpha = 1 is GRPO, alpha -> 0 anchors to the teacher), the upper clip epsilon, and the learning rate.
TUNABLE_PARAMS: dict[str, TunableParam] = {
    "alpha": TunableParam(0.0, 1.0, False, False, "loss", "weight on the old policy in the RLAD anchor"),
    "eps_high": TunableParam(0.0, 1.0, True, False, "loss", "upper clip epsilon of the RLAD surrogate"),
    "lr": TunableParam(0.0, 1.0, True, True, "optim", "optimizer learning rate"),
}


@dataclass(frozen=True)
class ParamSpec:
    """A float range ``[low, high]``, log-scaled or on a grid of ``step`` (not both, as in Optuna)."""

    low: float
    high: float
    log: bool = False
    step: float | None = None

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ConfigError(f"low={self.low!r} > high={self.high!r}; set low <= high.")
        if self.log and self.low <= 0:
            raise ConfigError(f"log: true needs low > 0, got low={self.low!r}.")
        if self.log and self.step is not None:
            raise ConfigError(f"log: true and step={self.step!r} cannot be combined; drop one.")
        if self.step is not None:
            check_range("step", self.step, 0.0, lo_open=True)


@dataclass(frozen=True)
class NamedFactory:
    """A registered sampler or pruner name and the keyword arguments for its constructor."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TuningConfig:
    """An Optuna study over RLAD's alpha (and optionally eps_high, lr), stored in SQLite and resumable.

    ``metric`` is the validation metric each trial reports every ``eval_every`` of its ``steps_per_trial``
    training steps; the trial's value is its last report. Test metrics are refused: tuning on test data
    leaks it.
    """

    study_name: str = "rlad_alpha"
    storage_path: str = "data/07_model_output/optuna/rlad_alpha.db"
    n_trials: int = 12
    timeout_s: float | None = None
    seed: int = 0
    direction: str = "maximize"
    metric: str = "val/accuracy"
    method: str = "rlad"
    steps_per_trial: int = 40
    eval_every: int = 10
    sampler: NamedFactory = NamedFactory("tpe", {"n_startup_trials": 4})
    pruner: NamedFactory = NamedFactory("median", {"n_startup_trials": 3, "n_warmup_steps": 10})
    search_space: dict[str, ParamSpec] = field(default_factory=lambda: {"alpha": ParamSpec(0.0, 1.0)})

    def __post_init__(self) -> None:
        if not self.study_name.strip():
            raise ConfigError("study_name='' is empty; name the study (it keys the SQLite study and runs).")
        if not self.storage_path.endswith(".db"):
            raise ConfigError(f"storage_path={self.storage_path!r} should be a SQLite file ending in '.db'.")
        check_range("n_trials", self.n_trials, 1)
        if self.timeout_s is not None:
            check_range("timeout_s", self.timeout_s, 0.0, lo_open=True)
        check_choice("direction", self.direction, ("maximize", "minimize"))
        if not self.metric.startswith("val/"):
            raise ConfigError(f"metric={self.metric!r}: tune on a validation metric ('val/...'), "
                              "never on test data.")
        check_range("steps_per_trial", self.steps_per_trial, 1)
        check_range("eval_every", self.eval_every, 1, self.steps_per_trial)
        check_choice("sampler.name", self.sampler.name, SAMPLERS.names())
        check_choice("pruner.name", self.pruner.name, PRUNERS.names())
        if not self.search_space:
            names = ", ".join(TUNABLE_PARAMS)
            raise ConfigError(f"search_space is empty; give at least one of: {names}.")
        for name, spec in self.search_space.items():
            check_choice("search_space parameter", name, TUNABLE_PARAMS)
            bounds = TUNABLE_PARAMS[name]
            for end in ("low", "high"):
                check_range(f"search_space.{name}.{end}", getattr(spec, end), bounds.lo, bounds.hi,
                            lo_open=bounds.lo_open, hi_open=bounds.hi_open)

    def search_space_dict(self) -> dict[str, dict[str, Any]]:
        """The search space as plain data (stored on the study to detect a changed space on resume)."""
        return {name: dataclasses.asdict(spec) for name, spec in sorted(self.search_space.items())}

    def build_sampler(self, seed_offset: int = 0) -> optuna.samplers.BaseSampler:
        """The configured sampler seeded with ``seed + seed_offset`` (the offset keeps a resumed study from
        replaying the first run's random start-up points)."""
        seed = self.seed + seed_offset
        return build_sampler(self.sampler.name, self.sampler.kwargs, self.search_space, seed)

    def build_pruner(self) -> optuna.pruners.BasePruner:
        """The configured pruner."""
        return build_pruner(self.pruner.name, self.pruner.kwargs)


def load_tuning_config(block: TuningConfig | Mapping[str, Any] | None,
                       where: str = "parameters_tuning.yml:tuning") -> TuningConfig:
    """Validate ``block`` into a :class:`TuningConfig`, also constructing the sampler and pruner once so bad
    kwargs fail here, with ``where`` in the message."""
    cfg = block if isinstance(block, TuningConfig) else from_dict(TuningConfig, block, where=where)
    try:
        cfg.build_sampler()
        cfg.build_pruner()
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    return cfg


def validate_tuning_block(block: Mapping[str, Any], where: str) -> None:
    """Validator for ``rl_distill.parameters.PARAMETER_BLOCKS`` (register it under ``"tuning"``): the block itself,
    then that ``method`` is a registered distill method whose spec declares every searched loss parameter tunable
    (``lr`` always is)."""
    from rl_distill.known_methods import distill_methods

    cfg = load_tuning_config(block, where=where)
    methods = distill_methods()
    if cfg.method not in methods:
        raise ConfigError(f"{where}.method={cfg.method!r} is not a registered distill method; valid: "
                          f"{', '.join(methods)}.")
    tunable = {*methods[cfg.method].tunable, "lr"}
    for name in sorted(cfg.search_space):
        if name not in tunable:
            raise ConfigError(f"{where}.search_space.{name}: method '{cfg.method}' does not tune {name!r}; its "
                              f"tunable parameters: {', '.join(sorted(tunable))}.")


def suggest_params(trial: optuna.Trial, search_space: Mapping[str, ParamSpec]) -> dict[str, float]:
    """Ask ``trial`` for one value per parameter of ``search_space``, in sorted (stable) order."""
    return {
        name: trial.suggest_float(name, spec.low, spec.high, log=spec.log, step=spec.step)
        for name, spec in sorted(search_space.items())
    }
