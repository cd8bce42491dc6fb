"""The only place (besides Kedro hooks) that talks to MLflow: nested runs, step metrics, artifacts, run queries."""

from rl_distill.tracking.runs import (
    RunLogger,
    active_run_id,
    detached_run,
    flatten_params,
    label_parent_run,
    link_resumed_runs,
    mark_run_killed,
    model_run,
    parent_run_name,
)

__all__ = ["RunLogger", "active_run_id", "detached_run", "flatten_params", "label_parent_run", "link_resumed_runs",
           "mark_run_killed",
           "model_run", "parent_run_name"]
