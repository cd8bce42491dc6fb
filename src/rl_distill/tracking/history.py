"""Reading back what training logged: run lookup, nested runs of a parent, and step-metric histories.

One job: the read side of the MLflow layout (one parent run per ``kedro run``, one nested run per trained
model, step metrics logged with ``step=``), for evaluation (find the run a model was trained in) and reporting
(``val/accuracy`` and ``rollout/reward_mean`` against step, per method). Every function uses the tracking URI
that is configured (kedro-mlflow sets it for a ``kedro run``; notebooks and tests set it themselves).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import mlflow
from mlflow.exceptions import MlflowException

# ``histories[model][key] = [(step, value), ...]``, steps ascending.
Histories = dict[str, dict[str, list[tuple[int, float]]]]


def run_exists(run_id: str | None) -> bool:
    """True when ``run_id`` names a live (not deleted) run in the configured tracking store."""
    if not run_id:
        return False
    try:
        run = mlflow.MlflowClient().get_run(run_id)
    except MlflowException:
        return False
    return run.info.lifecycle_stage != "deleted"


def nested_run_ids(parent_run_id: str) -> dict[str, str]:
    """``{run name: run id}`` of the runs nested directly under ``parent_run_id``; the newest run wins a name
    that occurs twice (e.g. a model retrained inside the same parent)."""
    client = mlflow.MlflowClient()
    parent = client.get_run(parent_run_id)
    runs = client.search_runs(
        experiment_ids=[parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'",
        order_by=["attributes.start_time ASC"],
        max_results=10_000,
    )
    return {r.data.tags.get("mlflow.runName", r.info.run_name): r.info.run_id for r in runs}


def metric_histories(run_ids: Mapping[str, str | None], keys: Iterable[str]) -> Histories:
    """Step histories of ``keys`` for each ``{model: run_id}``.

    A model whose run id is missing or unknown to the store gets an empty dict; a key the run never logged is
    left out, so a method without rollouts (offline KD) simply has no ``rollout/reward_mean`` curve. When a
    step was logged twice (a resumed run) the last value logged wins.
    """
    keys = list(keys)
    out: Histories = {model: {} for model in run_ids}
    if not any(run_ids.values()):
        return out  # nothing to read: do not touch (or create) a tracking store
    client = mlflow.MlflowClient()
    for model, run_id in run_ids.items():
        if not run_exists(run_id):
            continue
        for key in keys:
            by_step: dict[int, tuple[int, float]] = {}
            for m in client.get_metric_history(run_id, key):
                if m.step not in by_step or m.timestamp >= by_step[m.step][0]:
                    by_step[m.step] = (m.timestamp, m.value)
            if by_step:
                out[model][key] = [(step, value) for step, (_, value) in sorted(by_step.items())]
    return out
