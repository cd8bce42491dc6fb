"""Teacher scoring nodes: rank teacher candidates on validation prompts, then score the selected teacher and the
warm-started student on the RL prompt pool and filter it (see :mod:`rl_distill.evaluation.teacher_scoring`)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from rl_distill.evaluation.teacher_scoring import ScoringConfig, cross_loglik, keep_prompt, sample_and_score
from rl_distill.io.model_dir import ModelDir
from rl_distill.models.factory import check_shared_vocab, load_model_dir
from rl_distill.parameters import PARAMETER_BLOCKS
from rl_distill.pipelines.model_configs import check_init_from
from rl_distill.pipelines.training import frame_to_examples, single_task
from rl_distill.tracking import model_run
from rl_distill.typed_config import from_dict


@dataclass(frozen=True)
class TeacherScoringParams:
    """``parameters_teacher_scoring.yml``: scoring decoding and prompt filter; ``candidates`` = extra teacher
    directories ranked beside the trained teacher; ``max_val_prompts`` validation prompts rank them."""

    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    max_val_prompts: int = 128
    candidates: tuple[str, ...] = ()


@PARAMETER_BLOCKS.register("teacher_scoring")
def validate_teacher_scoring(block: Mapping[str, Any], where: str) -> None:
    params = from_dict(TeacherScoringParams, block, where=where)
    for i, path in enumerate(params.candidates):
        check_init_from(path, f"{where}.candidates[{i}]")


def _subsample(frame: pl.DataFrame, limit: int | None, seed: int) -> pl.DataFrame:
    if limit is None or frame.height <= limit:
        return frame
    rows = sorted(random.Random(seed).sample(range(frame.height), limit))
    return frame[rows]


def _accuracy_by_difficulty(frame: pl.DataFrame, rates: list[float]) -> dict[str, float]:
    table = frame.select("difficulty").with_columns(pl.Series("rate", rates))
    out = {"all": float(table["rate"].mean())}
    for row in table.group_by("difficulty").agg(pl.col("rate").mean()).sort("difficulty").iter_rows(named=True):
        out[str(row["difficulty"])] = float(row["rate"])
    return out


def score_teachers(teacher_model: ModelDir, student_init_model: ModelDir, train_examples: pl.DataFrame,
                   val_examples: pl.DataFrame, tokenizer: Any, params: Mapping[str, Any],
                   ) -> tuple[dict[str, Any], pl.DataFrame, pl.DataFrame, ModelDir]:
    """Returns (teacher report, scored prompt table, filtered RL prompts, selected teacher)."""
    cfg = from_dict(TeacherScoringParams, params, where="parameters_teacher_scoring.yml:teacher_scoring")
    sc = cfg.scoring
    task = single_task(train_examples)
    student, student_tok = load_model_dir(student_init_model.path)
    val = _subsample(val_examples, cfg.max_val_prompts, sc.seed)
    val_ex = frame_to_examples(val)
    candidates = [teacher_model.path, *cfg.candidates]
    with model_run("teacher_scoring", tags={"method": "teacher_scoring", "seed": sc.seed}) as logger:
        ranking = []
        for path in candidates:
            model, tok = load_model_dir(path)
            check_shared_vocab(tok, student_tok, names=(f"teacher ({path})", f"student ({student_init_model.path})"))
            scores = sample_and_score(model, tokenizer, task, val_ex, sc, desc=f"teacher {path}")
            ranking.append({"path": str(path), "accuracy": _accuracy_by_difficulty(val, scores.pass_rates),
                            "mean_token_entropy": scores.mean_entropy})
        ranking.sort(key=lambda r: -r["accuracy"]["all"])
        selected = ModelDir(ranking[0]["path"]).check()
        teacher, _ = load_model_dir(selected.path)

        pool = _subsample(train_examples, sc.max_prompts, sc.seed)
        pool_ex = frame_to_examples(pool)
        t_scores = sample_and_score(teacher, tokenizer, task, pool_ex, sc, desc="teacher on RL prompts")
        s_scores = sample_and_score(student, tokenizer, task, pool_ex, sc, desc="student on RL prompts")
        scored = pool.select("id", "difficulty").with_columns(
            pl.Series("teacher_pass_rate", t_scores.pass_rates),
            pl.Series("student_pass_rate", s_scores.pass_rates),
        ).with_columns(keep=pl.struct("student_pass_rate", "teacher_pass_rate").map_elements(
            lambda r: keep_prompt(r["student_pass_rate"], r["teacher_pass_rate"], sc), return_dtype=pl.Boolean))
        rl_prompts = pool.join(scored.filter("keep").select("id"), on="id", how="semi")
        report = {
            "selected_teacher": str(selected.path),
            "ranking": ranking,
            "student_init": {"path": str(student_init_model.path),
                             "accuracy_on_val": _accuracy_by_difficulty(
                                 val, sample_and_score(student, tokenizer, task, val_ex, sc,
                                                       desc="student on val").pass_rates)},
            "rl_pool": {
                "prompts_scored": pool.height, "prompts_kept": rl_prompts.height,
                "teacher_pass_rate_mean": float(scored["teacher_pass_rate"].mean()),
                "student_pass_rate_mean": float(scored["student_pass_rate"].mean()),
                "teacher_mean_loglik_of_student_samples": cross_loglik(teacher, s_scores.batches),
                "teacher_mean_token_entropy": t_scores.mean_entropy,
            },
            "config": sc.__dict__,
        }
        logger.log_dict(report, "teacher_report.json")
        logger.log_metrics({"scoring/teacher_val_accuracy": ranking[0]["accuracy"]["all"],
                            "scoring/student_val_accuracy": report["student_init"]["accuracy_on_val"]["all"],
                            "scoring/prompts_kept": rl_prompts.height,
                            "scoring/teacher_loglik_student_samples":
                                report["rl_pool"]["teacher_mean_loglik_of_student_samples"]}, step=0)
    if rl_prompts.height == 0:
        raise ValueError(
            "teacher_scoring kept no RL prompts: every prompt is either always solved by the student or never by "
            "the teacher. Loosen teacher_scoring.scoring.student_solved_at_least / teacher_solved_at_most, "
            "or train the teacher longer.")
    return report, scored, rl_prompts, selected
