"""Statistics over training seeds: per-method means with a two-way bootstrap, paired differences to a baseline.

One job: turn per-sample records of several methods x seeds (:data:`~rl_distill.evaluation.samples.SAMPLE_SCHEMA`
plus a ``seed`` column) into the benchmark table. Per method, ``A[s, p]`` is the accuracy (mean over its k samples)
of seed ``s`` on test problem ``p``; the estimate is the mean over the seed x problem grid. Its 95% interval is a
two-way percentile bootstrap: each resample draws S seeds and P problems with replacement and averages the drawn
grid, so the interval carries both the test-set noise and the seed-to-seed noise.

The difference to the baseline (``grpo``) is **paired**: seed ``s`` of a method and seed ``s`` of the baseline share
their initial student, prompt order and sampling seed, and both answer the same problems, so each resample draws
the same seeds and problems for both and averages ``A_m - A_base`` (Efron & Tibshirani 1993, ch. 6; the same idea as
the paired tests of Dror et al. 2018 for comparing NLP systems). A method is "better" when the interval excludes 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from rl_distill.evaluation.summary import ALL, BEHAVIOUR_METRICS, difficulty_sort_key

SEED_TABLE_SCHEMA = {
    "model": pl.String, "difficulty": pl.String, "metric": pl.String, "n_seeds": pl.Int64, "value": pl.Float64,
    "ci_low": pl.Float64, "ci_high": pl.Float64, "per_seed": pl.String,
}
# Per-sample expressions averaged per (seed, problem): the benchmark's metrics (each reads the columns its
# expression names, ``expr.meta.root_names()``).
# The behaviour metrics (tokens, trace consistency, Oops matches and think-answer cycles per reply) are the
# evaluation summary's own expressions: one definition for both tables.
SEED_METRICS = {
    "accuracy": pl.col("correct").cast(pl.Float64),
    **{name: BEHAVIOUR_METRICS[name] for name in ("response_tokens", "trace_consistency", "oops_rate", "cycles")},
}


def seed_problem_grid(samples: pl.DataFrame, metric: str) -> tuple[np.ndarray, list[int], list[str]]:
    """``(A [S, P], seeds, problem ids)`` of one model's sampled rows for ``metric`` (NaN where a cell is empty).

    >>> rows = pl.DataFrame({"seed": [0, 0, 1, 1], "example_id": ["p", "q", "p", "q"],
    ...                      "correct": [True, False, True, True]})
    >>> seed_problem_grid(rows, "accuracy")[0].tolist()
    [[1.0, 0.0], [1.0, 1.0]]
    """
    cells = (samples.group_by("seed", "example_id")
             .agg(SEED_METRICS[metric].mean().alias("v")))
    seeds = sorted(cells["seed"].unique().to_list())
    problems = sorted(cells["example_id"].unique().to_list())
    grid = np.full((len(seeds), len(problems)), np.nan)
    s_index = {s: i for i, s in enumerate(seeds)}
    p_index = {p: j for j, p in enumerate(problems)}
    for row in cells.iter_rows(named=True):
        if row["v"] is not None:
            grid[s_index[row["seed"]], p_index[row["example_id"]]] = row["v"]
    return grid, seeds, problems


def two_way_bootstrap(grid: np.ndarray, *, n_resamples: int = 1000, level: float = 0.95,
                      seed: int = 0) -> tuple[float, float, float]:
    """``(estimate, low, high)``: the mean of ``grid`` [S, P] and its seed x problem percentile-bootstrap interval.

    NaN cells are ignored (nanmean). A single seed gives a problems-only bootstrap.

    >>> est, lo, hi = two_way_bootstrap(np.array([[1.0, 0.0], [1.0, 1.0]]), n_resamples=200)
    >>> est, lo <= est <= hi
    (0.75, True)
    """
    s, p = grid.shape
    estimate = float(np.nanmean(grid))
    rng = np.random.default_rng(seed)
    s_draw = rng.integers(0, s, size=(n_resamples, s))
    p_draw = rng.integers(0, p, size=(n_resamples, p))
    boot = np.nanmean(grid[s_draw[:, :, None], p_draw[:, None, :]], axis=(1, 2))
    alpha = (1.0 - level) / 2.0
    low, high = np.nanquantile(boot, [alpha, 1.0 - alpha])
    return estimate, float(low), float(high)


def _paired(grid: np.ndarray, base: np.ndarray, seeds: list[int], base_seeds: list[int], problems: list[str],
            base_problems: list[str]) -> np.ndarray:
    """``grid - base`` on the seeds and problems both have (the pairing). A reference trained once (one seed, e.g.
    the student_init every seed starts from) is the same model under every seed: its row pairs with each seed's.
    """
    if len(base_seeds) == 1:
        base, base_seeds = np.repeat(base, len(seeds), axis=0), list(seeds)
    common_s = [x for x in seeds if x in set(base_seeds)]
    common_p = [x for x in problems if x in set(base_problems)]
    rows = [seeds.index(x) for x in common_s], [base_seeds.index(x) for x in common_s]
    cols = [problems.index(x) for x in common_p], [base_problems.index(x) for x in common_p]
    return grid[np.ix_(rows[0], cols[0])] - base[np.ix_(rows[1], cols[1])]


def seed_table(samples: pl.DataFrame, *, baseline: str | None = "grpo", metrics: Sequence[str] = tuple(SEED_METRICS),
               n_resamples: int = 1000, level: float = 0.95, seed: int = 0,
               references: Sequence[str] = ()) -> pl.DataFrame:
    """The benchmark table (:data:`SEED_TABLE_SCHEMA`): per model, difficulty (``all`` + each level) and metric,
    the seed x problem mean with its two-way interval and the per-seed means; plus ``<metric>_vs_<ref>`` rows, the
    paired difference to ``baseline`` and to each of ``references`` (for every model trained over 2+ seeds that
    shares seeds with the reference, or whose reference was trained once, such as ``student_init``).

    Uses the sampled decoding; models without a ``seed`` column value (e.g. the teacher) count as one seed. A metric
    whose column the samples lack is left out.
    """
    sampled = samples.filter(pl.col("decoding") == "sampled")
    if "seed" not in sampled.columns:
        sampled = sampled.with_columns(pl.lit(0).alias("seed"))
    sampled = sampled.with_columns(pl.col("seed").fill_null(0))
    levels = sorted({str(d) for d in sampled["difficulty"].to_list()}, key=difficulty_sort_key)
    records = []
    for difficulty in [ALL, *levels]:
        rows = sampled if difficulty == ALL else sampled.filter(pl.col("difficulty").cast(pl.String) == difficulty)
        models = list(dict.fromkeys(rows["model"].to_list()))
        grids = {}
        refs = list(dict.fromkeys([r for r in (baseline, *references) if r is not None]))
        for metric in [m for m in metrics if set(SEED_METRICS[m].meta.root_names()) <= set(rows.columns)]:
            for model in models:
                part = rows.filter(pl.col("model") == model)
                if metric == "trace_consistency" and part["trace_consistent"].null_count() == part.height:
                    continue  # the task has no checkable trace
                grid, seeds, problems = seed_problem_grid(part, metric)
                grids[(model, metric)] = grid, seeds, problems
                est, lo, hi = two_way_bootstrap(grid, n_resamples=n_resamples, level=level, seed=seed)
                per_seed = ", ".join(f"{np.nanmean(r):.3f}" for r in grid)
                records.append((model, difficulty, metric, len(seeds), est, lo, hi, per_seed))
            for ref in refs:
                if (ref, metric) not in grids:
                    continue
                base = grids[(ref, metric)]
                for model in models:
                    if model == ref or (model, metric) not in grids:
                        continue
                    grid, seeds, problems = grids[(model, metric)]
                    if len(seeds) < 2 or not (set(seeds) & set(base[1]) or len(base[1]) == 1):
                        continue  # unpaired (e.g. the teacher): no difference reported
                    diff = _paired(grid, base[0], seeds, base[1], problems, base[2])
                    est, lo, hi = two_way_bootstrap(diff, n_resamples=n_resamples, level=level, seed=seed)
                    per_seed = ", ".join(f"{np.nanmean(r):+.3f}" for r in diff)
                    records.append((model, difficulty, f"{metric}_vs_{ref}", diff.shape[0], est, lo, hi, per_seed))
    return pl.DataFrame(records, schema=SEED_TABLE_SCHEMA, orient="row")
