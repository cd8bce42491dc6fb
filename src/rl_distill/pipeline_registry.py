"""Project pipelines: every pipeline package under ``pipelines/`` by name, plus one pipeline per registered distill
method (its id, e.g. ``kedro run --pipelines rlad``); ``__default__`` = all but tuning and benchmark."""

from __future__ import annotations

import importlib
import pkgutil

from kedro.pipeline import Pipeline

import rl_distill.pipelines as pipelines_pkg
from rl_distill.known_methods import distill_methods
from rl_distill.pipelines.distill.pipeline import method_template

# Pipelines that are registered but not part of ``kedro run`` without ``--pipelines``.
EXCLUDED_FROM_DEFAULT = ("tuning", "benchmark", "teacher")


def _package_pipelines() -> dict[str, Pipeline]:
    """``create_pipeline()`` of every ``pipelines/<name>/`` package, by package name (Kedro's ``find_pipelines``
    refuses a requested name that is not a package, and method pipelines are not packages)."""
    found = {}
    for info in sorted(pkgutil.iter_modules(pipelines_pkg.__path__), key=lambda i: i.name):
        if info.ispkg:
            module = importlib.import_module(f"{pipelines_pkg.__name__}.{info.name}")
            if hasattr(module, "create_pipeline"):
                found[info.name] = module.create_pipeline()
    return found


def register_pipelines() -> dict[str, Pipeline]:
    """Every pipeline package, and each method of the method registry built by the ``distill`` template under its
    own id."""
    pipelines = _package_pipelines()
    for method in distill_methods():
        pipelines[method] = method_template(method)
    pipelines["__default__"] = sum(
        (p for name, p in pipelines.items() if name not in EXCLUDED_FROM_DEFAULT and not name.startswith("_")),
        Pipeline([]),
    )
    return pipelines
