"""Run a resumable Optuna study with one MLflow parent run per invocation and one nested run per trial.

One job: :func:`run_study` opens (or resumes) the SQLite study, runs only the trials still missing up to
``n_trials`` (COMPLETE + PRUNED + FAIL already stored count), records a raising trial as FAIL and
continues, mirrors every trial into a nested MLflow run (params, intermediate values as step metrics, final
value, state as the ``optuna.state`` tag and KILLED status for PRUNED), and logs the study's plots and
trials table on the parent run. The objective is injected, ``(params, reporter) -> validation value``, so
this module knows nothing of training.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from rl_distill.tracking import RunLogger, model_run
from rl_distill.tracking.studies import set_run_status
from rl_distill.tuning.config import TuningConfig, load_tuning_config, suggest_params
from rl_distill.tuning.plots import log_study_plots
from rl_distill.tuning.trials import count_states, study_trials_table
from rl_distill.typed_config import ConfigError, to_dict

_logger = logging.getLogger(__name__)

LoggerFactory = Callable[[str, Mapping[str, Any], Mapping[str, Any]], AbstractContextManager[RunLogger]]

# Optuna trial state -> terminal MLflow run status of the trial's nested run.
_RUN_STATUS = {TrialState.COMPLETE: "FINISHED", TrialState.PRUNED: "KILLED", TrialState.FAIL: "FAILED"}


class Reporter:
    """The objective's handle on its trial: validation values for the pruner, metrics for the trial's run.

    ``log_fn`` has the engine's ``log_fn(metrics, step)`` signature: every metric goes to the trial's
    nested run, and the objective ``metric`` (``val/accuracy``) is also reported to Optuna, which may prune
    the trial.
    """

    def __init__(self, trial: optuna.Trial, run: RunLogger, metric: str) -> None:
        self._trial = trial
        self._run = run
        self.metric = metric
        self.last_step: int | None = None
        self.last_value: float | None = None

    @property
    def trial_number(self) -> int:
        return self._trial.number

    def report(self, value: float, step: int) -> None:
        """Report the validation ``value`` at training ``step``; raise ``optuna.TrialPruned`` if the pruner
        says so."""
        value = float(value)
        self._trial.report(value, int(step))
        self._run.log_metrics({self.metric: value}, int(step))
        self.last_step, self.last_value = int(step), value
        if self._trial.should_prune():
            raise optuna.TrialPruned(
                f"trial {self._trial.number} pruned at step {step}: {self.metric}={value:.4g}")

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Log metrics other than the objective to the trial's run (not seen by the pruner)."""
        self._run.log_metrics(metrics, int(step))

    def log_fn(self, metrics: Mapping[str, float], step: int) -> None:
        """Engine callback: log every metric; report ``metric`` when present (may prune the trial)."""
        others = {k: v for k, v in metrics.items() if k != self.metric}
        if others:
            self.log_metrics(others, step)
        if metrics.get(self.metric) is not None:
            self.report(metrics[self.metric], step)


ObjectiveFn = Callable[[dict[str, float], Reporter], float]


@dataclass(frozen=True)
class StudyResult:
    """What a study found: the best trial's tuned parameters and value, and how its trials ended."""

    study_name: str
    metric: str
    best_params: dict[str, float]
    best_value: float
    best_trial_number: int
    n_complete: int
    n_pruned: int
    n_failed: int
    parent_run_id: str | None = None

    def to_best_params(self) -> dict[str, Any]:
        """The ``best_rlad_params`` record: tuned params, best value, trial number, study name, metric."""
        return {
            **self.best_params,
            "best_value": self.best_value,
            "trial_number": self.best_trial_number,
            "study_name": self.study_name,
            "metric": self.metric,
        }


