"""A study's trials as data: state counts and a polars table for the reporting pipeline's alpha sweep.

One job: read the trials of a stored ``optuna.Study`` into plain counts and a :class:`polars.DataFrame`
with one row per trial: ``number, state, value, <one column per tuned parameter>, last_step, n_reports,
duration_s, mlflow_run_id``.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import polars as pl
from optuna.trial import TrialState

# Columns before and after the parameter columns, with their polars dtypes.
_LEAD = {"number": pl.Int64, "state": pl.Utf8, "value": pl.Float64}
_TAIL = {"last_step": pl.Int64, "n_reports": pl.Int64, "duration_s": pl.Float64, "mlflow_run_id": pl.Utf8}


def load_study(storage_path: str | Path, study_name: str) -> optuna.Study:
    """Open a stored study for reading (e.g. in the reporting pipeline); a missing file raises."""
    path = Path(storage_path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no Optuna study file at {path}; run `kedro run --pipelines tuning` first.")
    return optuna.load_study(study_name=study_name, storage=f"sqlite:///{path}")


def count_states(study: optuna.Study) -> dict[str, int]:
    """Finished trials by state: ``{"COMPLETE": n, "PRUNED": n, "FAIL": n}`` (RUNNING/WAITING not
    counted)."""
    trials = study.get_trials(deepcopy=False)
    return {state.name: sum(t.state == state for t in trials)
            for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}


def study_trials_table(study: optuna.Study) -> pl.DataFrame:
    """One row per trial, ordered by number.

    ``value`` is the final validation value of a COMPLETE trial, the last reported value of a PRUNED one
    (Optuna stores it so), and null for a FAIL. Parameter columns carry the tuned names (``alpha``,
    ``eps_high``, ``lr``), null where a trial failed before sampling one.
    """
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    param_names = sorted({name for t in trials for name in t.distributions}
                         | set(study.user_attrs.get("search_space", {})))
    rows = []
    for t in trials:
        duration = t.duration.total_seconds() if t.duration is not None else None
        rows.append({
            "number": t.number,
            "state": t.state.name,
            "value": t.value if t.state in (TrialState.COMPLETE, TrialState.PRUNED) else None,
            **{name: t.params.get(name) for name in param_names},
            "last_step": t.last_step,
            "n_reports": len(t.intermediate_values),
            "duration_s": duration,
            "mlflow_run_id": t.user_attrs.get("mlflow_run_id"),
        })
    schema = {**_LEAD, **dict.fromkeys(param_names, pl.Float64), **_TAIL}
    return pl.DataFrame(rows, schema=schema)
