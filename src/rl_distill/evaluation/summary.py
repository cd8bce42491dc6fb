"""Per-sample records -> the tidy summary table, the wide model comparison table and its markdown rendering.

One job: aggregate the frame built by :mod:`rl_distill.evaluation.samples` (one row per generated sample) into

- ``summarize``: tidy long table ``model, difficulty, metric, value, ci_low, ci_high`` (difficulty ``"all"``
  or a level as a string), one row per model x difficulty x metric;
- ``comparison_table``: models as rows, key metrics as columns (plus ``<metric>_ci_low`` /
  ``<metric>_ci_high``);
- ``difficulty_table``: models as rows, one column per difficulty level, for one metric;
- ``to_markdown``: any of those as a GitHub markdown table, intervals as ``v [lo, hi]``, the Oops lexicon as a
  footnote beside the Oops column (method.md section 5 asks for the list to be reported with the number).

Metric definitions (method.md section 6). Problems weigh equally: each metric is first reduced per problem,
then averaged over problems, and the 95% interval is a percentile bootstrap that resamples problems (their
samples are correlated).

- ``accuracy``: mean@k over the sampled decoding (temperature 0.6, top-p 0.95), the headline number;
  ``mean@<k>`` is the same value under its explicit name, k = samples per problem.
- ``greedy_accuracy``: accuracy of the one greedy sample per problem.
- ``pass@<k>``: unbiased pass@k (Chen et al. 2021, Eq. 1) over the sampled decoding, for each configured k.
- Behaviour metrics, over the sampled decoding (over the greedy sample when a model has no sampled rows):
  ``response_tokens`` (mean response length), ``format_error_rate`` (share not well formed),
  ``unparseable_rate`` (share with no parseable final answer), ``cycles`` (think-answer cycles per response)
  ``oops_rate`` (Oops-lexicon matches per response) and ``trace_consistency`` (share of replies whose answer is the
  one their own trace reached; only for tasks with a checkable trace).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import polars as pl

from rl_distill.evaluation.metrics import bootstrap_ci, pass_at_k_per_problem

SUMMARY_SCHEMA = {"model": pl.String, "difficulty": pl.String, "metric": pl.String, "value": pl.Float64,
                  "ci_low": pl.Float64, "ci_high": pl.Float64}
ALL = "all"
# Behaviour metrics: name -> per-sample expression whose per-problem mean is the problem's value (the benchmark's
# SEED_METRICS reads its behaviour metrics from here).
BEHAVIOUR_METRICS = {
    "response_tokens": pl.col("n_tokens").cast(pl.Float64),
    "format_error_rate": (~pl.col("format_ok")).cast(pl.Float64),
    "unparseable_rate": (pl.col("verdict") == "unparseable").cast(pl.Float64),
    "cycles": pl.col("n_cycles").cast(pl.Float64),
    "oops_rate": pl.col("oops").cast(pl.Float64),
    "trace_consistency": pl.col("trace_consistent").cast(pl.Float64),  # null (no checkable trace) -> not reported
}
DEFAULT_COMPARISON_METRICS = ("accuracy", "greedy_accuracy", "pass@k", "response_tokens", "trace_consistency",
                              "format_error_rate", "cycles", "oops_rate")


def difficulty_sort_key(level: str) -> tuple[int, float, str]:
    """Sort key for difficulty labels: ``"all"``, then numeric levels ascending, then any other label."""
    if level == ALL:
        return (0, 0.0, level)
    try:
        return (1, float(level), level)
    except ValueError:
        return (2, 0.0, level)


def _problem_values(rows: pl.DataFrame, decoding: str) -> pl.DataFrame:
    """One row per problem of ``rows`` in ``decoding``: n, c and the per-problem behaviour means."""
    return (rows.filter(pl.col("decoding") == decoding)
            .group_by("example_id", maintain_order=True)
            .agg(pl.len().alias("n"), pl.col("correct").cast(pl.Int64).sum().alias("c"),
                 *[expr.mean().alias(name) for name, expr in BEHAVIOUR_METRICS.items()]))


def _metric_rows(rows: pl.DataFrame, ks: Sequence[int]) -> list[tuple[str, np.ndarray]]:
    """(metric name, per-problem values) for one model x difficulty slice."""
    out: list[tuple[str, np.ndarray]] = []
    sampled, greedy = _problem_values(rows, "sampled"), _problem_values(rows, "greedy")
    if sampled.height:
        n, c = sampled["n"].to_numpy(), sampled["c"].to_numpy()
        per_problem_acc = c / n
        out.append(("accuracy", per_problem_acc))
        out.append((f"mean@{int(n.min())}" if n.min() == n.max() else "mean@k", per_problem_acc))
    if greedy.height:
        out.append(("greedy_accuracy", greedy["c"].to_numpy() / greedy["n"].to_numpy()))
    if sampled.height:
        for k in ks:
            if k > int(n.min()):
                raise ValueError(f"pass@{k} needs at least {k} sampled completions per problem; some "
                                 f"problem has only {int(n.min())}. Raise num_samples or drop k={k}.")
            out.append((f"pass@{k}", pass_at_k_per_problem(n, c, k)))
    behaviour = sampled if sampled.height else greedy
    out += [(name, behaviour[name].to_numpy()) for name in BEHAVIOUR_METRICS
            if behaviour.height and behaviour[name].null_count() < behaviour.height]
    return out


def summarize(samples: pl.DataFrame, ks: Sequence[int] = (1,), *, n_resamples: int = 1000,
              level: float = 0.95, seed: int = 0) -> pl.DataFrame:
    """Tidy summary of per-sample records: one row per (model, difficulty, metric) with a bootstrap interval.

    ``samples`` has the columns of :data:`rl_distill.evaluation.samples.SAMPLE_SCHEMA`. ``difficulty`` is
    ``"all"`` for every problem of a model, then each level as a string. Rows are ordered by model (first
    appearance), difficulty (``"all"`` first, then numerically) and metric. Returns a frame with
    :data:`SUMMARY_SCHEMA`.
    """
    records: list[tuple[str, str, str, float, float, float]] = []
    for (model,), by_model in samples.group_by("model", maintain_order=True):
        levels = sorted({str(d) for d in by_model["difficulty"].to_list()}, key=difficulty_sort_key)
        slices = [(ALL, by_model)] + [(lv, by_model.filter(pl.col("difficulty").cast(pl.String) == lv))
                                      for lv in levels]
        for difficulty, rows in slices:
            for metric, values in _metric_rows(rows, ks):
                ci = bootstrap_ci(values, n_resamples=n_resamples, level=level, seed=seed)
                records.append((str(model), difficulty, metric, ci.estimate, ci.low, ci.high))
    return pl.DataFrame(records, schema=SUMMARY_SCHEMA, orient="row")


def _resolve_metric(metric: str, available: Iterable[str]) -> str | None:
    """``pass@k`` / ``mean@k`` stand for the largest k present; other names must match exactly."""
    available = list(available)
    if metric in available:
        return metric
    if metric in ("pass@k", "mean@k"):
        prefix = metric[:-1]
        ks = [int(m[len(prefix):]) for m in available if m.startswith(prefix) and m[len(prefix):].isdigit()]
        return f"{prefix}{max(ks)}" if ks else None
    return None


def comparison_table(summary: pl.DataFrame, metrics: Sequence[str] = DEFAULT_COMPARISON_METRICS, *,
                     difficulty: str = ALL, with_ci: bool = True) -> pl.DataFrame:
    """Wide table: one row per model (summary order), columns ``model`` then each metric
    (``pass@k``/``mean@k`` = the largest k present), each followed by ``<metric>_ci_low`` and
    ``<metric>_ci_high`` when ``with_ci``. Metrics absent from the summary are skipped; a model missing a
    metric gets null."""
    rows = summary.filter(pl.col("difficulty") == difficulty)
    present = rows["metric"].unique(maintain_order=True).to_list()
    names = [m for m in (_resolve_metric(m, present) for m in metrics) if m is not None]
    models = rows["model"].unique(maintain_order=True).to_list()
    columns: dict[str, list] = {"model": models}
    for name in names:
        sub = rows.filter(pl.col("metric") == name)
        lookup = {r["model"]: r for r in sub.iter_rows(named=True)}
        fields = ("value", "ci_low", "ci_high") if with_ci else ("value",)
        for field in fields:
            col = name if field == "value" else f"{name}_{field}"
            columns[col] = [lookup[m][field] if m in lookup else None for m in models]
    schema = {c: (pl.String if c == "model" else pl.Float64) for c in columns}
    return pl.DataFrame(columns, schema=schema)


def difficulty_table(summary: pl.DataFrame, metric: str = "accuracy", *,
                     with_ci: bool = False) -> pl.DataFrame:
    """Wide table of one metric: rows = models, columns = ``model`` then each difficulty (levels ascending,
    then ``all``), optionally with ``<level>_ci_low`` / ``<level>_ci_high``."""
    rows = summary.filter(pl.col("metric") == metric)
    levels = sorted(rows["difficulty"].unique().to_list(), key=difficulty_sort_key)
    levels = [lv for lv in levels if lv != ALL] + ([ALL] if ALL in levels else [])
    models = rows["model"].unique(maintain_order=True).to_list()
    lookup = {(r["model"], r["difficulty"]): r for r in rows.iter_rows(named=True)}
    columns: dict[str, list] = {"model": models}
    for lv in levels:
        for field in (("value", "ci_low", "ci_high") if with_ci else ("value",)):
            col = lv if field == "value" else f"{lv}_{field}"
            columns[col] = [lookup[(m, lv)][field] if (m, lv) in lookup else None for m in models]
    return pl.DataFrame(columns, schema={c: (pl.String if c == "model" else pl.Float64) for c in columns})


def _fmt(value: object, digits: int) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        return str(value).replace("|", "\\|")
    x = float(value)
    if np.isnan(x):
        return "–"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return f"{x:.1f}" if abs(x) >= 100 else f"{x:.{digits}f}"


def _oops_footnote() -> str:
    from rl_distill.tasks.oops import OOPS_LEXICON

    words = ", ".join(f'"{w}"' for w in OOPS_LEXICON)
    return (f"† Oops markers per response: case-insensitive matches of the fixed lexicon {words} "
            "(the R-TAP paper gives no list; method.md section 5).")


def to_markdown(table: pl.DataFrame, *, digits: int = 3, footnotes: Sequence[str] = (),
                ci_note: str = "Cells: estimate [95% bootstrap CI, problems resampled].") -> str:
    """Render ``table`` as a GitHub markdown table (no extra dependencies).

    A column ``x`` with companions ``x_ci_low`` and ``x_ci_high`` is rendered as one cell ``v [lo, hi]`` and
    ``ci_note`` is added under the table (pass the level used if it is not 95%).
    Floats get ``digits`` decimals (one decimal from 100 up), missing values an en dash. A column whose name
    contains ``oops`` is marked ``†`` and the Oops lexicon is stated in a footnote under the table;
    ``footnotes`` adds more lines.
    """
    cols = table.columns
    shown = [c for c in cols if not (c.endswith(("_ci_low", "_ci_high"))
                                     and c.rsplit("_ci_", 1)[0] in cols)]
    headers, cells, any_ci = [], [], False
    for c in shown:
        has_ci = f"{c}_ci_low" in cols and f"{c}_ci_high" in cols
        any_ci = any_ci or has_ci
        headers.append(c + (" †" if "oops" in c.lower() else ""))
        vals = table[c].to_list()
        if has_ci:
            lows, highs = table[f"{c}_ci_low"].to_list(), table[f"{c}_ci_high"].to_list()
            cells.append([_fmt(v, digits) if lo is None or v is None
                          else f"{_fmt(v, digits)} [{_fmt(lo, digits)}, {_fmt(hi, digits)}]"
                          for v, lo, hi in zip(vals, lows, highs)])
        else:
            cells.append([_fmt(v, digits) for v in vals])
    numeric = [table[c].dtype.is_numeric() for c in shown]
    lines = ["| " + " | ".join(h.replace("|", "\\|") for h in headers) + " |",
             "|" + "|".join("---:" if num else "---" for num in numeric) + "|"]
    lines += ["| " + " | ".join(col[i] for col in cells) + " |" for i in range(table.height)]
    notes = ([ci_note] if any_ci and ci_note else []) + (
        [_oops_footnote()] if any("oops" in c.lower() for c in shown) else []) + list(footnotes)
    for note in notes:  # each its own paragraph
        lines += ["", note]
    return "\n".join(lines) + "\n"
