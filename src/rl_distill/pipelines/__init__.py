"""Kedro pipelines: wiring + thin adapters. Each subpackage exposes ``create_pipeline``.

:func:`extra_pipelines` gathers the pipelines registered under additional names (one per distillation method), which
``find_pipelines`` cannot see because it registers one pipeline per package.
"""

from __future__ import annotations

import importlib
import pkgutil

from kedro.pipeline import Pipeline


def extra_pipelines() -> dict[str, Pipeline]:
    """Pipelines exported by ``create_pipelines()`` in any pipeline package, keyed by their registered name."""
    found: dict[str, Pipeline] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}.pipeline")
        create = getattr(module, "create_pipelines", None)
        if create is not None:
            found.update(create())
    return found
