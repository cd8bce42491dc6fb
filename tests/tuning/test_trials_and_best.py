"""Trials table, plots, the Reporter/objective adapter and apply_best_params, on in-memory Optuna studies."""

from __future__ import annotations

from pathlib import Path

import optuna
import polars as pl
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from rl_distill.tuning import (
    Reporter,
    apply_best_params,
    best_optim_overrides,
    run_study,
    study_trials_table,
    training_objective,
)
from rl_distill.tuning.plots import study_figures
from rl_distill.typed_config import ConfigError

ALPHA = FloatDistribution(0.0, 1.0)
LR = FloatDistribution(1e-4, 1e-2, log=True)


class FakeRun:
    """Stands in for RunLogger: records metrics, tags and figures in memory."""

    def __init__(self) -> None:
        self.metrics: list[tuple[str, float, int]] = []
        self.tags: dict[str, str] = {}
        self.figures: list[str] = []
        self.tables: list[str] = []

    def log_metrics(self, metrics, step):
        self.metrics += [(k, float(v), step) for k, v in metrics.items()]

    def set_tags(self, tags):
        self.tags.update({k: str(v) for k, v in tags.items()})

    def log_figure(self, fig, name):
        self.figures.append(name)

    def log_table_csv(self, frame, name):
        self.tables.append(name)

    def log_dict(self, data, name):
        self.tags[f"dict:{name}"] = str(data)


def _study(with_lr: bool = False) -> optuna.Study:
    """Three finished trials: COMPLETE (0.8), PRUNED at step 10 (0.5), FAIL; plus two COMPLETE if with_lr."""
    study = optuna.create_study(direction="maximize")
    dists = {"alpha": ALPHA, "lr": LR} if with_lr else {"alpha": ALPHA}
    extra = {"lr": 1e-3} if with_lr else {}
    study.add_trial(create_trial(state=TrialState.COMPLETE, value=0.8, params={"alpha": 0.3, **extra},
                                 distributions=dists, intermediate_values={10: 0.7, 20: 0.8}))
    study.add_trial(create_trial(state=TrialState.PRUNED, value=0.5, params={"alpha": 0.9, **extra},
                                 distributions=dists, intermediate_values={10: 0.5}))
    study.add_trial(create_trial(state=TrialState.FAIL, params={"alpha": 1.0, **extra}, distributions=dists))
    if with_lr:
        for alpha, lr, value in ((0.5, 1e-4, 0.6), (0.1, 5e-3, 0.7), (0.7, 2e-4, 0.65)):
            study.add_trial(create_trial(state=TrialState.COMPLETE, value=value,
                                         params={"alpha": alpha, "lr": lr}, distributions=dists,
                                         intermediate_values={20: value}))
    return study


def test_trials_table_columns_and_rows() -> None:
    table = study_trials_table(_study())
    assert table.columns == ["number", "state", "value", "alpha", "last_step", "n_reports", "duration_s",
                             "mlflow_run_id"]
    assert table["state"].to_list() == ["COMPLETE", "PRUNED", "FAIL"]
    assert table["value"].to_list() == [0.8, 0.5, None]  # PRUNED keeps its last report, FAIL has none
    assert table["alpha"].to_list() == [0.3, 0.9, 1.0]
    assert table["last_step"].to_list() == [20, 10, None]
    assert table["n_reports"].to_list() == [2, 1, 0]


def test_trials_table_of_empty_study_is_typed() -> None:
    table = study_trials_table(optuna.create_study())
    assert table.height == 0
    assert table.schema["value"] == pl.Float64 and table.schema["number"] == pl.Int64


def test_figures_single_parameter(tmp_path: Path) -> None:
    figures = study_figures(_study(), "val/accuracy")
    assert set(figures) == {"plots/optimization_history.png", "plots/intermediate_values.png",
                            "plots/alpha_vs_objective.png"}  # no importances with one parameter
    for name, fig in figures.items():
        out = tmp_path / Path(name).name
        fig.savefig(out)
        assert out.stat().st_size > 0


def test_figures_with_two_parameters_include_importances() -> None:
    figures = study_figures(_study(with_lr=True), "val/accuracy")
    assert {"plots/param_importances.png", "plots/lr_vs_objective.png"} <= set(figures)


