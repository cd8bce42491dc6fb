"""Kedro hooks: validate parameters and the catalog before any node runs; one run per project at a time.

Typed configs reject unknown keys and out-of-range values (see :mod:`rl_distill.parameters`); this hook runs those
checks when the context is created so ``kedro run`` fails in a second, naming the key and the YAML file, instead of
after an hour of training. It also checks that every dataset a pipeline reads from outside itself is declared in the
catalog, naming the dataset and ``catalog.yml``.
"""

from __future__ import annotations

import difflib
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


def check_env(conf_source: Path, env: str) -> None:
    """Fail unless ``conf/<env>/`` exists (``local``, Kedro's default, may be absent), listing the valid ones."""
    if env == "local" or (conf_source / env).is_dir():
        return
    valid = sorted({"local"} | {p.name for p in conf_source.iterdir() if p.is_dir() and p.name != "base" and (
        any(p.glob("parameters*")) or any(p.glob("catalog*")))})  # conf/accelerate holds launch configs
    close = difflib.get_close_matches(env, valid, n=1)
    raise ConfigError(f"--env {env!r}: there is no {conf_source / env} directory. Valid environments: "
                      f"{', '.join(valid)}." + (f" Did you mean {close[0]!r}?" if close else ""))


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
        self._catalog_config: dict[str, Any] = {}

    @hook_impl(tryfirst=True)  # before kedro-mlflow reads conf/<env>/mlflow.yml, so a bad --env is named as such
    def after_context_created(self, context: Any) -> None:
        conf_source = Path(context.project_path) / "conf"
        env = context.env or "local"
        check_env(conf_source, env)
        self._conf_dirs = [conf_source / "base", conf_source / env]
        self._catalog_config = dict(context.config_loader["catalog"])
        _import_pipeline_packages()
        self._typed = validate_parameters(context.params, lambda key: locate_key(self._conf_dirs, key))

    @hook_impl
    def before_node_run(self, node: Any, catalog: Any, inputs: dict[str, Any]) -> dict[str, Any] | None:
        typed = {name: self._typed[name] for name in inputs if name in self._typed}
        return typed or None

    @hook_impl(tryfirst=True)  # before kedro-mlflow opens its run: a refused start leaves no FAILED run behind
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        free = sorted(name for name in pipeline.inputs() if not name.startswith("params:") and name != "parameters")
        undeclared = [name for name in free if name not in catalog]
        if undeclared:
            catalogs = ", ".join(str(d / "catalog.yml") for d in self._conf_dirs) or "conf/base/catalog.yml"
            raise ConfigError(
                f"pipeline input(s) {undeclared} are not declared in the data catalog ({catalogs}). "
                "Add an entry for each, or run the pipeline that produces them in the same `kedro run`."
            )
        absent = [name for name in free if not catalog.exists(name)]
        if absent:
            raise ConfigError(missing_inputs_message(absent, self._catalog_config))


def catalog_filepath(catalog_config: dict[str, Any], name: str) -> str | None:
    """Where catalog entry ``name`` lives: its ``filepath`` / ``path``, or its wrapped dataset's (kedro-mlflow's
    artifact datasets, ``OptionalDataset``); None for an entry without one."""
    entry = catalog_config.get(name, {})
    return entry.get("filepath") or entry.get("path") or entry.get("dataset", {}).get("filepath")


def _producer(name: str) -> str | None:
    """The smallest registered pipeline that writes dataset ``name`` (the one to run first)."""
    from kedro.framework.project import pipelines

    makers = [(len(p.nodes), pname) for pname, p in pipelines.items()
              if pname != "__default__" and name in p.all_outputs()]
    return min(makers)[1] if makers else None


def missing_inputs_message(absent: list[str], catalog_config: dict[str, Any]) -> str:
    """Every input the run needs but does not find, each with its path and the pipeline that writes it."""
    lines, first = [], []
    for name in absent:
        path = catalog_filepath(catalog_config, name) or "?"
        maker = _producer(name)
        lines.append(f"  - {name} ({path}): written by `kedro run --pipelines {maker}`" if maker else
                     f"  - {name} ({path}): no registered pipeline writes it; provide the file")
        if maker and maker not in first:
            first.append(maker)
    todo = f"run `kedro run --pipelines {','.join(first)}` first, or " if first else ""
    return (f"this run needs {len(absent)} input(s) that do not exist yet:\n" + "\n".join(lines) +
            f"\n{todo}`kedro run` for the whole DAG.")


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


