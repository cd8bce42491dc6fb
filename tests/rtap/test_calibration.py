"""AUROC and ECE of the confidence generator on hand cases (R-TAP, arXiv 2603.02099, stage 1 evaluation)."""

from __future__ import annotations

import math

import pytest
import torch

from rl_distill.rtap.calibration import auroc, confidence_metrics, expected_calibration_error


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
