"""Evaluation statistics: unbiased pass@k, mean@k and percentile-bootstrap confidence intervals.

One job: the numbers behind the comparison table, as plain functions of counts and arrays (numpy only).

- pass@k (Chen et al., "Evaluating Large Language Models Trained on Code", arXiv 2107.03374, Eq. 1):
  from n >= k samples of one problem of which c are correct, the unbiased estimate of "at least one of k
  samples is correct" is ``1 - C(n - c, k) / C(n, k)``; computed here in the numerically stable product form
  ``1 - prod_{i = n - c + 1}^{n} (1 - k / i)`` (no huge binomials).
- mean@k (method.md section 6): the accuracy averaged over k samples per problem, then over problems
  (= the expected pass@1).
- Confidence intervals: percentile bootstrap (Efron & Tibshirani 1993, ch. 13). Samples of one problem are
  correlated, so when ``clusters`` are given the bootstrap resamples whole problems, not single samples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

Stat = Callable[[np.ndarray], float]


class ConfidenceInterval(NamedTuple):
    """A point estimate with its bootstrap interval; unpacks as ``estimate, low, high``."""

    estimate: float
    low: float
    high: float


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem with ``n`` samples of which ``c`` are correct.

    ``1 - C(n - c, k) / C(n, k)`` written as ``1 - prod_{i=n-c+1}^{n} (1 - k / i)``: the ratio of binomials
    telescopes to that product, whose factors are all in [0, 1], so nothing overflows for large n.

    >>> pass_at_k(4, 1, 1)  # 1 - C(3,1)/C(4,1) = 1 - 3/4
    0.25
    >>> pass_at_k(4, 3, 2)  # n - c = 1 < k = 2: every 2-subset holds a correct sample
    1.0
    """
    if k < 1:
        raise ValueError(f"pass@k needs k >= 1, got k={k}.")
    if n < k:
        raise ValueError(f"pass@k needs n >= k samples, got n={n} < k={k}; draw more samples or lower k.")
    if not 0 <= c <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n, got c={c}, n={n}.")
    if n - c < k:
        return 1.0
    i = np.arange(n - c + 1, n + 1, dtype=np.float64)
    return float(1.0 - np.prod(1.0 - k / i))


def pass_at_k_per_problem(n: Sequence[int] | np.ndarray, c: Sequence[int] | np.ndarray, k: int) -> np.ndarray:
    """pass@k for each problem (arrays of sample counts ``n`` and correct counts ``c``), shape [problems]."""
    n_arr, c_arr = np.asarray(n, dtype=np.int64), np.asarray(c, dtype=np.int64)
    if n_arr.shape != c_arr.shape:
        raise ValueError(f"n and c must have the same shape, got {n_arr.shape} and {c_arr.shape}.")
    return np.array([pass_at_k(int(ni), int(ci), k) for ni, ci in zip(n_arr, c_arr)], dtype=np.float64)


def mean_at_k(correct: Sequence[Sequence[bool]]) -> float:
    """mean@k: per-problem accuracy over its samples, averaged over problems (each problem weighs the same).

    ``correct[p]`` are the verdicts (truthy = correct) of problem p's samples.

    >>> mean_at_k([[1, 0, 0, 0], [1, 1, 1, 1]])  # (1/4 + 4/4) / 2
    0.625
    """
    if len(correct) == 0:
        return float("nan")
    per_problem = [float(np.mean(np.asarray(row, dtype=np.float64))) for row in correct if len(row) > 0]
    if len(per_problem) != len(correct):
        raise ValueError("mean@k: every problem needs at least one sample.")
    return float(np.mean(per_problem))


def _quantiles(boot: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(boot, [tail, 1.0 - tail])
    return float(low), float(high)


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    stat: Stat | None = None,
    *,
    clusters: Sequence[object] | np.ndarray | None = None,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> ConfidenceInterval:
    """Percentile-bootstrap interval of ``stat(values)`` (default: the mean).

    Without ``clusters`` the bootstrap resamples the values themselves (give one value per problem, e.g.
    per-problem accuracy or pass@k). With ``clusters`` (one label per value, e.g. the problem id of each
    sample) it resamples whole clusters with replacement and applies ``stat`` to the concatenation of the
    drawn clusters' values. The mean takes a vectorised path; any other ``stat`` is called once per resample.

    Returns ``(estimate, low, high)`` where ``estimate = stat(values)``; an empty input gives NaNs, a single
    value (or a single cluster) gives a zero-width interval.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}.")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}.")
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    fn: Stat = stat if stat is not None else (lambda a: float(np.mean(a)))
    if x.size == 0:
        nan = float("nan")
        return ConfidenceInterval(nan, nan, nan)
    estimate = float(fn(x))
    rng = np.random.default_rng(seed)
    if clusters is None:
        if x.size == 1:
            return ConfidenceInterval(estimate, estimate, estimate)
        if stat is None:  # [R, n] indices -> R means at once
            boot = x[rng.integers(0, x.size, size=(n_resamples, x.size))].mean(axis=1)
        else:
            boot = np.array([fn(x[rng.integers(0, x.size, size=x.size)]) for _ in range(n_resamples)])
        return ConfidenceInterval(estimate, *_quantiles(boot, level))

    labels = np.asarray(clusters)
    if labels.shape[0] != x.size:
        raise ValueError(f"clusters must give one label per value: {labels.shape[0]} labels, {x.size} values")
    _, inverse = np.unique(labels, return_inverse=True)
    n_clusters = int(inverse.max()) + 1
    if n_clusters == 1:
        return ConfidenceInterval(estimate, estimate, estimate)
    if stat is None:
        # Drawing m clusters with replacement = multinomial counts w [R, m]; the pooled mean of a resample is
        # sum_j w_j * sum_j(x) / sum_j w_j * size_j.
        sums = np.bincount(inverse, weights=x, minlength=n_clusters)
        sizes = np.bincount(inverse, minlength=n_clusters).astype(np.float64)
        w = rng.multinomial(n_clusters, np.full(n_clusters, 1.0 / n_clusters), size=n_resamples)
        boot = (w @ sums) / (w @ sizes)
    else:
        members = [x[inverse == j] for j in range(n_clusters)]
        boot = np.array([
            fn(np.concatenate([members[j] for j in rng.integers(0, n_clusters, size=n_clusters)]))
            for _ in range(n_resamples)
        ])
    return ConfidenceInterval(estimate, *_quantiles(boot, level))
