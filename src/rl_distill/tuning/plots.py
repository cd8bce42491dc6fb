"""The study's plots as matplotlib Figures, logged as PNG artifacts of the study's parent MLflow run.

One job: draw optimisation history, each tuned parameter against the objective (``alpha_vs_objective.png``,
the alpha sweep), the intermediate validation curves (pruned trials dashed) and, when several parameters
are tuned, their importances. Figures are built with ``matplotlib.figure.Figure`` (no pyplot state, no GUI
backend).
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import optuna
from matplotlib.figure import Figure
from optuna.trial import TrialState

_logger = logging.getLogger(__name__)

_COMPLETE_STYLE = {"color": "tab:blue", "marker": "o", "label": "complete"}
_PRUNED_STYLE = {"color": "tab:orange", "marker": "x", "label": "pruned (last report)"}


def _maximize(study: optuna.Study) -> bool:
    return study.direction == optuna.study.StudyDirection.MAXIMIZE


def _by_state(study: optuna.Study, state: TrialState) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.get_trials(deepcopy=False, states=(state,)) if t.value is not None]


def optimization_history_figure(study: optuna.Study, metric: str) -> Figure:
    """Objective of each trial by trial number, with the best-so-far line over COMPLETE trials."""
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    complete = _by_state(study, TrialState.COMPLETE)
    pruned = _by_state(study, TrialState.PRUNED)
    for trials, style in ((complete, _COMPLETE_STYLE), (pruned, _PRUNED_STYLE)):
        if trials:
            ax.scatter([t.number for t in trials], [t.value for t in trials], **style)
    if complete:
        pick = max if _maximize(study) else min
        best, xs, ys = None, [], []
        for t in sorted(complete, key=lambda t: t.number):
            best = t.value if best is None else pick(best, t.value)
            xs.append(t.number)
            ys.append(best)
        ax.step(xs, ys, where="post", color="tab:red", label="best so far")
    ax.set(xlabel="trial", ylabel=metric, title=f"{study.study_name}: optimisation history")
    if complete or pruned:
        ax.legend(loc="best")
    return fig


def param_objective_figure(study: optuna.Study, param: str, metric: str) -> Figure:
    """``param`` against the objective (COMPLETE trials; PRUNED ones at their last reported value)."""
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    any_points = False
    for state, style in ((TrialState.COMPLETE, _COMPLETE_STYLE), (TrialState.PRUNED, _PRUNED_STYLE)):
        trials = [t for t in _by_state(study, state) if param in t.params]
        if trials:
            any_points = True
            ax.scatter([t.params[param] for t in trials], [t.value for t in trials], **style)
    dists = [t.distributions[param] for t in study.get_trials(deepcopy=False) if param in t.distributions]
    if dists and getattr(dists[-1], "log", False):
        ax.set_xscale("log")
    ax.set(xlabel=param, ylabel=metric, title=f"{study.study_name}: {param} vs {metric}")
    if any_points:
        ax.legend(loc="best")
    return fig


def intermediate_values_figure(study: optuna.Study, metric: str) -> Figure:
    """Each trial's reported validation curve by training step; pruned trials dashed."""
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    for t in study.get_trials(deepcopy=False):
        if not t.intermediate_values:
            continue
        steps = sorted(t.intermediate_values)
        label = ", ".join(f"{k}={v:.3g}" for k, v in sorted(t.params.items()))
        ax.plot(steps, [t.intermediate_values[s] for s in steps], marker=".",
                linestyle="--" if t.state == TrialState.PRUNED else "-", label=f"#{t.number} {label}")
    ax.set(xlabel="training step", ylabel=metric, title=f"{study.study_name}: intermediate values")
    if ax.lines and len(ax.lines) <= 12:
        ax.legend(loc="best", fontsize="small")
    return fig


def param_importances_figure(study: optuna.Study, metric: str) -> Figure | None:
    """Horizontal bars of Optuna's parameter importances.

    None with fewer than two tuned parameters or COMPLETE trials, or when the evaluator cannot fit them
    (e.g. every trial sampled the same value).
    """
    names = {name for t in _by_state(study, TrialState.COMPLETE) for name in t.params}
    if len(names) < 2 or len(_by_state(study, TrialState.COMPLETE)) < 2:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            importances = optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError) as exc:
        _logger.warning("study %r: parameter importances skipped: %s", study.study_name, exc)
        return None
    fig = Figure(figsize=(6, 1.5 + 0.5 * len(importances)), layout="constrained")
    ax = fig.add_subplot()
    ordered = sorted(importances.items(), key=lambda kv: kv[1])
    ax.barh([k for k, _ in ordered], [v for _, v in ordered], color="tab:blue")
    ax.set(xlabel="importance (normalised)", title=f"{study.study_name}: parameter importances for {metric}")
    return fig


def study_figures(study: optuna.Study, metric: str) -> dict[str, Figure]:
    """Every plot of the study, keyed by artifact file name (``plots/<name>.png``)."""
    figures = {"plots/optimization_history.png": optimization_history_figure(study, metric),
               "plots/intermediate_values.png": intermediate_values_figure(study, metric)}
    params = sorted({name for t in study.get_trials(deepcopy=False) for name in t.distributions})
    for param in params:
        figures[f"plots/{param}_vs_objective.png"] = param_objective_figure(study, param, metric)
    importances = param_importances_figure(study, metric)
    if importances is not None:
        figures["plots/param_importances.png"] = importances
    return figures


def log_study_plots(study: optuna.Study, run: Any, metric: str) -> list[str]:
    """Log :func:`study_figures` to ``run`` (a :class:`~rl_distill.tracking.RunLogger`); return names."""
    figures = study_figures(study, metric)
    for name, fig in figures.items():
        run.log_figure(fig, name)
    return list(figures)