def storage_url(storage_path: str | Path) -> str:
    """SQLAlchemy URL of the SQLite study file (its folder is created)."""
    path = Path(storage_path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def _fail_interrupted_trials(study: optuna.Study) -> None:
    """Mark trials left RUNNING by a killed process as FAIL (they count towards ``n_trials``).

    Assumes one process per study at a time: a concurrent worker's running trial would be failed too.
    """
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        _logger.warning("study %r: trial %d was left RUNNING by an interrupted run; marking it FAIL.",
                        study.study_name, trial.number)
        study.tell(trial.number, state=TrialState.FAIL)
        run_id = trial.user_attrs.get("mlflow_run_id")
        if run_id:
            try:
                set_run_status(run_id, "FAILED", {"optuna.state": "FAIL", "optuna.error": "interrupted"})
            except Exception as exc:  # the run may live in another tracking store; the study is what matters
                _logger.warning("could not close MLflow run %s of interrupted trial %d: %s",
                                run_id, trial.number, exc)


def open_study(cfg: TuningConfig) -> optuna.Study:
    """Create the study, or load it if it exists (same direction, metric and search space required).

    The sampler is seeded with ``seed + number of stored trials`` so a resumed study does not replay the
    random start-up points of the first run; the pruner is rebuilt from the config.
    """
    study = optuna.create_study(
        storage=storage_url(cfg.storage_path), study_name=cfg.study_name, direction=cfg.direction,
        sampler=optuna.samplers.RandomSampler(seed=cfg.seed), load_if_exists=True,
    )
    where = f"tuning study {cfg.study_name!r} in {cfg.storage_path}"
    if study.direction.name.lower() != cfg.direction:
        stored_direction = study.direction.name.lower()
        raise ConfigError(f"{where} was created with direction={stored_direction!r}, the config says "
                          f"{cfg.direction!r}; use a new study_name.")
    for key, value in (("search_space", cfg.search_space_dict()), ("metric", cfg.metric)):
        stored = study.user_attrs.get(key)
        if stored is None:
            study.set_user_attr(key, value)
        elif stored != value:
            raise ConfigError(f"{where} was created with {key}={stored!r}, the config now says {value!r}; "
                              "use a new study_name to tune another space or metric.")
    _fail_interrupted_trials(study)
    study.sampler = cfg.build_sampler(seed_offset=len(study.trials))
    study.pruner = cfg.build_pruner()
    return study


def _summarise(study: optuna.Study, cfg: TuningConfig, parent_run_id: str | None) -> StudyResult:
    counts = count_states(study)
    completed = [t for t in study.trials if t.state == TrialState.COMPLETE]
    if not completed:
        raise RuntimeError(f"study {cfg.study_name!r} has no COMPLETE trial ({counts}); see the failed "
                           "trials' 'optuna.error' tags in MLflow, or relax the pruner.")
    best = study.best_trial
    return StudyResult(
        study_name=cfg.study_name, metric=cfg.metric, best_params=dict(best.params),
        best_value=float(best.value), best_trial_number=best.number, n_complete=counts["COMPLETE"],
        n_pruned=counts["PRUNED"], n_failed=counts["FAIL"], parent_run_id=parent_run_id,
    )


def run_study(config: TuningConfig | Mapping[str, Any], objective_fn: ObjectiveFn, *,
              logger_factory: LoggerFactory = model_run) -> StudyResult:
    """Run (or resume) the study until it holds ``n_trials`` finished trials and return the best one.

    ``objective_fn(params, reporter)`` trains with ``params`` (e.g. ``{"alpha": 0.37}``), calls
    ``reporter.report(val_value, step)`` (or passes ``reporter.log_fn`` to the engine) every evaluation, and
    returns the final validation value. A config given as a mapping is validated first, so bad input fails
    before the study file or any trial exists.
    """
    cfg = load_tuning_config(config)
    study = open_study(cfg)
    counts = count_states(study)
    remaining = max(0, cfg.n_trials - sum(counts.values()))
    _logger.info("study %r: %s stored; running %d more trial(s) up to n_trials=%d.",
                 cfg.study_name, counts, remaining, cfg.n_trials)
    trial_runs: dict[int, RunLogger] = {}

    def objective(trial: optuna.Trial) -> float:
        params = suggest_params(trial, cfg.search_space)
        tags = {"method": cfg.method, "optuna.study": cfg.study_name, "optuna.trial": trial.number, **params}
        with logger_factory(f"trial_{trial.number:03d}", tags, params) as run:
            trial_runs[trial.number] = run
            if getattr(run, "run_id", None):
                trial.set_user_attr("mlflow_run_id", run.run_id)
            reporter = Reporter(trial, run, cfg.metric)
            try:
                value = float(objective_fn(dict(params), reporter))
            except optuna.TrialPruned:
                raise
            except Exception as exc:
                run.set_tags({"optuna.error": f"{type(exc).__name__}: {exc}"[:5000]})
                raise
            last = reporter.last_step if reporter.last_step is not None else cfg.steps_per_trial
            run.log_metrics({"tuning/value": value}, last)
        return value

    def finish_trial_run(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        run = trial_runs.pop(trial.number, None)
        if run is None:
            return
        tags: dict[str, Any] = {"optuna.state": trial.state.name}
        if trial.state == TrialState.PRUNED and trial.last_step is not None:
            tags["optuna.pruned_at_step"] = trial.last_step
        if getattr(run, "run_id", None) and trial.state in _RUN_STATUS:
            set_run_status(run.run_id, _RUN_STATUS[trial.state], tags)
        else:
            run.set_tags(tags)

    parent_tags = {"method": cfg.method, "optuna.study": cfg.study_name, "optuna.storage": cfg.storage_path,
                   "optuna.resumed_with_trials": sum(counts.values())}
    with logger_factory(f"tuning.{cfg.study_name}", parent_tags, to_dict(cfg)) as parent:
        if remaining:
            study.optimize(objective, n_trials=remaining, timeout=cfg.timeout_s, catch=(Exception,),
                           callbacks=[finish_trial_run])
        log_study_plots(study, parent, metric=cfg.metric)
        parent.log_table_csv(study_trials_table(study), "trials.csv")
        final = count_states(study)
        parent.log_metrics({f"tuning/n_{state.lower()}": n for state, n in final.items()}, 0)
        result = _summarise(study, cfg, getattr(parent, "run_id", None))
        parent.log_metrics({"tuning/best_value": result.best_value}, 0)
        parent.set_tags({"optuna.best_trial": result.best_trial_number, **result.best_params})
        parent.log_dict(result.to_best_params(), "best_params.json")
    _logger.info("study %r: best trial %d, %s=%.4g with %s.", cfg.study_name, result.best_trial_number,
                 cfg.metric, result.best_value, result.best_params)
    return result
