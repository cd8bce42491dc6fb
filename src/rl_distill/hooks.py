"""Kedro hooks: validate parameters and the catalog before any node runs; one run per project at a time.

Typed configs reject unknown keys and out-of-range values (see :mod:`rl_distill.parameters`); this hook runs those
checks when the context is created so ``kedro run`` fails in a second, naming the key and the YAML file, instead of
after an hour of training. It also checks that every dataset a pipeline reads from outside itself is declared in the
catalog, naming the dataset and ``catalog.yml``.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import pkgutil
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from rl_distill.engine.run_lock import RunLock, describe_holder
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


class RunLockHooks:
    """Hold ``data/.run.lock`` (:mod:`rl_distill.engine.run_lock`) for the whole of a ``kedro run``.

    Taken first (``tryfirst``: before kedro-mlflow opens its run, so a refused start leaves no FAILED run behind); a
    second run in the same project fails at once naming the holder's pid. A lock left by a run that died is taken
    over with a warning, and that run's MLflow runs still marked RUNNING are ended as KILLED. The holder record gets
    this run's MLflow run id at its first node.
    """

    def __init__(self) -> None:
        self._lock: RunLock | None = None
        self._recorded = False

    @hook_impl(wrapper=True, tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> Any:
        # A wrapper: the lock is taken before every other hook's before_pipeline_run, and released again if one of
        # them fails (Kedro calls on_pipeline_error only for failures inside the runner).
        lock = RunLock(Path(run_params["project_path"]) / "data")
        stale = lock.acquire()
        self._lock, self._recorded = lock, False
        try:
            if stale is not None:
                from rl_distill.tracking import mark_run_killed

                killed = mark_run_killed(stale["mlflow_run_id"]) if stale.get("mlflow_run_id") else []
                logging.getLogger(__name__).warning(
                    "took over the run lock %s of a run that died (%s); marked %d of its MLflow runs KILLED: %s",
                    lock.path, describe_holder(stale), len(killed), ", ".join(killed) or "none was still RUNNING")
            return (yield)
        except BaseException:
            self._release()
            raise

    @hook_impl
    def before_node_run(self, node: Any, catalog: Any, inputs: dict[str, Any]) -> None:
        if self._lock is not None and not self._recorded:
            import mlflow

            active = mlflow.active_run()
            self._lock.update(mlflow_run_id=active.info.run_id if active else None)
            self._recorded = True

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        self._release()

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None
