"""``kedro run --env smoke --pipelines tuning`` on the smoke run's checkpoints: trials land in the SQLite study, each
trial is a nested MLflow run under the study's run, re-running continues the same study, and the best parameters
are written through the catalog."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tuned_project(smoke_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("tuning") / "project"
    shutil.copytree(smoke_project, project, symlinks=True)
    return project


def _study(project: Path):
    import optuna

    return optuna.load_study(study_name="rlad_alpha_smoke",
                             storage=f"sqlite:///{project / 'data/07_model_output/optuna/rlad_alpha_smoke.db'}")


def test_study_runs_resumes_and_logs_nested_trials(tuned_project: Path, run_kedro) -> None:
    first = run_kedro(tuned_project, "run", "--env", "smoke", "--pipelines", "tuning",
                      "--params", "tuning.n_trials=1", timeout=900)
    assert first.returncode == 0, (first.stdout + first.stderr)[-5000:]
    assert len(_study(tuned_project).trials) == 1

    second = run_kedro(tuned_project, "run", "--env", "smoke", "--pipelines", "tuning", timeout=900)
    assert second.returncode == 0, (second.stdout + second.stderr)[-5000:]
    trials = _study(tuned_project).trials
    assert len(trials) == 2, "the second run continues the study up to n_trials=2 instead of starting over"
    assert len({t.params["alpha"] for t in trials}) == 2

    best = json.loads((tuned_project / "data/07_model_output/best_rlad_params.json").read_text())
    assert 0.0 <= best["alpha"] <= 1.0 and best["study_name"] == "rlad_alpha_smoke"

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tuned_project / 'mlruns' / 'mlflow.db'}")
    try:
        runs = mlflow.search_runs(experiment_names=["rl-distill"], output_format="pandas")
    finally:
        mlflow.set_tracking_uri(None)
    studies = runs[runs["tags.mlflow.runName"] == "tuning.rlad_alpha_smoke"]
    assert len(studies) == 2  # one study run per `kedro run --pipelines tuning`
    trial_runs = runs[runs["tags.mlflow.parentRunId"].isin(set(studies["run_id"]))]
    assert len(trial_runs) == 2 and trial_runs["tags.mlflow.runName"].str.startswith("trial_").all()
    assert trial_runs["metrics.val/accuracy"].notna().all()