class TerminalHooks:
    """What the terminal shows of a ``kedro run``: one line per node (``[5/27] rlad.train``; Kedro's own node and
    dataset lines are at WARNING in ``conf/logging.yml``), no per-file weight-loading bars, and as the last lines
    each comparison table the run built (model, accuracy with its 95% CI, response tokens; the benchmark's also the
    paired difference to grpo), the path of its report and the MLflow UI link of the run's parent run
    (:mod:`rl_distill.tracking.run_summary`)."""

    # (table dataset, report dataset): printed when the run's pipeline writes the table
    REPORTS = (("comparison_table_csv", "comparison_table_md"), ("benchmark_table", "benchmark_report_md"))

    def __init__(self) -> None:
        self._context: Any = None
        self._run_id: str | None = None
        self._done, self._total = 0, 0

    @hook_impl(tryfirst=True)
    def after_context_created(self, context: Any) -> None:
        # kedro-mlflow and kedro-telemetry set their loggers' levels when they are imported, after Kedro applied
        # conf/logging.yml: apply it again, so that its levels hold before kedro-mlflow's hook starts talking.
        from kedro.framework.project import LOGGING

        LOGGING.configure(dict(LOGGING.data))
        self._context, self._run_id = context, None

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # "Loading weights" / "Writing model shards" for every tiny model
        self._done, self._total = 0, len(pipeline.nodes)

    @hook_impl
    def before_node_run(self, node: Any, catalog: Any, inputs: dict[str, Any]) -> None:
        if self._run_id is None:
            from rl_distill.tracking import active_run_id

            self._run_id = active_run_id()
        self._done += 1
        logging.getLogger(__name__).info("[%d/%d] %s", self._done, self._total, node.name)

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        import mlflow

        from rl_distill.tracking.run_summary import print_summary, run_url, wide_from_benchmark
        from rl_distill.tracking.runs import comparison_view_url

        catalog_config = dict(self._context.config_loader["catalog"])
        ui = getattr(getattr(self._context, "mlflow", None), "ui", None)  # kedro-mlflow's config (mlflow.yml)
        host, port = (ui.host, str(ui.port)) if ui is not None else ("127.0.0.1", "5000")
        outputs = pipeline.all_outputs()
        tables = []
        for table_name, report_name in self.REPORTS:
            if table_name in outputs:
                table = catalog.load(table_name)
                if table_name == "benchmark_table":
                    table = wide_from_benchmark(table)
                title = "benchmark: mean over seeds" if table_name == "benchmark_table" else "comparison (test set)"
                tables.append((title, table, catalog_filepath(catalog_config, report_name) or report_name))
        if self._run_id is None:
            print_summary(tables, None)
            return
        experiment_id = mlflow.get_run(self._run_id).info.experiment_id
        print_summary(tables, run_url(self._run_id, host, port),
                      comparison_url=comparison_view_url(experiment_id, host, port))


class ParentRunHooks:
    """Name the ``kedro run``'s parent MLflow run ``<pipelines> · <env> · params <hash>`` (kedro-mlflow names it by
    the pipeline alone, so ``--pipelines rlad`` made a parent ``rlad`` holding a child ``rlad``) and open the
    experiment on MLflow's model-training view; done at the first node, once kedro-mlflow's run is open."""

    def __init__(self) -> None:
        self._name: str | None = None

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        self._env, self._params = context.env, context.params

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        from rl_distill.tracking import parent_run_name

        self._name = parent_run_name(run_params.get("pipeline_names"), run_params.get("env") or self._env,
                                     self._params)

    @hook_impl
    def before_node_run(self, node: Any, catalog: Any, inputs: dict[str, Any]) -> None:
        if self._name is None:
            return
        from rl_distill.tracking import active_run_id, label_parent_run

        run_id = active_run_id()
        if run_id is not None:
            label_parent_run(run_id, self._name)
        self._name = None
