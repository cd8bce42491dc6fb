"""Comparison figures as matplotlib ``Figure`` objects (no pyplot, so no global figure state leaks).

One job: draw the report's plots from the evaluation tables and training histories:

- :func:`accuracy_by_difficulty`: grouped bars, one group per difficulty level, one bar per model, 95% CIs;
- :func:`learning_curves`: ``val/accuracy`` and ``rollout/reward_mean`` against step, one line per method;
- :func:`response_lengths`: distribution of response tokens per model (box plot, mean marked);
- :func:`alpha_sweep`: the Optuna objective against RLAD's alpha, beside the paper's ablation shape.

Each method keeps one colour and marker across every figure (:func:`method_styles`); layouts are constrained
so nothing is clipped. Save with ``fig.savefig(path)`` (Kedro's ``matplotlib.MatplotlibWriter`` takes them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl
from matplotlib.figure import Figure

from rl_distill.evaluation.summary import ALL, difficulty_sort_key
from rl_distill.known_methods import known_methods

# One fixed style per model: the two base models, then every registered method id in sorted order
# (architecture principle 8: one id per method everywhere).
_BASE = ("teacher", "student_init")
# Runs that train or score something but are no model of the report: their own colours in MLflow, after the methods.
_AUXILIARY = ("rtap_confidence", "teacher_scoring")
_COLORS = ("#4d4d4d", "#a6a6a6", "#8c564b", "#1f77b4", "#ff7f0e", "#d62728", "#2ca02c",
           "#9467bd", "#17becf", "#bcbd22", "#e377c2", "#7f7f7f")
_MARKERS = ("s", "D", "v", "o", "^", "*", "P", "X", "<", ">", "h", "p")
# RLAD paper (arXiv 2602.22495) alpha ablation: alpha -> (GSM8K, MATH) accuracy, %.
PAPER_ALPHA_ABLATION = {0.1: (89.0, 78.4), 0.3: (90.1, 80.3), 0.5: (90.0, 80.5), 0.7: (89.7, 80.2),
                        0.9: (88.5, 77.4)}


def method_styles(names: Sequence[str]) -> dict[str, tuple[str, str]]:
    """``{name: (color, marker)}``: a known method id always gets its own style, other names spare ones."""
    known = (*_BASE, *known_methods(), *_AUXILIARY)
    styles: dict[str, tuple[str, str]] = {}
    spare = iter(range(len(known), 10_000))
    for name in names:
        if name in styles:
            continue
        base = name.split("/")[0].split(":")[0]
        idx = known.index(base) if base in known else next(spare)
        styles[name] = (_COLORS[idx % len(_COLORS)], _MARKERS[idx % len(_MARKERS)])
    return styles


def _new_figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained", dpi=110)


def _level_label(level: str) -> str:
    return "all" if level == ALL else f"{level}"


def accuracy_by_difficulty(summary: pl.DataFrame, metric: str = "accuracy", *,
                           difficulty_name: str = "difficulty (K&K: number of people)",
                           include_all: bool = True) -> Figure:
    """Grouped bars of ``metric`` per difficulty level (and ``all`` when there are several levels), one bar per
    model, with its 95% CI."""
    rows = summary.filter(pl.col("metric") == metric)
    if rows.height == 0:
        raise ValueError(f"no '{metric}' rows in the summary; metrics present: "
                         f"{sorted(summary['metric'].unique().to_list())}.")
    models = rows["model"].unique(maintain_order=True).to_list()
    levels = sorted({lv for lv in rows["difficulty"].to_list() if lv != ALL}, key=difficulty_sort_key)
    if include_all and ALL in rows["difficulty"].to_list() and len(levels) != 1:  # one level: "all" repeats it
        levels.append(ALL)
    lookup = {(r["model"], r["difficulty"]): r for r in rows.iter_rows(named=True)}
    styles = method_styles(models)
    fig = _new_figure(max(5.0, 1.1 + 0.35 * len(models) * len(levels)), 3.8)
    ax = fig.add_subplot()
    width = 0.8 / len(models)
    x = np.arange(len(levels), dtype=float)
    for i, model in enumerate(models):
        vals = [lookup.get((model, lv)) for lv in levels]
        v = np.array([r["value"] if r else np.nan for r in vals])
        lo = np.array([r["ci_low"] if r else np.nan for r in vals])
        hi = np.array([r["ci_high"] if r else np.nan for r in vals])
        color, marker = styles[model]
        pos = x - 0.4 + width * (i + 0.5)
        ax.bar(pos, v, width * 0.92, color=color, label=model, edgecolor="white", linewidth=0.5)
        ax.errorbar(pos, v, yerr=np.vstack([np.clip(v - lo, 0, None), np.clip(hi - v, 0, None)]), fmt="none",
                    ecolor="black", elinewidth=1.0, capsize=2.5)
    if ALL in levels and len(levels) > 1:
        ax.axvline(len(levels) - 1.5, color="0.7", linewidth=0.8, linestyle=":")
    ax.set_xticks(x, [_level_label(lv) for lv in levels])
    ax.set_xlabel(difficulty_name)
    ax.set_ylabel(f"{metric} (95% bootstrap CI)")
    if metric.endswith(("accuracy", "_rate")) or "@" in metric:  # a share: fixed [0, 1] scale across figures
        ax.set_ylim(0, 1.05)
    else:
        ax.set_ylim(bottom=0)
    ax.set_title(f"{metric} by difficulty")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    fig.legend(loc="outside right upper", title="model", frameon=False)
    return fig


def _ema(values: Sequence[float], smoothing: float) -> np.ndarray:
    """Debiased exponential moving average (TensorBoard's smoothing): s_t = w s_{t-1} + (1 - w) x_t."""
    out, acc = np.empty(len(values)), 0.0
    for i, v in enumerate(values):
        acc = smoothing * acc + (1.0 - smoothing) * v
        out[i] = acc / (1.0 - smoothing ** (i + 1))
    return out


def learning_curves(histories: Mapping[str, Mapping[str, Sequence[tuple[float, float]]]],
                    keys: Sequence[str] = ("val/accuracy", "rollout/reward_mean"), *,
                    smoothing: float = 0.0, smooth_keys: Sequence[str] | None = None) -> Figure:
    """One subplot per metric key, one line per method: ``histories[method][key] = [(step, value), ...]``.

    A method without a key (e.g. no rollouts for offline KD) is simply absent from that subplot. With
    ``smoothing`` in (0, 1) the raw curve of each key in ``smooth_keys`` (None: every key) is drawn faint and
    its EMA on top; smooth the noisy per-step curves (``rollout/reward_mean``), not sparse validation points.
    """
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing}.")
    methods = list(histories)
    styles = method_styles(methods)
    fig = _new_figure(4.2 * len(keys) + 1.4, 3.6)
    axes = fig.subplots(1, len(keys), squeeze=False)[0]
    for ax, key in zip(axes, keys):
        drawn = 0
        w = smoothing if smooth_keys is None or key in smooth_keys else 0.0
        for method in methods:
            points = sorted(histories[method].get(key, ()))
            if not points:
                continue
            steps, values = zip(*points)
            color, marker = styles[method]
            shown = values
            if w > 0:
                ax.plot(steps, values, color=color, linewidth=0.8, alpha=0.25)
                shown = _ema(values, w)
            ax.plot(steps, shown, color=color, marker=marker, markersize=5,
                    markevery=max(1, len(steps) // 12), linewidth=1.4, label=method)
            drawn += 1
        if drawn == 0:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="0.5")
        ax.set_title(key + (f" (EMA {w:g})" if w > 0 else ""))
        ax.set_xlabel("training step")
        ax.set_ylabel(key.split("/", 1)[-1])
        ax.grid(alpha=0.3)
    handles = {}
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="outside right upper", title="method",
                   frameon=False)
    return fig


