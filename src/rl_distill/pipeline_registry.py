"""Project pipelines: every pipeline package under ``pipelines/`` by name; ``__default__`` = all but tuning."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

# Pipelines that are registered but not part of ``kedro run`` without ``--pipelines``.
EXCLUDED_FROM_DEFAULT = ("tuning",)


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines.

    ``find_pipelines`` discovers ``pipelines/<name>/pipeline.py::create_pipeline``; a pipeline package may also expose
    ``create_pipelines() -> dict[str, Pipeline]`` to register several names (the distill methods).
    """
    pipelines = find_pipelines(raise_errors=True)
    from rl_distill.pipelines import extra_pipelines

    pipelines.update(extra_pipelines())
    pipelines["__default__"] = sum(
        (p for name, p in pipelines.items() if name not in EXCLUDED_FROM_DEFAULT and not name.startswith("_")),
        Pipeline([]),
    )
    return pipelines
