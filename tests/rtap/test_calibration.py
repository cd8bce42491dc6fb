"""AUROC and ECE of the confidence generator on hand cases (R-TAP, arXiv 2603.02099, stage 1 evaluation)."""

from __future__ import annotations

import math

import pytest
import torch

from rl_distill.rtap.calibration import auroc, auroc_interval, confidence_metrics, expected_calibration_error


def test_auroc_perfect_inverted_and_ties() -> None:
    y = torch.tensor([1, 1, 0, 0])
    assert auroc(torch.tensor([0.9, 0.8, 0.2, 0.1]), y) == 1.0
    assert auroc(torch.tensor([0.1, 0.2, 0.8, 0.9]), y) == 0.0
    assert auroc(torch.tensor([0.5, 0.5, 0.5, 0.5]), y) == 0.5  # all 4 pairs tied -> 4 * 0.5 / 4


def test_auroc_mixed_by_hand() -> None:
    # positives 0.8, 0.4; negatives 0.6, 0.2, 0.4. Pairs (6): 0.8 beats all 3 -> 3;
    # 0.4 vs 0.6 loses, vs 0.2 wins, vs 0.4 ties -> 1.5. AUROC = 4.5 / 6 = 0.75
    p = torch.tensor([0.8, 0.4, 0.6, 0.2, 0.4])
    y = torch.tensor([1, 1, 0, 0, 0])
    assert auroc(p, y) == pytest.approx(0.75)


def test_auroc_single_class_is_nan() -> None:
    assert math.isnan(auroc(torch.tensor([0.2, 0.3]), torch.tensor([1, 1])))


def test_ece_by_hand() -> None:
    # bin [0.1, 0.2): p = 0.1, 0.1 with labels 0, 1 -> |0.1 - 0.5| = 0.4, weight 2/5
    # bin [0.9, 1.0]: p = 0.9, 0.9, 1.0 with labels 1, 1, 1 -> |0.9333 - 1| = 0.0667, weight 3/5
    # ECE = 0.4 * 0.4 + 0.6 * (1/15) = 0.16 + 0.04 = 0.2
    p = torch.tensor([0.1, 0.1, 0.9, 0.9, 1.0])
    y = torch.tensor([0, 1, 1, 1, 1])
    assert expected_calibration_error(p, y, 10) == pytest.approx(0.2)


def test_ece_perfectly_calibrated_is_zero() -> None:
    # 4 predictions at 0.25 with one positive: |0.25 - 0.25| = 0.
    p = torch.full((4,), 0.25)
    y = torch.tensor([1, 0, 0, 0])
    assert expected_calibration_error(p, y) == pytest.approx(0.0)


def test_confidence_metrics_names() -> None:
    out = confidence_metrics(torch.tensor([0.9, 0.2]), torch.tensor([1, 0]))
    assert out["confidence/auroc"] == 1.0
    assert out["confidence/accuracy"] == 1.0
    # ECE: bins 9 (0.9 vs 1) and 2 (0.2 vs 0): 0.5 * 0.1 + 0.5 * 0.2 = 0.15
    assert out["confidence/ece"] == pytest.approx(0.15)


def _materialised_interval(p, y, groups, n_resamples, seed, level=0.95):
    """Reference for auroc_interval: draw the same questions, build each resample's rows explicitly, score it."""
    ids = list(dict.fromkeys(groups))
    rows_of = {g: [k for k, h in enumerate(groups) if h == g] for g in ids}
    draws = torch.randint(0, len(ids), (n_resamples, len(ids)), generator=torch.Generator().manual_seed(seed))
    boot = []
    for b in range(n_resamples):
        rows = [k for j in draws[b].tolist() for k in rows_of[ids[j]]]
        value = auroc(p[rows], y[rows])
        if not math.isnan(value):
            boot.append(value)
    alpha = (1 - level) / 2
    return torch.quantile(torch.tensor(boot, dtype=torch.double),
                          torch.tensor([alpha, 1 - alpha], dtype=torch.double)).tolist()


def test_auroc_interval_equals_scoring_each_resample_explicitly() -> None:
    gen = torch.Generator().manual_seed(3)
    groups = [f"q{k // 4}" for k in range(40)]  # 10 questions x 4 cycles
    y = torch.rand(40, generator=gen) < 0.4
    p = torch.where(y, 0.6, 0.4) + 0.3 * torch.rand(40, generator=gen)
    p[::7] = 0.55  # some ties
    low, high = auroc_interval(p, y, groups, n_resamples=200, seed=5)
    ref_low, ref_high = _materialised_interval(p, y, groups, 200, 5)
    assert (low, high) == (pytest.approx(ref_low), pytest.approx(ref_high))
    assert low < auroc(p, y) < high


def test_auroc_interval_hand_cases() -> None:
    y = torch.tensor([1, 0, 1, 0])
    groups = ["a", "a", "b", "b"]
    # perfectly separated in every resample: the interval is the point 1
    assert auroc_interval(torch.tensor([0.9, 0.1, 0.8, 0.2]), y, groups, n_resamples=50) == (1.0, 1.0)
    # one question alone is separated, the other inverted: resamples give 1 (aa), 0 (bb) and 0.75 (ab, ba: 3 of 4 pairs)
    low, high = auroc_interval(torch.tensor([0.9, 0.1, 0.2, 0.8]), y, groups, n_resamples=400)
    assert (low, high) == (0.0, 1.0)
    assert all(math.isnan(v) for v in auroc_interval(torch.tensor([0.2, 0.3]), torch.tensor([1, 1]), ["a", "b"]))
    with pytest.raises(ValueError, match="3 scores but 2 group ids"):
        auroc_interval(torch.tensor([0.1, 0.2, 0.3]), torch.tensor([1, 0, 1]), ["a", "b"])
