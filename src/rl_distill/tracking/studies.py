"""MLflow bookkeeping for Optuna studies: terminal run status of a trial's run, and a parent run's child
runs.

:func:`~rl_distill.tracking.runs.model_run` ends a run FINISHED or FAILED; a pruned trial is neither, so
the tuning code sets its run to KILLED after the fact with :func:`set_run_status` (the trial state is also
a tag).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import mlflow

RUN_STATUSES = ("FINISHED", "FAILED", "KILLED")


def set_run_status(run_id: str, status: str, tags: Mapping[str, Any] | None = None) -> None:
    """Set a (possibly ended) run's terminal ``status`` (one of :data:`RUN_STATUSES`) and ``tags``."""
    if status not in RUN_STATUSES:
        valid = ", ".join(RUN_STATUSES)
        raise ValueError(f"status={status!r} is not a terminal MLflow run status; valid: {valid}.")
    client = mlflow.MlflowClient()
    for key, value in (tags or {}).items():
        client.set_tag(run_id, key, str(value))
    client.set_terminated(run_id, status=status)


def child_runs(parent_run_id: str) -> list[mlflow.entities.Run]:
    """The runs nested directly under ``parent_run_id`` (e.g. one per Optuna trial), oldest first."""
    client = mlflow.MlflowClient()
    parent = client.get_run(parent_run_id)
    return client.search_runs(
        experiment_ids=[parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'",
        order_by=["attributes.start_time ASC"],
        max_results=10_000,
    )
