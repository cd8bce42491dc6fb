"""Project pipelines: every pipeline package under ``pipelines/`` by name; ``__default__`` = all but tuning."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

# Pipelines that are registered but not part of ``kedro run`` without ``--pipelines``.
EXCLUDED_FROM_DEFAULT = ("tuning",)


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines: ``find_pipelines`` discovers every ``pipelines/<name>/`` package that
    exports ``create_pipeline`` (with ``kedro run --pipelines X`` it loads only the packages asked for)."""
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = sum(
        (p for name, p in pipelines.items() if name not in EXCLUDED_FROM_DEFAULT and not name.startswith("_")),
        Pipeline([]),
    )
    return pipelines
