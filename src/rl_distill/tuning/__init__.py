"""Optuna tuning of RLAD's teacher-mixture coefficient alpha: search space as data, a resumable SQLite
study, one nested MLflow run per trial, plots on the study's parent run, and the best parameters for the
final ``rlad`` run."""

from rl_distill.tuning.best import apply_best_params, best_optim_overrides
from rl_distill.tuning.config import (
    TUNABLE_PARAMS,
    NamedFactory,
    ParamSpec,
    TuningConfig,
    load_tuning_config,
    validate_tuning_block,
)
from rl_distill.tuning.factories import PRUNERS, SAMPLERS
from rl_distill.tuning.objective import training_objective
from rl_distill.tuning.study import Reporter, StudyResult, open_study, run_study
from rl_distill.tuning.trials import load_study, study_trials_table

__all__ = [
    "PRUNERS",
    "SAMPLERS",
    "TUNABLE_PARAMS",
    "NamedFactory",
    "ParamSpec",
    "Reporter",
    "StudyResult",
    "TuningConfig",
    "apply_best_params",
    "best_optim_overrides",
    "load_study",
    "load_tuning_config",
    "open_study",
    "run_study",
    "study_trials_table",
    "training_objective",
    "validate_tuning_block",
]
