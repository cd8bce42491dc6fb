"""The benchmark report as markdown, from the seed table of :func:`rl_distill.evaluation.seeds.seed_table`."""

from __future__ import annotations

import polars as pl

from rl_distill.evaluation.summary import to_markdown


def gap_closed(table: pl.DataFrame, start: str = "student_init", target: str = "teacher") -> pl.DataFrame:
    """Per model and difficulty, the share of the ``target - start`` accuracy gap the model closes:
    ``(acc_model - acc_start) / (acc_target - acc_start)`` (0 = no better than the warm start, 1 = the teacher's
    accuracy, negative = worse than the warm start). Empty when either reference is missing or the gap is 0."""
    acc = table.filter(pl.col("metric") == "accuracy").select("model", "difficulty", "value")
    refs = acc.filter(pl.col("model") == start).select("difficulty", pl.col("value").alias("start")).join(
        acc.filter(pl.col("model") == target).select("difficulty", pl.col("value").alias("target")), on="difficulty")
    return (acc.filter(~pl.col("model").is_in([start, target])).join(refs, on="difficulty")
            .filter(pl.col("target") != pl.col("start"))
            .select("model", "difficulty",
                    ((pl.col("value") - pl.col("start")) / (pl.col("target") - pl.col("start"))).alias("gap_closed")))


def render_report(table: pl.DataFrame, seeds: list[int], baseline: str, level: float, figure_files: list[str]) -> str:
    """Markdown: per-method means over seeds, paired differences to the baseline, accuracy by difficulty."""
    def wide(frame: pl.DataFrame, metrics: list[str]) -> pl.DataFrame:
        cells = frame.filter(pl.col("metric").is_in(metrics)).with_columns(
            pl.format("{} [{}, {}]", pl.col("value").round(3), pl.col("ci_low").round(3), pl.col("ci_high").round(3))
            .alias("cell"))
        return cells.pivot(on="metric", index="model", values="cell", aggregate_function="first")

    overall = table.filter(pl.col("difficulty") == "all")
    metrics = [m for m in ("accuracy", "response_tokens", "trace_consistency") if m in overall["metric"].to_list()]
    per_seed = overall.filter(pl.col("metric") == "accuracy").select("model", "n_seeds", pl.col("per_seed")
                                                                      .alias("accuracy per seed"))
    means = wide(overall, metrics).join(per_seed, on="model", how="left")
    diffs = table.filter(pl.col("metric") == f"accuracy_vs_{baseline}").with_columns(
        pl.format("{} [{}, {}]", pl.col("value").round(3), pl.col("ci_low").round(3), pl.col("ci_high").round(3))
        .alias("cell"))
    by_level = diffs.pivot(on="difficulty", index="model", values="cell", aggregate_function="first")
    lines = [f"# Benchmark over seeds {seeds}", "",
             f"Mean over seeds x test problems, [{level:.0%} two-way bootstrap CI: seeds and problems resampled]; "
             "sampled decoding (the evaluation block's k samples per problem).", "",
             "## Per method", "", to_markdown(means), "",
             f"## Paired difference to {baseline} (accuracy; the same seeds and problems resampled for both)", "",
             to_markdown(by_level) if by_level.height else "(no method shares seeds with the baseline)", "",
             "## Accuracy by difficulty", ""]
    for level in sorted(set(table["difficulty"]) - {"all"}):
        part = table.filter((pl.col("difficulty") == level) & (pl.col("metric") == "accuracy"))
        cells = [f"{r['model']} {r['value']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
                 for r in part.iter_rows(named=True)]
        lines.append(f"- difficulty {level}: " + "; ".join(cells))
    closed = gap_closed(table)
    if closed.height:
        shares = closed.with_columns(pl.col("gap_closed").round(3)).pivot(
            on="difficulty", index="model", values="gap_closed", aggregate_function="first")
        lines += ["", "## Share of the teacher - student_init gap closed (mean accuracy; 0 = warm start, 1 = teacher)",
                  "", to_markdown(shares)]
    lines += ["", "## Learning curves (mean over seeds, band = min..max)", ""]
    lines += [f"![{name}](figures/{name})" for name in figure_files]
    return "\n".join(lines) + "\n"
