"""Nested MLflow runs per trained model, step metrics and artifacts.

Every ``kedro run`` is one MLflow run opened by kedro-mlflow. Nodes that train a model open a nested run inside it
with :func:`model_run` (named by method id, tagged ``method``/``alpha``/``seed``/``student``/``teacher``) and stream
metrics through :meth:`RunLogger.log_metrics` with ``step=``. Outside a Kedro run (tests, notebooks) the same calls
open a top-level run against whatever tracking URI is configured.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import mlflow

# MLflow rejects param values over this many characters.
_MAX_PARAM_LEN = 6000


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Flatten a nested dict (dataclass values included) to ``{"a.b.c": "value"}`` as MLflow params want.

    >>> flatten_params({"loss": {"alpha": 0.5, "name": "rlad"}, "seed": 1})
    {'loss.alpha': '0.5', 'loss.name': 'rlad', 'seed': '1'}
    """
    out: dict[str, str] = {}
    for key, value in params.items():
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = dataclasses.asdict(value)
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_params(value, prefix=f"{name}."))
        else:
            out[name] = str(value)[:_MAX_PARAM_LEN]
    return out


def active_run_id() -> str | None:
    run = mlflow.active_run()
    return run.info.run_id if run else None


class RunLogger:
    """Logs into one MLflow run by id, so it also works from code that is not inside the run's context."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self._client = mlflow.MlflowClient()

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Log finite float metrics at ``step`` (non-finite values are logged as NaN by MLflow's rules)."""
        clean = {k: float(v) for k, v in metrics.items() if v is not None}
        if not clean:
            return
        now = int(time.time() * 1000)
        self._client.log_batch(
            self.run_id,
            metrics=[mlflow.entities.Metric(k, v if math.isfinite(v) else float("nan"), now, int(step))
                     for k, v in clean.items()],
        )

    def log_params(self, params: Mapping[str, Any]) -> None:
        flat = flatten_params(params)
        items = list(flat.items())
        for i in range(0, len(items), 100):  # MLflow batch limit
            self._client.log_batch(self.run_id, params=[mlflow.entities.Param(k, v) for k, v in items[i:i + 100]])

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        for key, value in tags.items():
            self._client.set_tag(self.run_id, key, str(value))

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Log a file, or every file of a directory, under ``artifact_path``."""
        path = Path(path)
        if path.is_dir():
            self._client.log_artifacts(self.run_id, str(path), artifact_path)
        else:
            self._client.log_artifact(self.run_id, str(path), artifact_path)

    def log_text(self, text: str, artifact_file: str) -> None:
        self._client.log_text(self.run_id, text, artifact_file)

    def log_dict(self, data: Mapping[str, Any], artifact_file: str) -> None:
        self._client.log_text(self.run_id, json.dumps(data, indent=2, default=str), artifact_file)

    def log_figure(self, figure: Any, artifact_file: str) -> None:
        self._client.log_figure(self.run_id, figure, artifact_file)

    def log_table_csv(self, frame: Any, artifact_file: str) -> None:
        """Log a polars/pandas frame as CSV."""
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / Path(artifact_file).name
            if hasattr(frame, "write_csv"):
                frame.write_csv(out)
            else:
                frame.to_csv(out, index=False)
            parent = str(Path(artifact_file).parent)
            self._client.log_artifact(self.run_id, str(out), None if parent == "." else parent)

    def log_model(self, model_dir: str | Path, name: str = "model") -> str:
        """Log the HF directory ``model_dir`` as an MLflow Model (the ``transformers`` flavour, task
        ``text-generation``) linked to this run, which must be the active run; returns its ``models:/`` URI.

        ``mlflow.transformers.load_model(uri)`` gives a generation pipeline, ``mlflow.pyfunc.load_model(uri)`` a
        model whose ``predict`` takes prompts and ``params`` (``max_new_tokens``, ``do_sample``, ``temperature``).
        Requirements are pinned to the running torch / transformers, so MLflow does not re-import the model in a
        subprocess to infer them.
        """
        import torch
        import transformers

        active = mlflow.active_run()
        if active is None or active.info.run_id != self.run_id:
            raise RuntimeError(f"log_model({model_dir}): run {self.run_id} must be the active MLflow run")
        model = transformers.AutoModelForCausalLM.from_pretrained(model_dir)
        tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
        signature = mlflow.models.infer_signature(
            ["prompt"], ["reply"], params={"max_new_tokens": 256, "do_sample": False, "temperature": 1.0})
        info = mlflow.transformers.log_model(
            {"model": model, "tokenizer": tokenizer}, name=name, task="text-generation", signature=signature,
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", f"transformers=={transformers.__version__}"],
        )
        return info.model_uri

    def metric_history(self, key: str) -> list[tuple[int, float]]:
        return [(m.step, m.value) for m in self._client.get_metric_history(self.run_id, key)]


RUN_COLOR_TAG = "mlflow.runColor"  # the colour the MLflow UI draws a run in (its runs table, charts, compare view)


def run_color(name: str) -> str:
    """The run's colour: the one its model has in every report figure (``eval.rlad`` is drawn like ``rlad``).

    >>> run_color("rlad") == run_color("eval.rlad") != run_color("grpo")
    True
    >>> run_color("rtap_confidence") != run_color("teacher_scoring")
    True
    """
    from rl_distill.evaluation.figures import method_styles

    model = name.removeprefix("eval.")
    return method_styles([model])[model][0]


@contextlib.contextmanager
def model_run(name: str, tags: Mapping[str, Any] | None = None,
              params: Mapping[str, Any] | None = None) -> Iterator[RunLogger]:
    """Open a run named ``name`` nested in the active run (kedro-mlflow's ``kedro run`` run) if there is one.

    Tags ``method`` etc. and flattened ``params`` are logged on entry. The run ends FAILED if the body raises.
    """
    parent = mlflow.active_run()
    run = mlflow.start_run(run_name=name, nested=parent is not None)
    status = "FINISHED"
    try:
        logger = RunLogger(run.info.run_id)
        logger.set_tags({"mlflow.runName": name, RUN_COLOR_TAG: run_color(name), **(tags or {})})
        if params:
            logger.log_params(params)
        yield logger
    except BaseException:
        status = "FAILED"
        raise
    finally:
        mlflow.end_run(status=status)


@contextlib.contextmanager
def detached_run(name: str, tags: Mapping[str, Any] | None = None,
                 params: Mapping[str, Any] | None = None) -> Iterator[RunLogger]:
    """A run nested under the active run (if any) but not made active, so it can stay open beside another nested run
    (e.g. R-TAP's confidence generator, trained inside the same call as the policy)."""
    client = mlflow.MlflowClient()
    parent = mlflow.active_run()
    run_tags = {"mlflow.runName": name, RUN_COLOR_TAG: run_color(name), **{k: str(v) for k, v in (tags or {}).items()}}
    if parent is not None:
        run_tags["mlflow.parentRunId"] = parent.info.run_id
    experiment_id = parent.info.experiment_id if parent is not None else "0"
    run = client.create_run(experiment_id, run_name=name, tags=run_tags)
    logger = RunLogger(run.info.run_id)
    status = "FINISHED"
    try:
        if params:
            logger.log_params(params)
        yield logger
    except BaseException:
        status = "FAILED"
        raise
    finally:
        client.set_terminated(run.info.run_id, status=status)


RESUMED_FROM_TAG, RESUMED_IN_TAG = "rl_distill.resumed_from", "rl_distill.resumed_in"


def link_resumed_runs(run_id: str, earlier: Sequence[str]) -> None:
    """Link a run that resumed a training to the runs it continues (``earlier``, oldest first): it gets the tag
    ``rl_distill.resumed_from`` = their ids, each of them ``rl_distill.resumed_in`` = ``run_id``. No-op when
    ``earlier`` is empty; ids of runs that no longer exist are skipped."""
    if not earlier:
        return
    client = mlflow.MlflowClient()
    client.set_tag(run_id, RESUMED_FROM_TAG, ",".join(earlier))
    for old in earlier:
        with contextlib.suppress(mlflow.exceptions.MlflowException):
            client.set_tag(old, RESUMED_IN_TAG, run_id)


def mark_run_killed(run_id: str) -> list[str]:
    """End ``run_id`` and every run nested under it (at any depth) that is still RUNNING as KILLED: they belong to a
    process that died without closing them (e.g. SIGKILL). Returns the ids marked; unknown ids are ignored."""
    client = mlflow.MlflowClient()
    try:
        root = client.get_run(run_id)
    except mlflow.exceptions.MlflowException:
        return []
    marked, frontier = [], [root]
    while frontier:
        run = frontier.pop()
        if run.info.status == "RUNNING":
            client.set_terminated(run.info.run_id, status="KILLED")
            marked.append(run.info.run_id)
        frontier.extend(client.search_runs([run.info.experiment_id],
                                           filter_string=f"tags.mlflow.parentRunId = '{run.info.run_id}'"))
    return marked


# MLflow 3 opens an experiment in its GenAI view (traces) unless this experiment tag says otherwise.
EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND = "mlflow.experimentKind", "custom_model_development"


def parent_run_name(pipelines: list[str] | None, env: str, params: Mapping[str, Any]) -> str:
    """The name of a ``kedro run``'s parent run: what ran, in which environment, with which parameters.

    >>> parent_run_name(["rlad"], "local", {"distill": {"seed": 0}})
    'rlad · local · params d96e877c'
    >>> parent_run_name(None, "smoke", {})[:20]
    'default · smoke · pa'
    """
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:8]
    names = "+".join(p if p != "__default__" else "default" for p in (pipelines or ["__default__"]))
    return f"{names} · {env} · params {digest}"


def label_parent_run(run_id: str, name: str) -> None:
    """Give the run a human name, open its experiment on the model-training view (runs table, charts) and store the
    comparison view (:func:`comparison_view_url`) on it."""
    client = mlflow.MlflowClient()
    client.set_tag(run_id, "mlflow.runName", name)
    experiment_id = client.get_run(run_id).info.experiment_id
    client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND)
    client.set_experiment_tag(experiment_id, SHARED_VIEW_PREFIX + COMPARISON_VIEW_KEY, json.dumps(COMPARISON_VIEW))