def test_figures_of_empty_study() -> None:
    assert set(study_figures(optuna.create_study(), "val/accuracy")) == {
        "plots/optimization_history.png", "plots/intermediate_values.png"}


def test_reporter_log_fn_routes_metrics_and_reports_validation() -> None:
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    run = FakeRun()
    reporter = Reporter(trial, run, "val/accuracy")

    def train_once(params, log_fn):
        assert params == {"alpha": 0.25}
        log_fn({"train/loss": 1.0}, 1)
        log_fn({"train/loss": 0.9, "val/accuracy": 0.5}, 2)
        log_fn({"test/accuracy": 0.99}, 3)  # never reported to Optuna
        log_fn({"val/accuracy": 0.7}, 4)

    value = training_objective(train_once)({"alpha": 0.25}, reporter)
    assert value == 0.7  # the last validation report
    assert trial.storage.get_trial(trial._trial_id).intermediate_values == {2: 0.5, 4: 0.7}
    assert ("train/loss", 0.9, 2) in run.metrics and ("test/accuracy", 0.99, 3) in run.metrics
    val = [m for m in run.metrics if m[0] == "val/accuracy"]
    assert val == [("val/accuracy", 0.5, 2), ("val/accuracy", 0.7, 4)]


def test_objective_without_validation_report_raises() -> None:
    trial = optuna.create_study().ask()
    objective = training_objective(lambda params, log_fn: log_fn({"train/loss": 1.0}, 1))
    with pytest.raises(RuntimeError, match="logged no 'val/accuracy'"):
        objective({"alpha": 0.5}, Reporter(trial, FakeRun(), "val/accuracy"))


def test_reporter_raises_pruned_when_pruner_says_so() -> None:
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=0.6))
    reporter = Reporter(study.ask(), FakeRun(), "val/accuracy")
    reporter.log_fn({"val/accuracy": 0.8}, 1)
    with pytest.raises(optuna.TrialPruned, match="step 2"):
        reporter.log_fn({"val/accuracy": 0.5}, 2)  # 0.5 < lower=0.6


def test_run_study_with_any_logger_factory(tmp_path: Path) -> None:
    """run_study works with an injected, MLflow-free logger factory (trial state lands in its tags)."""
    runs: dict[str, FakeRun] = {}

    def factory(name, tags, params):
        import contextlib

        @contextlib.contextmanager
        def cm():
            runs[name] = FakeRun()
            runs[name].set_tags(tags)
            yield runs[name]

        return cm()

    cfg = {"study_name": "fake", "storage_path": str(tmp_path / "fake.db"), "n_trials": 2,
           "sampler": {"name": "random"}, "pruner": {"name": "none"}}
    result = run_study(cfg, lambda params, reporter: params["alpha"], logger_factory=factory)
    assert sorted(runs) == ["trial_000", "trial_001", "tuning.fake"]
    assert runs["trial_000"].tags["optuna.state"] == "COMPLETE"
    assert "plots/alpha_vs_objective.png" in runs["tuning.fake"].figures
    assert result.n_complete == 2 and result.parent_run_id is None


def test_apply_best_params_merges_loss_params_only() -> None:
    loss_cfg = {"alpha": 0.5, "eps_low": 0.2, "eps_high": 0.28, "stabilizer": "hard"}
    best = {"alpha": 0.3, "eps_high": 0.25, "lr": 1e-4, "best_value": 0.9, "trial_number": 4,
            "study_name": "rlad_alpha", "metric": "val/accuracy"}
    merged = apply_best_params(loss_cfg, best)
    assert merged == {"alpha": 0.3, "eps_low": 0.2, "eps_high": 0.25, "stabilizer": "hard"}
    assert loss_cfg["alpha"] == 0.5  # input untouched
    assert best_optim_overrides(best) == {"lr": 1e-4}


@pytest.mark.parametrize(("best", "expected"), [({"alpha": 1.3}, "alpha=1.3"), ({"beta": 0.1}, "'beta'")])
def test_apply_best_params_rejects_bad_records(best: dict, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        apply_best_params({"alpha": 0.5}, best)
