"""Optuna samplers and pruners selected by name from ``parameters_tuning.yml`` (architecture principle 2).

``SAMPLERS`` entries are ``(search_space, seed, **kwargs) -> BaseSampler``; ``PRUNERS`` entries are
``(**kwargs) -> BasePruner``. :func:`build_sampler` / :func:`build_pruner` turn an unknown name or a bad
keyword argument into :class:`~rl_distill.typed_config.ConfigError` naming it, so a bad YAML fails before
any trial runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import optuna

from rl_distill.registry import Registry, UnknownNameError
from rl_distill.typed_config import ConfigError

SamplerFactory = Callable[..., optuna.samplers.BaseSampler]
PrunerFactory = Callable[..., optuna.pruners.BasePruner]

SAMPLERS: Registry[SamplerFactory] = Registry("optuna sampler")
PRUNERS: Registry[PrunerFactory] = Registry("optuna pruner")


@SAMPLERS.register("tpe")
def _tpe(search_space: Mapping[str, Any], seed: int, **kwargs: Any) -> optuna.samplers.BaseSampler:
    """Tree-structured Parzen estimator (Bergstra et al., 2011); the default."""
    return optuna.samplers.TPESampler(seed=seed, **kwargs)


@SAMPLERS.register("random")
def _random(search_space: Mapping[str, Any], seed: int, **kwargs: Any) -> optuna.samplers.BaseSampler:
    """Independent uniform (or log-uniform) sampling."""
    return optuna.samplers.RandomSampler(seed=seed, **kwargs)


@SAMPLERS.register("qmc")
def _qmc(search_space: Mapping[str, Any], seed: int, **kwargs: Any) -> optuna.samplers.BaseSampler:
    """Quasi-Monte-Carlo (scrambled Sobol by default): even coverage of the range with few trials."""
    return optuna.samplers.QMCSampler(seed=seed, **kwargs)


def grid_values(low: float, high: float, step: float) -> list[float]:
    """The grid ``low, low + step, ..., high`` (rounded to 10 decimals so 0.1 + 0.2 prints as 0.3).

    >>> grid_values(0.1, 0.9, 0.2)
    [0.1, 0.3, 0.5, 0.7, 0.9]
    """
    n = int(round((high - low) / step))
    return [round(low + i * step, 10) for i in range(n + 1)]


@SAMPLERS.register("grid")
def _grid(search_space: Mapping[str, Any], seed: int, **kwargs: Any) -> optuna.samplers.BaseSampler:
    """Every point of the grid given by each parameter's ``step`` (e.g. the paper's alpha ablation).

    The study stops by itself when the grid is exhausted, even if ``n_trials`` is larger.
    """
    grid: dict[str, list[float]] = {}
    for name, spec in search_space.items():
        if spec.step is None:
            raise ConfigError(f"sampler 'grid' needs a step for every parameter; "
                              f"search_space.{name}.step is null.")
        grid[name] = grid_values(spec.low, spec.high, spec.step)
    return optuna.samplers.GridSampler(grid, seed=seed, **kwargs)


@PRUNERS.register("median")
def _median(**kwargs: Any) -> optuna.pruners.BasePruner:
    """Prune a trial worse at a step than the median of earlier trials at that step; the default."""
    return optuna.pruners.MedianPruner(**kwargs)


@PRUNERS.register("percentile")
def _percentile(**kwargs: Any) -> optuna.pruners.BasePruner:
    """Like ``median`` at another percentile (kwarg ``percentile``, required)."""
    return optuna.pruners.PercentilePruner(**kwargs)


@PRUNERS.register("successive_halving")
def _successive_halving(**kwargs: Any) -> optuna.pruners.BasePruner:
    """Asynchronous successive halving (Li et al., 2020); resources are training steps."""
    return optuna.pruners.SuccessiveHalvingPruner(**kwargs)


@PRUNERS.register("hyperband")
def _hyperband(**kwargs: Any) -> optuna.pruners.BasePruner:
    """Hyperband (Li et al., 2018); set ``max_resource`` to ``steps_per_trial``."""
    return optuna.pruners.HyperbandPruner(**kwargs)


@PRUNERS.register("threshold")
def _threshold(**kwargs: Any) -> optuna.pruners.BasePruner:
    """Prune once the reported value leaves ``[lower, upper]`` (e.g. a collapsed validation accuracy)."""
    return optuna.pruners.ThresholdPruner(**kwargs)


@PRUNERS.register("none")
def _none(**kwargs: Any) -> optuna.pruners.BasePruner:
    """Never prune: every trial runs ``steps_per_trial`` steps."""
    return optuna.pruners.NopPruner(**kwargs)


def _build(registry: Registry[Any], name: str, where: str, *args: Any, **kwargs: Any) -> Any:
    try:
        factory = registry.get(name)
    except UnknownNameError as exc:
        raise ConfigError(f"{where}.name: {exc}") from None
    try:
        return factory(*args, **kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    except (TypeError, ValueError) as exc:  # unknown or out-of-range kwargs, from optuna's constructors
        raise ConfigError(
            f"{where}: {registry.kind} '{name}' rejected kwargs {dict(kwargs)!r}: {exc}") from exc


def build_sampler(name: str, kwargs: Mapping[str, Any], search_space: Mapping[str, Any], seed: int,
                  where: str = "tuning.sampler") -> optuna.samplers.BaseSampler:
    """The sampler registered as ``name``, seeded with ``seed``; ``search_space`` maps names to
    ``ParamSpec``."""
    if "seed" in kwargs:
        raise ConfigError(f"{where}.kwargs.seed: set the seed with tuning.seed, not in the sampler kwargs.")
    return _build(SAMPLERS, name, where, search_space, seed, **dict(kwargs))


def build_pruner(name: str, kwargs: Mapping[str, Any],
                 where: str = "tuning.pruner") -> optuna.pruners.BasePruner:
    """The pruner registered as ``name``."""
    return _build(PRUNERS, name, where, **dict(kwargs))
