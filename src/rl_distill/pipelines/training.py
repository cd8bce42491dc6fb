"""The node-side adapter every training node shares: one trained model = one nested MLflow run.

One job: given a built policy, the data and a typed :class:`~rl_distill.engine.config.TrainConfig`, open a nested
MLflow run named by the method id (tags ``method``, ``alpha``, ``seed``, ``student``, ``teacher``; params = the typed
config), stream the engine's step metrics into it with ``step=``, and log the final HF directory (safetensors +
tokenizer) as the run's ``model`` artifact. The working directory of a training (checkpoints for resume) is keyed
by a hash of its config, so re-running the same configuration resumes, and a changed configuration starts afresh.
The model directory records its run id in ``mlflow_run.json`` so later pipelines (evaluation) log into that run.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from rl_distill.engine.config import TrainConfig
from rl_distill.engine.trainer import train
from rl_distill.io.model_dir import ModelDir
from rl_distill.models.factory import count_parameters
from rl_distill.tasks.base import Example
from rl_distill.tasks.registry import TASKS, get_task
from rl_distill.tracking import RunLogger, link_resumed_runs
from rl_distill.typed_config import ConfigError, to_dict

WORK_ROOT = Path("data/06_models/_work")
# Written into every trained model's directory: the nested MLflow run it was trained in (evaluation logs there).
RUN_FILE = "mlflow_run.json"


def frame_to_examples(frame: pl.DataFrame) -> list[Example]:
    """Rows of a curated split (``id, task, difficulty, prompt, trace, answer``, and ``trace_clean`` where the table
    has it) as :class:`Example`."""
    cols = ("id", "task", "difficulty", "prompt", "trace", "answer")
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise ConfigError(f"the examples table lacks column(s) {missing}; it has {frame.columns}")
    cols += ("trace_clean",) if "trace_clean" in frame.columns else ()
    return [Example(**row) for row in frame.select(cols).iter_rows(named=True)]


def single_task(frame: pl.DataFrame) -> Any:
    """The one task family of a split (training uses one verifier per run), built with the ``params`` its examples
    were generated or loaded with (the ``params`` column data_curation writes: a jsonl task's verifier needs its
    answer settings, and building it needs its ``data_files``).

    Subsets of a procedural task may differ in generation params only (K&K's ``max_depth``); their verifiers read
    the reply and the gold answer alone, so the first params in sorted order build it. A loaded task's examples
    must share one params set.
    """
    names = sorted(set(frame["task"].to_list()))
    if len(names) != 1:
        raise ConfigError(f"training needs examples of exactly one task family, got {names}; "
                          "filter the split in data_curation parameters")
    name = names[0]
    if "params" not in frame.columns:
        return get_task(name)
    variants = sorted(set(frame["params"].to_list()))
    if len(variants) > 1 and not TASKS.get(name).procedural:
        raise ConfigError(f"the examples of task '{name}' come from {len(variants)} different params sets "
                          f"({'; '.join(variants)}); training uses one verifier: curate one subset of '{name}' "
                          "(one params block) per training run")
    return get_task(name, **json.loads(variants[0]))


def describe_model(model: Any, label: str) -> str:
    """e.g. ``llama h128 L3 (0.64M)`` for run tags."""
    cfg = model.config
    return (f"{label} {cfg.model_type} h{cfg.hidden_size} L{cfg.num_hidden_layers} "
            f"({count_parameters(model) / 1e6:.2f}M)")


def frame_fingerprint(frame: pl.DataFrame) -> str:
    """A short hash of a split's example ids (so a resumed training never continues on other data)."""
    return hashlib.sha256("\n".join(frame["id"].cast(pl.String).to_list()).encode()).hexdigest()[:16]


def model_fingerprint(model_dir: ModelDir) -> str:
    """The MLflow run a model was trained in, or its weights file's size and mtime (models from ``init_from``)."""
    run_file = model_dir.path / RUN_FILE
    if run_file.exists():
        return json.loads(run_file.read_text())["run_id"]
    weights = sorted(model_dir.path.glob("*.safetensors"))
    return ";".join(f"{w.name}:{w.stat().st_size}:{w.stat().st_mtime_ns}" for w in weights)


def work_dir(name: str, *parts: Any) -> Path:
    """``data/06_models/_work/<name>-<hash of parts>``: same config, data and start model -> same dir -> an
    interrupted training resumes from its newest checkpoint."""
    digest = hashlib.sha256(json.dumps([to_dict(p) if hasattr(p, "__dataclass_fields__") else p for p in parts],
                                       sort_keys=True, default=str).encode()).hexdigest()[:10]
    return WORK_ROOT / f"{name}-{digest}"


@dataclass(frozen=True)
class Phase:
    """One call of the engine inside a model's run; metrics are logged at ``step_offset + step``."""

    name: str
    config: TrainConfig


def run_phases(*, name: str, logger: RunLogger, policy: Any, tokenizer: Any, task: Any,
               train_examples: Sequence[Example], val_examples: Sequence[Example], phases: Sequence[Phase],
               output_dir: Path, teacher: Any = None, reference: Any = None,
               reward_fn: Callable | None = None) -> tuple[ModelDir, list[Any]]:
    """Train ``policy`` (the model ``name``) through each phase in turn (e.g. SFT then GRPO for the teacher), in
    one MLflow run; progress bars and log lines say ``<name>/<loss>`` (``teacher/sft``, ``teacher/grpo``).

    A phase resumed from a checkpoint re-logs the checkpoint's metrics into this run (every step once, see
    :func:`~rl_distill.engine.trainer.train`) and links this run and the interrupted ones by tags.

    Returns the final HF directory and each phase's ``TrainResult``.
    """
    offset = 0
    results = []
    for phase in phases:
        def log_fn(metrics: Mapping[str, float], step: int, _offset: int = offset) -> None:
            logger.log_metrics(metrics, step=_offset + step)

        result = train(policy=policy, tokenizer=tokenizer, task=task, train_examples=list(train_examples),
                       val_examples=list(val_examples), config=phase.config, teacher=teacher, reference=reference,
                       log_fn=log_fn, output_dir=output_dir / phase.name, reward_fn=reward_fn,
                       label=f"{name}/{phase.config.loss.name}", tracking_run=logger.run_id)
        link_resumed_runs(logger.run_id, result.earlier_tracking_runs)
        offset += phase.config.steps_for(len(train_examples))
        results.append(result)
    # Every phase finished: drop the resume checkpoints so that re-running trains again instead of silently
    # reusing this result (reuse a model explicitly with `init_from`).
    for phase in phases:
        shutil.rmtree(output_dir / phase.name / "checkpoints", ignore_errors=True)
    final = ModelDir(results[-1].final_model_dir).check()
    (final.path / RUN_FILE).write_text(json.dumps({"run_id": logger.run_id}))
    logger.log_model(final.path)
    return final, results
