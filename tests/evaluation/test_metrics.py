"""Hand-computed checks of pass@k, mean@k and the bootstrap intervals (evaluation/metrics.py)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from rl_distill.evaluation.metrics import (
    bootstrap_ci,
    mean_at_k,
    pass_at_k,
    pass_at_k_per_problem,
)


def _exact_pass_at_k(n: int, c: int, k: int) -> float:
    if n - c < k:
        return 1.0
    return float(1 - Fraction(math.comb(n - c, k), math.comb(n, k)))


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (10, 3, 1, 0.3),  # pass@1 = c / n = 3/10
        (5, 2, 2, 0.7),  # 1 - C(3,2)/C(5,2) = 1 - 3/10; product form: 1 - (1-2/4)(1-2/5) = 1 - 0.5*0.6
        (8, 2, 4, 55 / 70),  # 1 - C(6,4)/C(8,4) = 1 - 15/70
        (4, 1, 1, 0.25),  # 1 - C(3,1)/C(4,1) = 1 - 3/4
        (8, 0, 8, 0.0),  # no correct sample: never passes
        (8, 8, 1, 1.0),  # all correct
        (8, 1, 8, 1.0),  # n - c = 7 < k = 8: every 8-subset is the whole set, which holds the correct one
        (3, 1, 3, 1.0),
    ],
)
def test_pass_at_k_hand_computed(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_matches_exact_binomials_on_a_grid() -> None:
    for n in range(1, 13):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert pass_at_k(n, c, k) == pytest.approx(_exact_pass_at_k(n, c, k), abs=1e-12), (n, c, k)


def test_pass_at_k_is_stable_for_large_n() -> None:
    # C(10000, 100) has ~240 digits: the product form never builds it, and still matches the exact fraction.
    assert pass_at_k(10_000, 5, 100) == pytest.approx(_exact_pass_at_k(10_000, 5, 100), rel=1e-10)


def test_pass_at_k_rejects_bad_counts() -> None:
    with pytest.raises(ValueError, match="n >= k"):
        pass_at_k(2, 1, 4)
    with pytest.raises(ValueError, match="0 <= c <= n"):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError, match="k >= 1"):
        pass_at_k(4, 1, 0)


def test_pass_at_k_per_problem() -> None:
    # problem 0: 1 - C(3,2)/C(4,2) = 1 - 3/6 = 0.5 ; problem 1: c = 0 -> 0 ; problem 2: n - c = 1 < 2 -> 1
    got = pass_at_k_per_problem([4, 4, 4], [1, 0, 3], k=2)
    np.testing.assert_allclose(got, [0.5, 0.0, 1.0])


def test_mean_at_k_weighs_problems_equally() -> None:
    # (1/4 + 4/4) / 2 = 0.625, not the pooled 5/8 = 0.625 coincidence: use unequal sizes to tell them apart
    assert mean_at_k([[1, 0, 0, 0], [1, 1, 1, 1]]) == pytest.approx(0.625)
    # per-problem 1/2 and 1/1 -> (0.5 + 1) / 2 = 0.75; pooled would be 2/3
    assert mean_at_k([[True, False], [True]]) == pytest.approx(0.75)
    assert math.isnan(mean_at_k([]))
    with pytest.raises(ValueError):
        mean_at_k([[1], []])


def test_bootstrap_ci_coverage_on_bernoulli_data() -> None:
    # 200 data sets of 100 Bernoulli(0.3) draws; the 95% percentile interval should cover 0.3 ~95% of times.
    rng = np.random.default_rng(1234)
    covered = 0
    for rep in range(200):
        data = rng.random(100) < 0.3
        est, low, high = bootstrap_ci(data, n_resamples=1000, level=0.95, seed=rep)
        assert low <= est <= high
        covered += low <= 0.3 <= high
    assert 0.90 <= covered / 200 <= 0.99


def test_bootstrap_ci_is_seeded_and_level_orders_widths() -> None:
    data = np.random.default_rng(0).normal(size=50)
    assert bootstrap_ci(data, seed=3) == bootstrap_ci(data, seed=3)
    _, lo90, hi90 = bootstrap_ci(data, level=0.90, seed=3)
    _, lo99, hi99 = bootstrap_ci(data, level=0.99, seed=3)
    assert hi99 - lo99 > hi90 - lo90


def test_bootstrap_ci_degenerate_inputs() -> None:
    assert all(math.isnan(v) for v in bootstrap_ci([]))
    assert bootstrap_ci([0.4]) == (0.4, 0.4, 0.4)
    assert bootstrap_ci([1.0, 1.0, 1.0]) == (1.0, 1.0, 1.0)
    assert bootstrap_ci([1.0, 0.0], clusters=["a", "a"]) == (0.5, 0.5, 0.5)  # one cluster: no resampling
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci([1.0, 2.0], level=1.5)
    with pytest.raises(ValueError, match="one label per value"):
        bootstrap_ci([1.0, 2.0], clusters=["a"])


def test_cluster_bootstrap_resamples_problems_not_samples() -> None:
    # 60 problems x 8 samples; all samples of a problem share its verdict (perfectly correlated within it).
    rng = np.random.default_rng(7)
    per_problem = (rng.random(60) < 0.5).astype(float)
    samples = np.repeat(per_problem, 8)
    problem_id = np.repeat(np.arange(60), 8)
    _, lo_c, hi_c = bootstrap_ci(samples, clusters=problem_id, seed=0)
    _, lo_p, hi_p = bootstrap_ci(per_problem, seed=0)
    _, lo_n, hi_n = bootstrap_ci(samples, seed=0)
    # Resampling problems = resampling the 60 per-problem values (equal cluster sizes) ...
    assert hi_c - lo_c == pytest.approx(hi_p - lo_p, rel=0.2)
    # ... while treating the 480 samples as independent understates the width by about sqrt(8) ~ 2.8.
    assert (hi_c - lo_c) / (hi_n - lo_n) > 2.0
    # The generic (per-resample call) path agrees with the vectorised mean path.
    mean = lambda a: float(np.mean(a))  # a custom stat takes the per-resample path
    _, lo_g, hi_g = bootstrap_ci(samples, stat=mean, clusters=problem_id, n_resamples=500)
    assert hi_g - lo_g == pytest.approx(hi_c - lo_c, rel=0.25)


def test_bootstrap_ci_custom_stat() -> None:
    data = np.arange(11, dtype=float)  # median 5
    est, low, high = bootstrap_ci(data, stat=lambda a: float(np.median(a)), n_resamples=300)
    assert est == 5.0
    assert low <= 5.0 <= high
