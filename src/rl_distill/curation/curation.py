"""Curate raw examples with polars: dedupe, verify, measure in tokens, apply the length budget, split, summarise.

Kedro-free: the nodes in ``nodes.py`` call these functions. Order of the filters (each counted per stratum):
1. dedupe on (task, normalised question), keeping the first occurrence (so later specs lose cross-spec repeats);
2. drop rows whose reference ``trace`` or ``trace_clean`` fails its own verifier or the think/answer format;
3. count tokens (``prompt_tokens``, ``trace_tokens``; ``total_tokens`` = both + ``<bos>`` + ``<eos>``) and drop rows
   over ``max_tokens``.
Strata are (subset, difficulty). The split is a partition of the curated rows, so no question is in two splits.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from rl_distill.curation.config import SplitConfig
from rl_distill.models.prompt_format import render_prompts, uses_chat_template
from rl_distill.models.tokenizer import char_level_added_tokens
from rl_distill.tasks.base import Task, Verdict
from rl_distill.tasks.format import is_well_formed

STRATUM = ("subset", "difficulty")
SPLITS = ("train", "val", "test")
DROP_STAGES = ("duplicates", "failed_verify", "over_budget")


def token_lengths(tokenizer: Any, texts: Sequence[str]) -> list[int]:
    """Tokens per text, without special tokens, by encoding (works for any HF fast tokenizer)."""
    if not texts:
        return []
    encodings = tokenizer.backend_tokenizer.encode_batch(list(texts), add_special_tokens=False)
    return [len(e.ids) for e in encodings]


def token_length_expr(column: str, added_tokens: Sequence[str]) -> pl.Expr:
    """Token count of ``column`` under a char-level tokenizer with these added tokens (see
    :func:`rl_distill.models.tokenizer.char_level_added_tokens`); the fast twin of :func:`token_lengths`."""
    count = pl.col(column).str.len_chars().cast(pl.Int64)
    for token in added_tokens:
        if len(token) > 1:
            count = count - (len(token) - 1) * pl.col(column).str.count_matches(token, literal=True)
    return count.alias(f"{column}_tokens")


def with_token_counts(frame: pl.DataFrame, tokenizer: Any) -> pl.DataFrame:
    """Add ``prompt_tokens``, ``trace_tokens`` and ``total_tokens`` (= both + ``<bos>`` + ``<eos>``). Prompts are
    counted as the model reads them: through the chat template when the tokenizer has one."""
    added = char_level_added_tokens(tokenizer)
    if added is not None and not uses_chat_template(tokenizer):
        counted = frame.with_columns(token_length_expr("prompt", added), token_length_expr("trace", added))
    else:
        prompts, _ = render_prompts(tokenizer, frame["prompt"].to_list())
        counted = frame.with_columns(
            pl.Series("prompt_tokens", token_lengths(tokenizer, prompts), dtype=pl.Int64),
            pl.Series("trace_tokens", token_lengths(tokenizer, frame["trace"].to_list()), dtype=pl.Int64),
        )
    return counted.with_columns(total_tokens=pl.col("prompt_tokens") + pl.col("trace_tokens") + 2)


def _verified(frame: pl.DataFrame, tasks: Mapping[str, Task]) -> pl.Series:
    """True where both reference traces are well formed and verify as correct."""
    ok = []
    for subset, trace, clean, answer in frame.select("subset", "trace", "trace_clean", "answer").iter_rows():
        task = tasks[subset]
        ok.append(all(is_well_formed(t) and task.verify(t, answer) is Verdict.CORRECT
                      for t in ((trace,) if trace == clean else (trace, clean))))
    return pl.Series("ok", ok, dtype=pl.Boolean)


def _counts(frame: pl.DataFrame, name: str) -> pl.DataFrame:
    return frame.group_by(STRATUM).agg(pl.len().alias(name))


def curate(raw: pl.DataFrame, tokenizer: Any, tasks: Mapping[str, Task], max_tokens: int
           ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(curated rows with token columns, drops per stratum with columns ``generated`` and :data:`DROP_STAGES`).

    ``tasks`` maps each ``subset`` label to its task (for the verifier).
    """
    deduped = raw.unique(subset=["task", "question_key"], keep="first", maintain_order=True)
    verified = deduped.filter(_verified(deduped, tasks)) if deduped.height else deduped
    measured = with_token_counts(verified, tokenizer)
    curated = measured.filter(pl.col("total_tokens") <= max_tokens).with_columns(
        has_correction=pl.col("trace") != pl.col("trace_clean"))
    stages = [_counts(raw, "generated"), _counts(deduped, "_deduped"), _counts(verified, "_verified"),
              _counts(curated, "kept")]
    drops = stages[0]
    for stage in stages[1:]:
        drops = drops.join(stage, on=list(STRATUM), how="left")
    drops = drops.fill_null(0).with_columns(
        duplicates=pl.col("generated") - pl.col("_deduped"),
        failed_verify=pl.col("_deduped") - pl.col("_verified"),
        over_budget=pl.col("_verified") - pl.col("kept"),
    ).select(*STRATUM, "generated", *DROP_STAGES, "kept").sort(STRATUM)
    return curated, drops


