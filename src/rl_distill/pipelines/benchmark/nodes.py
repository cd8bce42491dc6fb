"""Benchmark nodes: every registered distill method (and R-TAP) trained from the same student_init and teacher for
several seeds (``benchmark.seeds``, data: ``--params benchmark.seeds=[3,4]`` runs others), each seed its own nested
MLflow run tagged ``seed``, evaluated on the same test problems, then one table with per-method means over seeds and
the paired differences to the baseline (:mod:`rl_distill.evaluation.seeds`), and learning curves with a band over
seeds.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from rl_distill.evaluation.figures import seed_learning_curves
from rl_distill.evaluation.seed_report import render_report
from rl_distill.evaluation.seeds import seed_table
from rl_distill.io.model_dir import ModelDir
from rl_distill.parameters import PARAMETER_BLOCKS
from rl_distill.pipelines.distill.nodes import method_plan, train_plan
from rl_distill.pipelines.evaluation.nodes import evaluate_checkpoint
from rl_distill.pipelines.rtap.nodes import (
    CONFIDENCE_METRICS_FILE,
    rtap_config,
    shared_stage1_dir,
    train_rtap_student,
)
from rl_distill.pipelines.training import RUN_FILE
from rl_distill.tracking.history import metric_histories
from rl_distill.typed_config import ConfigError, check_range, from_dict

MODEL_ROOT = Path("data/06_models/benchmark")


@dataclass(frozen=True)
class BenchmarkParams:
    """``benchmark`` block: the training ``seeds`` (each overrides ``distill.common.seed``), the ``baseline`` the
    paired differences are taken against, the learning-curve ``curve_keys`` and the bootstrap settings."""

    seeds: tuple[int, ...] = (0, 1, 2)
    baseline: str = "grpo"
    curve_keys: tuple[str, ...] = ("val/accuracy", "rollout/reward_mean")
    n_resamples: int = 1000
    level: float = 0.95
    bootstrap_seed: int = 0
    base_models: tuple[str, ...] = ("teacher", "student_init")
    # Paired differences are also taken against these (beside the baseline): the R-TAP section sets rtap against
    # grpo and against the student_init every seed starts from.
    references: tuple[str, ...] = ("student_init",)

    def __post_init__(self) -> None:
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds={list(self.seeds)!r} must list distinct seeds, e.g. [0, 1, 2].")
        check_range("n_resamples", self.n_resamples, 1)
        check_range("level", self.level, 0.0, 1.0, lo_open=True, hi_open=True)


def load_params(block: Any, where: str = "parameters_benchmark.yml:benchmark") -> BenchmarkParams:
    return block if isinstance(block, BenchmarkParams) else from_dict(BenchmarkParams, block or {}, where=where)


@PARAMETER_BLOCKS.register("benchmark")
def validate_benchmark(block: Mapping[str, Any], where: str) -> BenchmarkParams:
    from rl_distill.known_methods import distill_methods, known_methods

    cfg = load_params(block, where)
    if cfg.baseline not in distill_methods():
        raise ConfigError(f"{where}.baseline={cfg.baseline!r} is not a registered distill method; valid: "
                          f"{', '.join(distill_methods())}.")
    valid = [*cfg.base_models, *known_methods()]
    for ref in cfg.references:
        if ref not in valid:
            raise ConfigError(f"{where}.references: {ref!r} is neither a base model nor a registered method; "
                              f"valid: {', '.join(valid)}.")
    return cfg


def _save_seed(final: ModelDir, method: str, seed: int) -> dict[str, str]:
    dest = MODEL_ROOT / method / f"seed_{seed}"
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(final.path, dest)
    return {"path": str(dest), "run_id": json.loads((dest / RUN_FILE).read_text())["run_id"]}


def train_seeds(student_init_model: ModelDir, teacher_model: ModelDir, train_data: pl.DataFrame,
                val_examples: pl.DataFrame, tokenizer: Any, common: Mapping[str, Any], params: Any,
                best_params: Mapping[str, Any] | None, benchmark: Any, method: str) -> dict[str, dict[str, str]]:
    """Train ``method`` once per seed; ``{seed: {path, run_id}}`` of the saved models (data/06_models/benchmark)."""
    cfg, plan = load_params(benchmark), method_plan(method, common, params, best_params)
    out = {}
    for seed in cfg.seeds:
        seeded = dataclasses.replace(plan, train=dataclasses.replace(plan.train, seed=seed))
        final = train_plan(seeded, student_init_model, teacher_model, train_data, val_examples, tokenizer)
        out[str(seed)] = _save_seed(final, method, seed)
    return out


def train_rtap_seeds(student_init_model: ModelDir, rl_prompts: pl.DataFrame, val_examples: pl.DataFrame,
                     tokenizer: Any, common: Mapping[str, Any], rtap: Mapping[str, Any],
                     benchmark: Any, train_examples: pl.DataFrame, method: str) -> dict[str, dict[str, str]]:
    """An R-TAP-trainer ``method`` (its own two-stage trainer, no teacher) once per seed, the seed laid over
    ``distill.common`` as for the distill methods; ``{seed: {path, run_id}}``. Stage 1 (C_phi) does not read the
    seed, so the seeds share one, trained by the first and removed after the last."""
    cfg = load_params(benchmark)
    stage1 = shared_stage1_dir(rtap_config(common, rtap, where=f"parameters_rtap.yml:{method}"), student_init_model,
                               rl_prompts, val_examples, train_examples)
    out = {str(seed): _save_seed(train_rtap_student(student_init_model, rl_prompts, val_examples, tokenizer,
                                                    {**common, "seed": seed}, rtap, train_examples, stage1_dir=stage1),
                                 method, seed)
           for seed in cfg.seeds}
    shutil.rmtree(stage1, ignore_errors=True)
    return out


def evaluate_seeds(models: Mapping[str, Mapping[str, str]], test_examples: pl.DataFrame, tokenizer: Any,
                   evaluation: Any, method: str) -> pl.DataFrame:
    """Every seed's model on the evaluation pipeline's test problems (metrics logged into its training run); the
    per-sample frame with a ``seed`` column."""
    frames = []
    for seed, info in models.items():
        samples, _ = evaluate_checkpoint(ModelDir(Path(info["path"])), test_examples, tokenizer, evaluation,
                                         model_name=method)
        frames.append(samples.with_columns(pl.lit(int(seed)).alias("seed")))
    return pl.concat(frames)


def report(benchmark: Any, eval_samples: pl.DataFrame, *parts: Any) -> tuple[pl.DataFrame, str, dict[str, Any]]:
    """``parts`` = each method's seed samples, then each method's ``{seed: {path, run_id}}`` (same order).

    Returns the tidy benchmark table (csv), the markdown report and the learning-curve figures."""
    cfg = load_params(benchmark)
    half = len(parts) // 2
    seeded, models = parts[:half], parts[half:]
    base = eval_samples.filter(pl.col("model").is_in(list(cfg.base_models))).with_columns(pl.lit(None, pl.Int64)
                                                                                             .alias("seed"))
    samples = pl.concat([base, *[f.cast(base.schema) for f in seeded]])
    table = seed_table(samples, baseline=cfg.baseline, n_resamples=cfg.n_resamples, level=cfg.level,
                       seed=cfg.bootstrap_seed, references=cfg.references)
    runs = {f"{frame['model'][0]}/seed{seed}": info["run_id"]
            for frame, by_seed in zip(seeded, models) for seed, info in by_seed.items()}
    histories = metric_histories(runs, cfg.curve_keys)
    figures = {f"benchmark_{key.replace('/', '_')}.png": seed_learning_curves(histories, key)
               for key in cfg.curve_keys}
    confidence = {frame["model"][0]: conf for frame, by_seed in zip(seeded, models)
                  if (conf := _confidence_metrics(by_seed))}
    text = render_report(table, list(cfg.seeds), cfg.baseline, cfg.level, list(figures),
                         references=cfg.references, confidence=confidence)
    return table, text, figures


def _confidence_metrics(by_seed: Mapping[str, Mapping[str, str]]) -> dict[int, dict[str, float]]:
    """``{seed: confidence/* metrics}`` of an R-TAP method's seeds (C_phi's held-out AUROC / ECE, saved beside each
    policy); empty for other methods."""
    out = {}
    for seed, info in by_seed.items():
        path = Path(info["path"]) / CONFIDENCE_METRICS_FILE
        if path.is_file():
            out[int(seed)] = json.loads(path.read_text())
    return out