def response_lengths(samples: pl.DataFrame, decoding: str = "sampled") -> Figure:
    """Box plot of response tokens per model over ``decoding`` rows (whiskers 1.5 IQR), white dot = mean."""
    rows = samples.filter(pl.col("decoding") == decoding)
    if rows.height == 0:
        raise ValueError(f"no '{decoding}' rows to plot; decodings present: "
                         f"{sorted(samples['decoding'].unique().to_list())}.")
    models = rows["model"].unique(maintain_order=True).to_list()
    styles = method_styles(models)
    data = [rows.filter(pl.col("model") == m)["n_tokens"].to_numpy() for m in models]
    fig = _new_figure(max(4.0, 1.2 + 0.9 * len(models)), 3.8)
    ax = fig.add_subplot()
    box = ax.boxplot(data, patch_artist=True, widths=0.6, showmeans=True, showfliers=True,
                     meanprops={"marker": "o", "markerfacecolor": "white", "markeredgecolor": "black",
                                "markersize": 5},
                     medianprops={"color": "black"}, flierprops={"markersize": 2.5, "alpha": 0.5})
    for patch, model in zip(box["boxes"], models):
        patch.set_facecolor(styles[model][0])
        patch.set_alpha(0.75)
    ax.set_xticks(np.arange(1, len(models) + 1), models, rotation=20 if len(models) > 4 else 0)
    ax.set_xlabel("model")
    ax.set_ylabel("response tokens")
    ax.set_ylim(bottom=0)
    ax.set_title(f"response length, {decoding} decoding\nbox = IQR, line = median, o = mean", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    return fig


def alpha_sweep(trials: Sequence[tuple[float, float | None, str]], objective: str = "val/accuracy") -> Figure:
    """Optuna trials ``(alpha, objective value, state)`` against alpha, beside the RLAD paper's ablation.

    Completed trials are filled circles, pruned ones hollow (their last reported value), failed ones (no
    value) ticks on the x axis. The best value per distinct alpha is joined by a line. The paper's MATH
    accuracy per alpha is drawn on a second axis: flat for alpha in [0.3, 0.7], lower at 0.1 and 0.9
    (alpha = weight on the old policy; alpha = 1 is GRPO).
    """
    fig = _new_figure(6.4, 3.9)
    ax = fig.add_subplot()
    state_of = [str(s).split(".")[-1].upper() for _, _, s in trials]
    done = [(a, v) for (a, v, _), s in zip(trials, state_of) if s == "COMPLETE" and v is not None]
    pruned = [(a, v) for (a, v, _), s in zip(trials, state_of) if s == "PRUNED" and v is not None]
    failed = [a for (a, v, _), s in zip(trials, state_of) if v is None or s not in ("COMPLETE", "PRUNED")]
    color = method_styles(["rlad"])["rlad"][0]
    if done:
        a, v = zip(*done)
        ax.scatter(a, v, color=color, s=30, zorder=3, label=f"trial, complete ({len(done)})")
        best: dict[float, float] = {}
        for ai, vi in done:
            best[ai] = max(vi, best.get(ai, -np.inf))
        xs = sorted(best)
        ax.plot(xs, [best[x] for x in xs], color=color, linewidth=1.2, alpha=0.8, label="best per alpha")
    if pruned:
        a, v = zip(*pruned)
        ax.scatter(a, v, facecolors="none", edgecolors=color, s=30, zorder=3,
                   label=f"trial, pruned ({len(pruned)})")
    if failed:
        ax.plot(failed, [0.0] * len(failed), "x", color="0.4", transform=ax.get_xaxis_transform(),
                clip_on=False, label=f"trial, failed ({len(failed)})")
    ax.set_xlabel("alpha (weight on the old policy in the RLAD anchor; 1 = GRPO)")
    ax.set_ylabel(objective)
    ax.set_xlim(0.0, 1.0)
    ax.grid(alpha=0.3)
    paper = ax.twinx()
    alphas = sorted(PAPER_ALPHA_ABLATION)
    paper.plot(alphas, [PAPER_ALPHA_ABLATION[x][1] for x in alphas], color="0.45", linestyle="--", marker="s",
               markersize=4, linewidth=1.0, label="paper ablation (MATH, %)")
    paper.set_ylabel("paper MATH accuracy (%)", color="0.35")
    paper.tick_params(axis="y", colors="0.35")
    handles, labels = ax.get_legend_handles_labels()
    h2, l2 = paper.get_legend_handles_labels()
    fig.legend(handles + h2, labels + l2, loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    ax.set_title("RLAD alpha sweep (paper: flat for alpha 0.3-0.7, worse at 0.1 and 0.9)", fontsize=10)
    return fig


def seed_learning_curves(histories: Mapping[str, Mapping[str, Sequence[tuple[int, float]]]], key: str) -> Figure:
    """``key`` against step per method: the mean over its seeds (``<method>/seed<k>`` entries of ``histories``) as
    a line and the min..max over seeds as a band. Steps missing from a seed are left out of that step's band."""
    fig = _new_figure(6.4, 4.0)
    ax = fig.add_subplot()
    by_method: dict[str, list[Sequence[tuple[int, float]]]] = {}
    for name, curves in histories.items():
        if curves.get(key):
            by_method.setdefault(name.split("/")[0], []).append(curves[key])
    styles = method_styles(list(by_method))
    for method, runs in by_method.items():
        by_step = [dict(run) for run in runs]
        steps = sorted({s for run in by_step for s in run})
        values = [[run.get(s) for run in by_step] for s in steps]
        mean = [float(np.mean([v for v in vs if v is not None])) for vs in values]
        low = [min(v for v in vs if v is not None) for vs in values]
        high = [max(v for v in vs if v is not None) for vs in values]
        color, marker = styles[method]
        ax.plot(steps, mean, color=color, marker=marker, markersize=3, label=f"{method} ({len(runs)} seeds)")
        ax.fill_between(steps, low, high, color=color, alpha=0.18, linewidth=0)
    ax.set_xlabel("step")
    ax.set_ylabel(key)
    ax.set_title(f"{key}: mean over seeds, band = min..max")
    if by_method:
        ax.legend(fontsize=8)
    return fig