# MLflow's UI restores a runs-table view (its columns, sort, filter) from the experiment tag
# `mlflow.sharedViewState.<key>` when the URL carries `?viewStateShareKey=<key>` (its "Share" button writes such
# tags). Column ids are `<attributes|metrics|params|tags>.`<name>``.
SHARED_VIEW_PREFIX, COMPARISON_VIEW_KEY = "mlflow.sharedViewState.", "rl-distill-comparison"
COMPARISON_COLUMNS = (
    "metrics.`eval/accuracy`", "metrics.`eval/accuracy_ci_low`", "metrics.`eval/accuracy_ci_high`",
    "metrics.`eval/response_tokens`", "metrics.`eval/trace_consistency`",
    "tags.`method`", "tags.`seed`", "tags.`alpha`", "attributes.`Models`",
)
# Only evaluated runs (one row per model, not nested under their parents), best test accuracy first.
COMPARISON_VIEW = {"selectedColumns": list(COMPARISON_COLUMNS), "searchFilter": 'metrics."eval/accuracy" >= 0',
                   "orderByKey": "metrics.`eval/accuracy`", "orderByAsc": False}


def comparison_view_url(experiment_id: str, host: str = "127.0.0.1", port: str | int = "5000") -> str:
    """The experiment's runs table with the comparison columns (test accuracy and its 95% CI, response tokens,
    trace consistency, the method / seed / alpha tags, the logged model), as :func:`label_parent_run` stored it,
    in MLflow 3's model-training view (its UI otherwise opens on the GenAI overview of traces)."""
    return (f"http://{host}:{port}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
            f"&viewStateShareKey={COMPARISON_VIEW_KEY}")
