"""Kedro hooks: validate parameters and the catalog before any node runs.

Typed configs reject unknown keys and out-of-range values (see :mod:`rl_distill.parameters`); this hook runs those
checks when the context is created so ``kedro run`` fails in a second, naming the key and the YAML file, instead of
after an hour of training. It also checks that every dataset a pipeline reads from outside itself is declared in the
catalog, naming the dataset and ``catalog.yml``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from rl_distill.parameters import locate_key, validate_parameters
from rl_distill.typed_config import ConfigError


def _import_pipeline_packages() -> None:
    """Importing every pipeline's ``nodes`` module registers its parameter blocks."""
    import rl_distill.pipelines as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.ispkg and importlib.util.find_spec(f"{pkg.__name__}.{info.name}.nodes") is not None:
            importlib.import_module(f"{pkg.__name__}.{info.name}.nodes")


class TorchThreadsHooks:
    """Set torch's intra-op threads before a run (``RL_DISTILL_TORCH_THREADS``, default 1).

    The embedded default trains sub-million-parameter models, which are overhead-bound. Measured on a 2-core machine
    with other work running: a train step of the 0.65M teacher (batch 32 x 140 tokens) took 0.53 s on one thread and
    4.0 s on two, sampling 64 x 100 tokens 1.3 s and 40 s (two threads spin against each other and the other load).
    Set the variable higher for larger models or an otherwise idle machine.
    """

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        import torch

        raw = os.environ.get("RL_DISTILL_TORCH_THREADS", "1")
        try:
            threads = int(raw)
        except ValueError:
            raise ConfigError(f"RL_DISTILL_TORCH_THREADS={raw!r} must be a positive integer, e.g. 1 or 2.") from None
        if threads < 1:
            raise ConfigError(f"RL_DISTILL_TORCH_THREADS={raw!r} must be a positive integer, e.g. 1 or 2.")
        torch.set_num_threads(threads)


class ConfigValidationHooks:
    """Fail fast on misspelled parameter keys and on pipeline inputs missing from the catalog; parse parameters once.

    The typed configs built while validating (:func:`~rl_distill.parameters.validate_parameters`) are handed to
    each node in place of its raw ``params:`` dicts (``before_node_run``), so no node parses its block again.
    """

    def __init__(self) -> None:
        self._conf_dirs: list[Path] = []
        self._typed: dict[str, Any] = {}

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        conf_source = Path(context.project_path) / "conf"
        env = context.env or "local"
        self._conf_dirs = [conf_source / "base", conf_source / env]
        _import_pipeline_packages()
        self._typed = validate_parameters(context.params, lambda key: locate_key(self._conf_dirs, key))

    @hook_impl
    def before_node_run(self, node: Any, catalog: Any, inputs: dict[str, Any]) -> dict[str, Any] | None:
        typed = {name: self._typed[name] for name in inputs if name in self._typed}
        return typed or None

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        missing = sorted(
            name for name in pipeline.inputs()
            if not name.startswith("params:") and name != "parameters" and name not in catalog
        )
        if missing:
            catalogs = ", ".join(str(d / "catalog.yml") for d in self._conf_dirs) or "conf/base/catalog.yml"
            raise ConfigError(
                f"pipeline input(s) {missing} are not declared in the data catalog ({catalogs}). "
                "Add an entry for each, or run the pipeline that produces them in the same `kedro run`."
            )
