"""run_study against real SQLite stores: Optuna study file, nested MLflow runs per trial, resume, plots."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import optuna
import pytest
from optuna.trial import TrialState

from rl_distill.tracking.studies import child_runs
from rl_distill.tuning import load_study, run_study, study_trials_table
from rl_distill.tuning.study import storage_url
from rl_distill.typed_config import ConfigError

from .conftest import quadratic

# Grid alpha in {0, .25, .5, .75, 1} with a threshold pruner at 0.9 on value = 1 - (alpha - 0.4)^2:
#   0.00 -> 1 - 0.16   = 0.84   < 0.9 -> PRUNED at step 1
#   0.25 -> 1 - 0.0225 = 0.9775        -> COMPLETE
#   0.50 -> 1 - 0.01   = 0.99          -> COMPLETE (best)
#   0.75 -> 1 - 0.1225 = 0.8775 < 0.9 -> PRUNED at step 1
#   1.00 -> the objective raises       -> FAIL
EXPECTED_STATE = {0.0: "PRUNED", 0.25: "COMPLETE", 0.5: "COMPLETE", 0.75: "PRUNED", 1.0: "FAIL"}
EXPECTED_STATUS = {"PRUNED": "KILLED", "COMPLETE": "FINISHED", "FAIL": "FAILED"}


def _grid_config(tmp_path: Path, name: str) -> dict:
    return {
        "study_name": name, "storage_path": str(tmp_path / "optuna" / f"{name}.db"), "n_trials": 5, "seed": 1,
        "steps_per_trial": 3, "eval_every": 1,
        "sampler": {"name": "grid"}, "pruner": {"name": "threshold", "kwargs": {"lower": 0.9}},
        "search_space": {"alpha": {"low": 0.0, "high": 1.0, "step": 0.25}},
    }


def _random_config(tmp_path: Path, name: str, n_trials: int) -> dict:
    return {
        "study_name": name, "storage_path": str(tmp_path / f"{name}.db"), "n_trials": n_trials, "seed": 0,
        "steps_per_trial": 3, "eval_every": 1, "sampler": {"name": "random"}, "pruner": {"name": "none"},
        "search_space": {"alpha": {"low": 0.0, "high": 0.9}},
    }


@pytest.fixture(scope="module")
def grid_study(mlflow_store, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("grid")
    cfg = _grid_config(tmp_path, "grid_alpha")
    return cfg, run_study(cfg, quadratic)


def test_trials_are_stored_in_the_sqlite_study(grid_study) -> None:
    cfg, result = grid_study
    study = optuna.load_study(study_name=cfg["study_name"], storage=storage_url(cfg["storage_path"]))
    assert {t.params["alpha"]: t.state.name for t in study.trials} == EXPECTED_STATE
    assert (result.n_complete, result.n_pruned, result.n_failed) == (2, 2, 1)
    assert result.best_params == {"alpha": 0.5}
    assert result.best_value == pytest.approx(0.99)
    assert result.to_best_params() == {"alpha": 0.5, "best_value": pytest.approx(0.99),
                                       "trial_number": result.best_trial_number, "study_name": "grid_alpha",
                                       "metric": "val/accuracy"}


def test_each_trial_is_a_nested_mlflow_run_with_its_state(grid_study) -> None:
    _, result = grid_study
    parent = mlflow.get_run(result.parent_run_id)
    assert parent.data.tags["optuna.study"] == "grid_alpha"
    assert parent.data.tags["optuna.best_trial"] == str(result.best_trial_number)
    assert parent.data.metrics["tuning/best_value"] == pytest.approx(0.99)
    children = child_runs(result.parent_run_id)
    assert len(children) == 5
    client = mlflow.MlflowClient()
    for run in children:
        alpha = float(run.data.params["alpha"])
        state = EXPECTED_STATE[alpha]
        assert run.data.tags["optuna.state"] == state
        assert run.data.tags["method"] == "rlad" and run.data.tags["alpha"] == str(alpha)
        assert run.info.status == EXPECTED_STATUS[state]
        history = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "val/accuracy")]
        if state == "COMPLETE":
            value = 1.0 - (alpha - 0.4) ** 2
            assert history == [(step, pytest.approx(value)) for step in (1, 2, 3)]
            assert run.data.metrics["tuning/value"] == pytest.approx(value)
        elif state == "PRUNED":
            assert len(history) == 1 and run.data.tags["optuna.pruned_at_step"] == "1"
            assert "tuning/value" not in run.data.metrics
        else:
            assert history == [] and "diverged at alpha=1.0" in run.data.tags["optuna.error"]


def test_plots_table_and_best_params_are_parent_artifacts(grid_study, tmp_path: Path) -> None:
    _, result = grid_study
    client = mlflow.MlflowClient()
    plots = {Path(a.path).name for a in client.list_artifacts(result.parent_run_id, "plots")}
    assert plots == {"optimization_history.png", "intermediate_values.png", "alpha_vs_objective.png"}
    top = {a.path for a in client.list_artifacts(result.parent_run_id)}
    assert {"trials.csv", "best_params.json"} <= top
    path = mlflow.artifacts.download_artifacts(run_id=result.parent_run_id, artifact_path="best_params.json",
                                               dst_path=str(tmp_path))
    assert json.loads(Path(path).read_text())["alpha"] == 0.5


def test_rerun_continues_the_same_study(mlflow_store, tmp_path: Path) -> None:
    calls: list[float] = []

    def objective(params, reporter):
        calls.append(params["alpha"])
        return quadratic(params, reporter)

    first = run_study(_random_config(tmp_path, "resume", 3), objective)
    assert len(calls) == 3 and first.n_complete == 3
    second = run_study(_random_config(tmp_path, "resume", 5), objective)
    assert len(calls) == 5 and second.n_complete == 5  # 2 more, not 5 more
    third = run_study(_random_config(tmp_path, "resume", 5), objective)
    assert len(calls) == 5 and third.n_complete == 5  # nothing left to run
    assert len(set(calls)) == 5  # the resumed sampler does not replay the first run's points
    table = study_trials_table(load_study(tmp_path / "resume.db", "resume"))
    assert table["number"].to_list() == [0, 1, 2, 3, 4] and table["state"].unique().to_list() == ["COMPLETE"]
    assert table["alpha"].to_list() == calls
    assert [len(child_runs(r.parent_run_id)) for r in (first, second, third)] == [3, 2, 0]


def test_trial_left_running_by_a_killed_run_is_failed_and_counted(mlflow_store, tmp_path: Path) -> None:
    cfg = _random_config(tmp_path, "killed", 3)
    orphan = optuna.create_study(study_name="killed", storage=storage_url(cfg["storage_path"]),
                                 direction="maximize")
    orphan.ask()  # a trial that never finished: its process was killed
    result = run_study(cfg, quadratic)
    study = optuna.load_study(study_name="killed", storage=storage_url(cfg["storage_path"]))
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    assert (result.n_complete, result.n_failed) == (2, 1)


def test_bad_search_space_fails_before_any_trial(mlflow_store, tmp_path: Path) -> None:
    cfg = _random_config(tmp_path, "bad", 3)
    cfg["search_space"] = {"alpha": {"low": 0.0, "high": 1.5}}
    calls: list[dict] = []
    with pytest.raises(ConfigError, match="alpha.high=1.5"):
        run_study(cfg, lambda params, reporter: calls.append(params) or 0.0)
    assert calls == [] and not Path(cfg["storage_path"]).exists()


def test_changed_search_space_of_existing_study_fails(mlflow_store, tmp_path: Path) -> None:
    run_study(_random_config(tmp_path, "space", 1), quadratic)
    cfg = _random_config(tmp_path, "space", 2)
    cfg["search_space"] = {"alpha": {"low": 0.0, "high": 1.0}}
    with pytest.raises(ConfigError, match="use a new study_name"):
        run_study(cfg, quadratic)


def test_study_with_only_failed_trials_raises(mlflow_store, tmp_path: Path) -> None:
    def broken(params, reporter):
        raise RuntimeError("engine crashed")

    with pytest.raises(RuntimeError, match="no COMPLETE trial"):
        run_study(_random_config(tmp_path, "broken", 2), broken)
    study = optuna.load_study(study_name="broken", storage=storage_url(tmp_path / "broken.db"))
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.FAIL]  # recorded, study continued


def test_load_study_of_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no Optuna study file"):
        load_study(tmp_path / "nope.db", "nope")
    assert not (tmp_path / "nope.db").exists()
