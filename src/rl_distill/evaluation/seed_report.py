"""The benchmark report as markdown, from the seed table of :func:`rl_distill.evaluation.seeds.seed_table`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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


RTAP_METRICS = ("accuracy", "oops_rate", "response_tokens", "cycles")


def _cell(row: dict | None, digits: int = 3) -> str:
    if row is None:
        return "-"
    return f"{row['value']:.{digits}f} [{row['ci_low']:.{digits}f}, {row['ci_high']:.{digits}f}]"


def rtap_section(table: pl.DataFrame, method: str, baseline: str, start: str,
                 confidence: Mapping[int, Mapping[str, float]] | None = None) -> list[str]:
    """Markdown lines setting an R-TAP-trained ``method`` beside ``baseline`` and ``start`` (R-TAP's claims:
    accuracy not worse, Oops and tokens down; arXiv 2603.02099), every difference paired, then C_phi's held-out
    AUROC / ECE per seed. Empty when the table has no rows for ``method``."""
    overall = table.filter(pl.col("difficulty") == "all")
    if overall.filter(pl.col("model") == method).is_empty():
        return []

    def row(model: str, metric: str) -> dict | None:
        part = overall.filter((pl.col("model") == model) & (pl.col("metric") == metric))
        return part.row(0, named=True) if part.height else None

    header = (f"| metric | {method} | {baseline} | {start} | {method} - {baseline} (paired) | "
              f"{method} - {start} (paired) |")
    lines = [f"## {method} against {baseline} and {start}", "",
             f"R-TAP's claims (arXiv 2603.02099): accuracy not worse than {baseline}, fewer Oops markers and tokens "
             "per reply. Mean over seeds x test problems [95% CI]; differences are paired (same seeds and problems; "
             f"{start} is trained once, the start of every seed).", "", header, "|---|---|---|---|---|---|"]
    for metric in RTAP_METRICS:
        if row(method, metric) is None:
            continue
        lines.append(f"| {metric} | {_cell(row(method, metric))} | {_cell(row(baseline, metric))} | "
                     f"{_cell(row(start, metric))} | {_cell(row(method, f'{metric}_vs_{baseline}'))} | "
                     f"{_cell(row(method, f'{metric}_vs_{start}'))} |")
    if confidence:
        seeds = sorted(confidence)

        def series(key: str) -> str:
            """Each seed's value (with its ``<key>_low`` / ``<key>_high`` interval where logged), then the mean."""
            def cell(m: Mapping[str, float], value: float) -> str:
                low, high = m.get(f"confidence/{key}_low"), m.get(f"confidence/{key}_high")
                return f"{value:.3f}" + ("" if low is None or high is None else f" [{low:.3f}, {high:.3f}]")

            values = [confidence[s].get(f"confidence/{key}", float("nan")) for s in seeds]
            finite = [v for v in values if v == v]
            mean = f" (mean {sum(finite) / len(finite):.3f})" if finite else ""
            return " / ".join(cell(confidence[s], v) for s, v in zip(seeds, values, strict=True)) + mean

        cycles = [int(confidence[s].get("confidence/num_cycles", 0)) for s in seeds]
        lines += ["", f"C_phi on held-out cycles (stage 1; validation questions, {', '.join(map(str, cycles))} "
                  f"cycles), seeds {', '.join(map(str, seeds))}: AUROC {series('auroc')}; ECE {series('ece')}."]
        if any("confidence/auroc_low" in confidence[s] for s in seeds):
            lines.append("AUROC intervals: 95% bootstrap over the held-out questions (each resample draws whole "
                         "questions, all their cycles).")
        if any("confidence/level_auroc" in confidence[s] for s in seeds):
            lines.append(f"Knowing only each question's difficulty (its level's positive rate among the training "
                         f"cycles) scores AUROC {series('level_auroc')}: C_phi reads the cycle itself only where it "
                         "does better.")
    return lines + [""]


def render_report(table: pl.DataFrame, seeds: list[int], baseline: str, level: float, figure_files: list[str], *,
                  references: Sequence[str] = (), confidence: Mapping[str, Mapping[int, Mapping[str, float]]]
                  | None = None) -> str:
    """Markdown: per-method means over seeds, paired differences to the baseline, accuracy by difficulty; for each
    method in ``confidence`` (the R-TAP-trained ones) a section against the baseline and the first of
    ``references`` (:func:`rtap_section`)."""
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
        cells = [f"{r['model']} {_cell(r)}" for r in part.iter_rows(named=True)]
        lines.append(f"- difficulty {level}: " + "; ".join(cells))
    closed = gap_closed(table)
    if closed.height:
        shares = closed.with_columns(pl.col("gap_closed").round(3)).pivot(
            on="difficulty", index="model", values="gap_closed", aggregate_function="first")
        lines += ["", "## Share of the teacher - student_init gap closed (mean accuracy; 0 = warm start, 1 = teacher)",
                  "", to_markdown(shares)]
    for method, conf in (confidence or {}).items():
        lines += ["", *rtap_section(table, method, baseline, references[0] if references else "student_init", conf)]
    lines += ["", "## Learning curves (mean over seeds, band = min..max)", ""]
    lines += [f"![{name}](figures/{name})" for name in figure_files]
    return "\n".join(lines) + "\n"