def _allocation(rows: int, cfg: SplitConfig) -> tuple[int, int]:
    """(val, test) rows for a stratum of ``rows``, shrunk to keep ``min_train_fraction`` in train."""
    want = cfg.val_per_difficulty + cfg.test_per_difficulty
    budget = int(rows * (1.0 - cfg.min_train_fraction))
    if want <= budget:
        return cfg.val_per_difficulty, cfg.test_per_difficulty
    val = round(budget * cfg.val_per_difficulty / want) if want else 0
    return val, budget - val


def split(curated: pl.DataFrame, cfg: SplitConfig, seed: int) -> dict[str, pl.DataFrame]:
    """Stratified train/val/test partition: per (subset, difficulty) a seeded shuffle, then val, test, rest train.

    Rows stay grouped by stratum inside each split (shuffle before training). Raises if a normalised question
    lands in two splits (it cannot after dedupe; this guards the invariant).
    """
    labels = []
    parts = []
    for key, part in curated.partition_by(list(STRATUM), as_dict=True, maintain_order=True).items():
        order = list(range(part.height))
        random.Random(f"split:{seed}:{key[0]}:{key[1]}").shuffle(order)
        n_val, n_test = _allocation(part.height, cfg)
        names = ["val"] * n_val + ["test"] * n_test + ["train"] * (part.height - n_val - n_test)
        parts.append(part[order])
        labels.extend(names)
    if not parts:
        return {name: curated.clear() for name in SPLITS}
    assigned = pl.concat(parts).with_columns(pl.Series("split", labels, dtype=pl.String))
    out = {name: assigned.filter(pl.col("split") == name).drop("split") for name in SPLITS}
    check_no_leakage(out)
    return out


def check_no_leakage(splits: Mapping[str, pl.DataFrame]) -> None:
    """Raise ValueError naming the splits and one question if any normalised question is in two splits."""
    names = list(splits)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            shared = splits[first].join(splits[second], on=["task", "question_key"], how="semi")
            if shared.height:
                raise ValueError(f"{shared.height} question(s) in both {first} and {second}, e.g. "
                                 f"{shared['question_key'][0]!r}")


def statistics(drops: pl.DataFrame, bad_rows: pl.DataFrame, splits: Mapping[str, pl.DataFrame],
               cfg: SplitConfig) -> pl.DataFrame:
    """One row per (subset, difficulty) plus an ``all`` row: counts through curation, split sizes, token lengths.

    ``distinct_fraction`` = distinct / generated shows saturation (K&K n=2 has few distinct puzzles);
    ``eval_scaled`` marks strata whose val/test were shrunk; ``corrected_fraction`` is the share of rows whose
    ``trace`` carries a self-correction; ``tokens_p50..max`` are percentiles of ``total_tokens``.
    """
    kept = pl.concat([splits[name].with_columns(split=pl.lit(name)) for name in SPLITS])
    sizes = kept.group_by(STRATUM).agg(
        *[(pl.col("split") == name).sum().alias(name) for name in SPLITS],
        pl.col("has_correction").mean().alias("corrected_fraction"),
        *[pl.col("total_tokens").quantile(q, "nearest").alias(f"tokens_p{int(q * 100)}")
          for q in (0.5, 0.9, 0.99)],
        pl.col("total_tokens").max().alias("tokens_max"),
        pl.col("prompt_tokens").mean().alias("prompt_tokens_mean"),
        pl.col("trace_tokens").mean().alias("trace_tokens_mean"),
    )
    skipped = bad_rows.group_by("subset").agg(pl.len().alias("bad_rows_skipped"))
    table = (drops.join(sizes, on=list(STRATUM), how="left")
             .join(skipped, on="subset", how="left")
             .with_columns(pl.col("bad_rows_skipped").fill_null(0),
                           *[pl.col(name).fill_null(0) for name in SPLITS]))
    table = table.with_columns(
        distinct_fraction=(pl.col("generated") - pl.col("duplicates")) / pl.col("generated"),
        eval_scaled=(pl.col("val") < cfg.val_per_difficulty) | (pl.col("test") < cfg.test_per_difficulty),
    )
    counts = ["generated", "bad_rows_skipped", *DROP_STAGES, "kept", *SPLITS]
    total = table.select(
        pl.lit("all").alias("subset"), pl.lit(None, dtype=pl.Int64).alias("difficulty"),
        *[pl.col(c).sum() for c in counts],
        (pl.col("eval_scaled").any()).alias("eval_scaled"),
    ).with_columns(distinct_fraction=(pl.col("generated") - pl.col("duplicates")) / pl.col("generated"))
    if kept.height:
        total = total.with_columns(
            pl.lit(kept["has_correction"].mean()).alias("corrected_fraction"),
            *[pl.lit(kept["total_tokens"].quantile(q, "nearest")).alias(f"tokens_p{int(q * 100)}")
              for q in (0.5, 0.9, 0.99)],
            pl.lit(kept["total_tokens"].max()).alias("tokens_max"),
            pl.lit(kept["prompt_tokens"].mean()).alias("prompt_tokens_mean"),
            pl.lit(kept["trace_tokens"].mean()).alias("trace_tokens_mean"),
        )
    columns = [*STRATUM, *counts, "distinct_fraction", "eval_scaled", "corrected_fraction", "tokens_p50",
               "tokens_p90", "tokens_p99", "tokens_max", "prompt_tokens_mean", "trace_tokens_mean"]
    table = table.select(columns)
    table = pl.concat([table, total.select([c for c in columns if c in total.columns])], how="diagonal_relaxed")
    return table.with_columns(pl.col(counts).cast(pl.Int64))
