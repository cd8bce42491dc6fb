"""Fixtures for the tuning tests: one throwaway MLflow SQLite store per session, synthetic objectives."""

from __future__ import annotations

import os

import mlflow
import pytest

from rl_distill.tuning import Reporter


@pytest.fixture(scope="package")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory):
    """A tmp SQLite tracking store with its own experiment, shared by the tuning tests (table creation takes
    ~10 s); global MLflow state is restored afterwards."""
    root = tmp_path_factory.mktemp("mlflow")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{root}/mlflow.db")
    experiment_id = mlflow.create_experiment("tuning-tests", artifact_location=str(root / "artifacts"))
    mlflow.set_experiment(experiment_id=experiment_id)
    yield experiment_id
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri(previous)
    # Forget the active experiment too: its id means nothing in the next test's store.
    import mlflow.tracking.fluent as fluent

    fluent._active_experiment_id = None
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)


def quadratic(params: dict[str, float], reporter: Reporter, steps: int = 3) -> float:
    """Synthetic validation accuracy 1 - (alpha - 0.4)^2, reported unchanged at steps 1..steps.

    alpha = 1.0 raises, standing in for a diverged training run.
    """
    alpha = params["alpha"]
    if alpha == 1.0:
        raise ValueError(f"diverged at alpha={alpha}")
    value = 1.0 - (alpha - 0.4) ** 2
    for step in range(1, steps + 1):
        reporter.report(value, step)
    return value
